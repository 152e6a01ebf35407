package fs

import (
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	return openDir(t, t.TempDir())
}

func openDir(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func put(t *testing.T, s *Store, key, data string) {
	t.Helper()
	if err := s.Put(t.Context(), key, strings.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objstore.Store { return openTemp(t) })
}

func TestLayoutAndMode(t *testing.T) {
	s := openTemp(t)
	put(t, s, "messages/ab/cd/x", "hello")
	p := filepath.Join(s.Dir(), "messages", "ab", "cd", "x")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatalf("key does not map to its path: %v", err)
	}
	if fi.Mode().Perm() != 0o440 {
		t.Errorf("mode = %v, want 0440", fi.Mode().Perm())
	}
	// The temporary name is gone: the object has one link.
	if fi.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Errorf("object has %d links after Put", fi.Sys().(*syscall.Stat_t).Nlink)
	}
	entries, err := os.ReadDir(s.tmpFor("messages/ab/cd/x"))
	if err != nil || len(entries) != 0 {
		t.Errorf("temporary folder holds %v (%v) after Put", entries, err)
	}
}

func TestErrorText(t *testing.T) {
	s := openTemp(t)
	put(t, s, "a/b", "x")
	err := s.Put(t.Context(), "a/b", strings.NewReader("y"), 1)
	if !errors.Is(err, objstore.ErrExist) || !strings.HasPrefix(err.Error(), "objstore/fs: put a/b: ") {
		t.Errorf("Put twice = %q", err)
	}
	_, err = s.Get(t.Context(), "a/c")
	if !errors.Is(err, objstore.ErrNotExist) || !strings.HasPrefix(err.Error(), "objstore/fs: get a/c: ") {
		t.Errorf("Get missing = %q", err)
	}
}

func TestKeyAndFolderConflict(t *testing.T) {
	s := openTemp(t)
	put(t, s, "k/file", "x")
	put(t, s, "k/dir/inner", "y")
	if err := s.Put(t.Context(), "k/file/below", strings.NewReader("z"), 1); err == nil || errors.Is(err, objstore.ErrExist) {
		t.Errorf("Put below an object = %v, want a plain error", err)
	}
	if err := s.Put(t.Context(), "k/dir", strings.NewReader("z"), 1); err == nil || errors.Is(err, objstore.ErrExist) {
		t.Errorf("Put over a folder = %v, want a plain error", err)
	}
}

func TestLeftoversRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir)
	put(t, s, "x/y", "kept")
	// A crashed process: its temporary folder is unlocked and holds a
	// partial file and a second name of a stored object.
	dead := filepath.Join(dir, tmpName, "deadbeef")
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, "put-1"), []byte("partial"), 0o600)
	os.Link(filepath.Join(dir, "x", "y"), filepath.Join(dead, "put-2"))
	os.WriteFile(filepath.Join(dir, tmpName, "stray"), []byte("?"), 0o600)

	// s is still open: a second Open must leave s's folder alone.
	inflight := filepath.Join(s.tmp, "put-inflight")
	os.WriteFile(inflight, []byte("being written"), 0o600)

	s2 := openDir(t, dir)
	for _, p := range []string{dead, filepath.Join(dir, tmpName, "stray")} {
		if _, err := os.Lstat(p); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("leftover %s survived Open: %v", p, err)
		}
	}
	if _, err := os.Stat(inflight); err != nil {
		t.Errorf("Open removed a live Store's temporary file: %v", err)
	}
	rc, err := s2.Get(t.Context(), "x/y")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "kept" {
		t.Errorf("object = %q after Open removed leftovers", b)
	}
	if keys := keysOf(t, s2, ""); !slices.Equal(keys, []string{"x/y"}) {
		t.Errorf("List = %q, want only x/y", keys)
	}
}

func TestPutAfterClose(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Put(t.Context(), "a", strings.NewReader("x"), 1); err == nil {
		t.Errorf("Put after Close succeeded")
	}
}

func keysOf(t *testing.T, s *Store, prefix string) []string {
	t.Helper()
	var keys []string
	err := s.List(t.Context(), prefix, func(i objstore.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// TestListReadsOnlyBelowPrefix checks that a narrow prefix does not walk
// the whole tree.
func TestListReadsOnlyBelowPrefix(t *testing.T) {
	s := openTemp(t)
	for _, k := range []string{"messages/ab/cd/1", "messages/ab/ce/2", "messages/ac/cd/3", "keys/ab/4", "ledger/5"} {
		put(t, s, k, "x")
	}
	var read []string
	readDir = func(name string) ([]os.DirEntry, error) {
		rel, _ := filepath.Rel(s.Dir(), name)
		read = append(read, filepath.ToSlash(rel))
		return os.ReadDir(name)
	}
	t.Cleanup(func() { readDir = os.ReadDir })

	cases := []struct {
		prefix string
		keys   []string
		read   []string
	}{
		{"messages/ab/c", []string{"messages/ab/cd/1", "messages/ab/ce/2"}, []string{"messages/ab", "messages/ab/cd", "messages/ab/ce"}},
		{"messages/ab/cd/", []string{"messages/ab/cd/1"}, []string{"messages/ab/cd"}},
		{"messages/a", []string{"messages/ab/cd/1", "messages/ab/ce/2", "messages/ac/cd/3"}, []string{"messages", "messages/ab", "messages/ab/cd", "messages/ab/ce", "messages/ac", "messages/ac/cd"}},
		{"l", []string{"ledger/5"}, []string{".", "ledger"}},
	}
	for _, c := range cases {
		read = nil
		if got := keysOf(t, s, c.prefix); !slices.Equal(got, c.keys) {
			t.Errorf("List(%q) = %q, want %q", c.prefix, got, c.keys)
		}
		if !slices.Equal(read, c.read) {
			t.Errorf("List(%q) read folders %q, want %q", c.prefix, read, c.read)
		}
	}
}

// A folder removed behind the store's back (an operator, a restore) is made
// again by the next Put into it.
func TestFolderRemovedBehindOurBack(t *testing.T) {
	s := openTemp(t)
	put(t, s, "messages/ab/cd/1", "one")
	if err := os.RemoveAll(filepath.Join(s.Dir(), "messages")); err != nil {
		t.Fatal(err)
	}
	put(t, s, "messages/ab/cd/2", "two")
	if keys := keysOf(t, s, ""); !slices.Equal(keys, []string{"messages/ab/cd/2"}) {
		t.Errorf("List = %q", keys)
	}
}

// Many processes opening one store at once never remove each other's
// temporary folder (Open's cleanup and a new Store's mkdir+flock used to
// race).
func TestConcurrentOpens(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(dir)
			if err != nil {
				errs <- err
				return
			}
			if err := s.Put(t.Context(), fmt.Sprintf("k/%d", i), strings.NewReader("x"), 1); err != nil {
				errs <- err
			}
			s.Close()
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// PutUnsynced then Sync: the object is whole and visible, write-once still
// holds, and a Put into a folder made unsynced still fsyncs that folder's
// entry (it is durable only after Sync).
func TestPutUnsyncedAndSync(t *testing.T) {
	s := openTemp(t)
	if err := s.PutUnsynced(t.Context(), "m/aa/bb/x", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	if err := s.PutUnsynced(t.Context(), "m/aa/bb/x", strings.NewReader("other"), 5); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("second unsynced put: %v", err)
	}
	if _, ok := s.made.Load("m/aa/bb"); !ok {
		t.Fatal("unsynced folder not remembered")
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.durable.Load("m/aa/bb"); !ok {
		t.Fatal("folder not durable after Sync")
	}
	rc, err := s.Get(t.Context(), "m/aa/bb/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Fatalf("got %q", b)
	}
}
