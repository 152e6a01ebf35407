package fs

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
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// The kill -9 test re-executes the test binary as a writer child; these
// environment variables tell TestMain to run the child instead of the tests.
const (
	crashDirEnv  = "CAIRN_FS_CRASH_DIR"
	crashSeedEnv = "CAIRN_FS_CRASH_SEED"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashSeedEnv))
		os.Exit(0) // not reached: the parent kills the child
	}
	os.Exit(m.Run())
}

// crashContent is the one content a key may ever hold in the kill -9 test:
// its size and bytes derive from the key alone.
func crashContent(key string) (int64, io.Reader) {
	h := sha256.Sum256([]byte(key))
	size := int64(binary.LittleEndian.Uint32(h[:4]) % (192 << 10))
	return size, io.LimitReader(rand.NewChaCha8(h), size)
}

// crashChild writes objects with 4 writers until it is killed, printing
// each key only after Put returned nil.
func crashChild(dir, seed string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				h := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", seed, w, i))
				key := fmt.Sprintf("crash/%02x/%02x/%s", h[0], h[1]&3, hex.EncodeToString(h[2:18]))
				size, r := crashContent(key)
				if err := s.Put(context.Background(), key, r, size); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				os.Stdout.WriteString(key + "\n") // one write(2): a whole line or nothing
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test in -short mode")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
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
			var keys []string
			br := bufio.NewReader(out)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					break // a line cut by the kill was never acknowledged
				}
				keys = append(keys, line[:len(line)-1])
			}
			lines <- keys
		}()
		time.Sleep(time.Duration(150+rand.IntN(500)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		keys := <-lines
		werr := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL: %v\n%s", round, werr, stderr.Bytes())
		}
		t.Logf("round %d: %d objects acknowledged before kill -9", round, len(keys))
		for _, k := range keys {
			acked[k] = true
		}
	}
	if len(acked) < 20 {
		t.Fatalf("only %d objects acknowledged: the test proves little", len(acked))
	}

	s := openDir(t, dir)
	// Every acknowledged key is there, byte for byte.
	for k := range acked {
		checkCrashObject(t, s, k)
	}
	// Nothing partial is visible: every listed object (acknowledged or
	// not) is whole, and List and Get agree.
	listed := 0
	err := s.List(t.Context(), "", func(i objstore.Info) error {
		listed++
		if size, _ := crashContent(i.Key); i.Size != size {
			t.Errorf("%s: List size %d, want %d", i.Key, i.Size, size)
		}
		checkCrashObject(t, s, i.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if listed < len(acked) {
		t.Errorf("List shows %d objects, %d were acknowledged", listed, len(acked))
	}
	t.Logf("%d acknowledged, %d listed (Puts cut by the kill after link may show up)", len(acked), listed)
	// The killed children's temporary folders are gone.
	all, err := os.ReadDir(filepath.Join(dir, tmpName))
	var entries []os.DirEntry
	for _, e := range all {
		if e.Name() != guardName {
			entries = append(entries, e)
		}
	}
	if err != nil || len(entries) != 1 || filepath.Join(dir, tmpName, entries[0].Name()) != s.tmp {
		t.Errorf("temporary folders after Open: %v (%v), want only this Store's", entries, err)
	}
}

func checkCrashObject(t *testing.T, s *Store, key string) {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Errorf("%s: %v", key, err)
		return
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Errorf("%s: read: %v", key, err)
		return
	}
	_, r := crashContent(key)
	want, _ := io.ReadAll(r)
	if !bytes.Equal(got, want) {
		t.Errorf("%s: %d bytes stored, want %d bytes as written", key, len(got), len(want))
	}
}
