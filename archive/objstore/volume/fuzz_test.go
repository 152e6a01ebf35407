package volume

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// FuzzVolumeTail feeds arbitrary bytes to the two readers of the volumes'
// records: Open's recovery (the bytes after the last whole record, as a
// crash or a damaged disk leaves them) and a read-only store's view of the
// writer's published tail (a mark that claims those bytes are records).
// Neither may panic or lose a record written before the bytes, and the
// store must go on working.
func FuzzVolumeTail(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add(make([]byte, 64), uint32(10))
	f.Add([]byte("CVR1"), uint32(4))
	f.Add(append([]byte("CVR1\x00\x05\x00"), bytes.Repeat([]byte{0xff}, 40)...), uint32(47))
	f.Add(header("o/x", 0, 1<<40, 1), uint32(30))
	f.Add(append(header("o/y", flagDelete, 0, 1), 0, 0, 0, 0), uint32(35))
	f.Fuzz(func(t *testing.T, tail []byte, markPast uint32) {
		if len(tail) > 1<<16 {
			return
		}
		dir := t.TempDir()
		ctx := context.Background()
		objs := map[string]string{"o/a": "first", "o/b": "second object", "o/c": "third"}
		w, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range objs {
			if err := w.Put(ctx, k, bytes.NewReader([]byte(v)), int64(len(v))); err != nil {
				t.Fatalf("dir %s readonly %v: %v", dir, w.ReadOnly(), err)
			}
		}
		// The writer running: bytes after its records, and a mark that
		// claims some of them, as a reader could meet them.
		w.mu.Lock()
		end := w.actEnd
		if _, err := w.active.WriteAt(tail, end); err != nil {
			t.Fatal(err)
		}
		w.mu.Unlock()
		if err := publishMark(w.mark, 1, end+int64(markPast)%int64(len(tail)+1)); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range objs {
			if got := readAll(t, r, k); got != v {
				t.Fatalf("reader: %s = %q, want %q", k, got, v)
			}
		}
		if _, err := r.Stat(ctx, "o/missing"); err == nil {
			t.Fatal("reader found an object never written")
		}
		r.Close()
		w.mu.Lock()
		w.dirty = map[uint32]int64{} // the bytes were never flushed as records
		w.mu.Unlock()
		w.Close()
		// A crash left the bytes: recovery keeps every record before them.
		f, err := os.OpenFile(w.volPath(1), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(tail, end); err != nil {
			t.Fatal(err)
		}
		f.Close()
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("open after a damaged tail: %v", err)
		}
		defer s.Close()
		for k, v := range objs {
			if got := readAll(t, s, k); got != v {
				t.Fatalf("after recovery: %s = %q, want %q", k, got, v)
			}
		}
		if err := s.Put(ctx, "o/d", bytes.NewReader([]byte("after")), 5); err != nil && !errors.Is(err, objstore.ErrExist) {
			t.Fatalf("put after recovery: %v", err)
		}
	})
}

func readAll(t *testing.T, s *Store, key string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
