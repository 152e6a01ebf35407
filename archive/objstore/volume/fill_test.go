package volume

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ends returns the active volume's record end and zero-filled end.
func ends(s *Store) (actEnd, filled int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.actEnd, s.filled
}

// waitFilled waits for the filler to have written zeros past the records.
func waitFilled(t *testing.T, s *Store) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if end, filled := ends(s); filled > end {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no zeros written ahead of the end within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// copyDir copies a live store's folder, its writes held meanwhile: what a
// crash (kill -9) at that point leaves.
func copyDir(t *testing.T, s *Store, dir string) string {
	t.Helper()
	s.syncMu.Lock()
	s.mapMu.Lock()
	s.mu.Lock()
	defer func() { s.mu.Unlock(); s.mapMu.Unlock(); s.syncMu.Unlock() }()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// fillDir is a temporary folder on a file system where the filler runs.
func fillDir(t *testing.T) string {
	t.Helper()
	for _, parent := range []string{"", "."} {
		dir, err := os.MkdirTemp(parent, "fill")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.MkdirAll(filepath.Join(dir, "volumes"), 0o700)
		if fillPays(filepath.Join(dir, "volumes")) {
			return dir
		}
	}
	t.Skip("no disk file system here: the filler runs on none")
	return ""
}

// The filler keeps flushed zeros past the last record, further as appends
// run through them; a crash leaves them and Open cuts them with nothing
// lost; Close cuts them itself.
func TestZerosAheadOfTheEnd(t *testing.T) {
	dir := fillDir(t)
	s := open(t, dir)
	value := strings.Repeat("v", 8<<10)
	n := 0
	for ; n < 3; n++ {
		put(t, s, fmt.Sprintf("z/%03d", n), value)
	}
	waitFilled(t, s)
	vol := volumeFiles(t, dir)[0]
	end, filled := ends(s)
	if size := fileSize(t, vol); size != filled {
		t.Fatalf("volume is %d bytes, the filler says %d", size, filled)
	}
	b, _ := os.ReadFile(vol)
	if !bytes.Equal(b[end:], make([]byte, len(b)-int(end))) {
		t.Fatal("the bytes past the last record are not zeros")
	}
	// Appends through the zeros: the filler goes further ahead.
	for ; n < 200; n++ {
		put(t, s, fmt.Sprintf("z/%03d", n), value)
	}
	waitFilled(t, s)
	s.mu.Lock()
	ahead := s.ahead
	s.mu.Unlock()
	if ahead <= fillMin {
		t.Fatalf("ahead stayed %d after 1.6 MB of appends", ahead)
	}

	crashed := copyDir(t, s, dir)
	end, filled = ends(s)
	if filled <= end {
		t.Fatalf("no zeros in the crash copy (end %d, filled %d)", end, filled)
	}
	c := open(t, crashed)
	cvol := volumeFiles(t, crashed)[0]
	if size := fileSize(t, cvol); size > end {
		t.Fatalf("after the crash the volume is %d bytes, its records end at %d", size, end)
	}
	for i := range n {
		if got := get(t, c, fmt.Sprintf("z/%03d", i)); string(got) != value {
			t.Fatalf("after the crash z/%03d has %d bytes", i, len(got))
		}
	}
	put(t, c, "z/next", "after the crash")
	c.Close()
	c = open(t, crashed)
	if got := string(get(t, c, "z/next")); got != "after the crash" {
		t.Fatalf("z/next = %q", got)
	}

	end, _ = ends(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if size := fileSize(t, vol); size != end {
		t.Fatalf("closed volume is %d bytes, its records end at %d", size, end)
	}
}

// Only the last volume may end in zeros (the filler stops where a volume is
// rotated), so a reader and a recovering writer find every older one whole.
func TestRotatedVolumesEndWithTheirRecords(t *testing.T) {
	old := MaxVolume
	MaxVolume = 64 << 10
	defer func() { MaxVolume = old }()
	dir := fillDir(t)
	s := open(t, dir)
	value := strings.Repeat("r", 8<<10)
	n := 0
	for ; len(volumeFiles(t, dir)) < 3; n++ {
		put(t, s, fmt.Sprintf("r/%03d", n), value)
		waitFilled(t, s)
	}
	vols := volumeFiles(t, dir)
	for _, v := range vols[:len(vols)-1] {
		b, _ := os.ReadFile(v)
		if int64(len(b)) < MaxVolume/2 || b[len(b)-1] == 0 && bytes.HasSuffix(b, make([]byte, 64)) {
			t.Fatalf("%s: %d bytes ending in zeros", filepath.Base(v), len(b))
		}
	}
	r := open(t, dir)
	if !r.ReadOnly() {
		t.Fatal("second open is not read-only")
	}
	for i := range n {
		if got := get(t, r, fmt.Sprintf("r/%03d", i)); len(got) != len(value) {
			t.Fatalf("reader: r/%03d has %d bytes", i, len(got))
		}
	}
	c := open(t, copyDir(t, s, dir))
	for i := range n {
		if got := get(t, c, fmt.Sprintf("r/%03d", i)); len(got) != len(value) {
			t.Fatalf("after the crash r/%03d has %d bytes", i, len(got))
		}
	}
}

// In memory a flush costs nothing, so no zeros are written there.
func TestNoZerosInMemory(t *testing.T) {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err != nil || uint32(st.Type) != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "fill")
	if err != nil {
		t.Skip(err)
	}
	defer os.RemoveAll(dir)
	s := open(t, dir)
	for i := range 20 {
		put(t, s, fmt.Sprintf("m/%d", i), strings.Repeat("m", 8<<10))
	}
	time.Sleep(50 * time.Millisecond)
	end, filled := ends(s)
	if filled != 0 || fileSize(t, volumeFiles(t, dir)[0]) != end {
		t.Fatalf("zeros written on tmpfs: records end at %d, filled %d", end, filled)
	}
}

// A disk that fills up while zeros are written (half a piece lands, then
// ENOSPC): the filler stops, records go on appending past the partial
// zeros, nothing is lost, and Close cuts what lies past the last record.
func TestFillFailsPartWay(t *testing.T) {
	dir := fillDir(t)
	old := fillWrite
	t.Cleanup(func() { fillWrite = old }) // after the stores' own cleanups
	failed := make(chan struct{})
	var once sync.Once
	fillWrite = func(f *os.File, b []byte, off int64) (int, error) {
		n, _ := f.WriteAt(b[:len(b)/2], off)
		once.Do(func() { close(failed) })
		return n, unix.ENOSPC
	}
	s := open(t, dir)
	value := strings.Repeat("d", 8<<10)
	put(t, s, "d/0", value)
	select {
	case <-failed:
	case <-time.After(5 * time.Second):
		t.Fatal("the filler never ran")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		off := s.fillOff
		s.mu.Unlock()
		if off {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the filler did not stop after ENOSPC")
		}
	}
	vol := volumeFiles(t, dir)[0]
	if end, _ := ends(s); fileSize(t, vol) <= end {
		t.Fatalf("no partial zeros past the records (file %d, records end %d)", fileSize(t, vol), end)
	}
	// Fewer bytes of records than the zeros that landed: Close must cut
	// those it never counted.
	for i := 1; i < 4; i++ {
		put(t, s, fmt.Sprintf("d/%d", i), value)
	}
	if _, filled := ends(s); filled != 0 {
		t.Fatalf("the filler counted %d bytes of zeros it failed to write", filled)
	}
	end, _ := ends(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if size := fileSize(t, vol); size != end {
		t.Fatalf("closed volume is %d bytes, its records end at %d", size, end)
	}
	s = open(t, dir)
	for i := range 4 {
		if got := get(t, s, fmt.Sprintf("d/%d", i)); string(got) != value {
			t.Fatalf("d/%d has %d bytes after reopening", i, len(got))
		}
	}
}
