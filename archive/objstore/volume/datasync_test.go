package volume

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDatasyncerLeavesRawCallsAfterASlowFlush: flushes are raw system calls
// while they are fast; one slower than slowFlush sends the next ones
// through the ordinary call until one is fast again.
func TestDatasyncerLeavesRawCallsAfterASlowFlush(t *testing.T) {
	var clock time.Time
	var calls []string
	var took time.Duration
	d := &datasyncer{
		raw:      func(int) error { calls = append(calls, "raw"); clock = clock.Add(took); return nil },
		blocking: func(int) error { calls = append(calls, "blocking"); clock = clock.Add(took); return nil },
		now:      func() time.Time { return clock },
	}
	steps := []struct {
		took time.Duration
		want string
	}{
		{time.Millisecond, "raw"},
		{slowFlush, "raw"}, // not slower than slowFlush
		{slowFlush + time.Microsecond, "raw"},
		{time.Second, "blocking"},
		{slowFlush + time.Microsecond, "blocking"},
		{300 * time.Microsecond, "blocking"},
		{300 * time.Microsecond, "raw"},
		{300 * time.Microsecond, "raw"},
	}
	for i, st := range steps {
		took = st.took
		if err := d.sync(3); err != nil {
			t.Fatal(err)
		}
		if got := calls[len(calls)-1]; got != st.want {
			t.Fatalf("flush %d: %s call, want %s (calls %v)", i, got, st.want, calls)
		}
	}
}

// TestDatasyncerReturnsTheCallsError, from either call.
func TestDatasyncerReturnsTheCallsError(t *testing.T) {
	boom := errors.New("boom")
	d := newDatasyncer()
	d.raw = func(int) error { return boom }
	if err := d.sync(3); err != boom {
		t.Fatalf("raw: %v, want %v", err, boom)
	}
	d.slow.Store(true)
	d.blocking = func(int) error { return boom }
	if err := d.sync(3); err != boom {
		t.Fatalf("blocking: %v, want %v", err, boom)
	}
}

// TestRawFdatasync: the raw call flushes a file and reports errno.
func TestRawFdatasync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	if err := rawFdatasync(fd); err != nil {
		t.Fatalf("fdatasync of an open file: %v", err)
	}
	f.Close()
	if err := rawFdatasync(-1); !errors.Is(err, unix.EBADF) {
		t.Fatalf("fdatasync of no descriptor: %v, want EBADF", err)
	}
}
