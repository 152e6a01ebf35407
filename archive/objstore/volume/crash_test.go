package volume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

const (
	crashDirEnv  = "CAIRN_VOL_CRASH_DIR"
	crashSeedEnv = "CAIRN_VOL_CRASH_SEED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashSeedEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func crashContent(key string) (int64, []byte) {
	h := sha256.Sum256([]byte(key))
	size := int64(binary.LittleEndian.Uint32(h[:4]) % (64 << 10))
	b, _ := io.ReadAll(io.LimitReader(rand.NewChaCha8(h), size))
	return size, b
}

// crashChild writes as the archive does: writers append unsynced objects,
// a committer flushes every few milliseconds and only then prints the keys
// the flush covered; a few objects go through Put (flushed on return), and
// a few are deleted. It runs until killed.
func crashChild(dir, seed string) {
	if n, _ := strconv.Atoi(seed); n%2 == 1 {
		// Map writes behind the flushes many times a round, so that some
		// kills land in one.
		mapEvery = 5 * time.Millisecond
	}
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	var mu sync.Mutex
	var written []string
	out := bufio.NewWriter(os.Stdout)
	for w := range 6 {
		go func() {
			for i := 0; ; i++ {
				h := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", seed, w, i))
				key := "crash/" + hex.EncodeToString(h[:12])
				size, b := crashContent(key)
				if i%7 == 0 {
					if err := s.Put(ctx, key, bytes.NewReader(b), size); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(2)
					}
					mu.Lock()
					os.Stdout.WriteString("put " + key + "\n")
					mu.Unlock()
					continue
				}
				if err := s.PutUnsynced(ctx, key, bytes.NewReader(b), size); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				written = append(written, key)
				mu.Unlock()
			}
		}()
	}
	for n := 0; ; n++ {
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		batch := written
		written = nil
		mu.Unlock()
		if err := s.Sync(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		mu.Lock()
		for _, k := range batch {
			out.WriteString("ack " + k + "\n")
		}
		if n%20 == 0 && len(batch) > 0 {
			if err := s.Delete(ctx, batch[0]); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			out.WriteString("del " + batch[0] + "\n")
		}
		out.Flush()
		mu.Unlock()
	}
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test in -short mode")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	deleted := map[string]bool{}
	for round := range 6 {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.Itoa(round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan []string)
		go func() {
			var ls []string
			br := bufio.NewReader(out)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					break
				}
				ls = append(ls, line[:len(line)-1])
			}
			lines <- ls
		}()
		time.Sleep(time.Duration(200+rand.IntN(600)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		ls := <-lines
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("round %d: child did not die by SIGKILL\n%s", round, stderr.Bytes())
		}
		n := 0
		for _, l := range ls {
			switch l[:4] {
			case "ack ", "put ":
				acked[l[4:]] = true
				n++
			case "del ":
				deleted[l[4:]] = true
			}
		}
		t.Logf("round %d: %d objects acknowledged before kill -9", round, n)
	}
	if len(acked) < 100 {
		t.Fatalf("only %d objects acknowledged: the test proves little", len(acked))
	}
	s := open(t, dir)
	ctx := context.Background()
	for k := range acked {
		_, err := s.Stat(ctx, k)
		if deleted[k] {
			if err == nil {
				t.Errorf("%s: deleted, yet present", k)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: acknowledged, missing: %v", k, err)
			continue
		}
		if got := get(t, s, k); !bytes.Equal(got, mustContent(k)) {
			t.Errorf("%s: content differs", k)
		}
	}
	// Whatever is listed is whole (unacknowledged objects may be there).
	listed := 0
	s.List(ctx, "", func(i objstore.Info) error {
		listed++
		if got := get(t, s, i.Key); !bytes.Equal(got, mustContent(i.Key)) {
			t.Errorf("%s: listed but not whole", i.Key)
		}
		return nil
	})
	t.Logf("%d acknowledged (%d deleted), %d listed", len(acked), len(deleted), listed)
}

func mustContent(k string) []byte { _, b := crashContent(k); return b }
