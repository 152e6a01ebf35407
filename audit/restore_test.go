package audit

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
)

// fsLogOptions are the options of a log in a temporary folder sealing
// segments of 50 events into a filesystem object store.
func fsLogOptions(t *testing.T) (Options, objstore.Store, testKeys) {
	t.Helper()
	st, err := fs.Open(filepath.Join(t.TempDir(), "objects"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys := newKeys(t)
	return Options{Path: filepath.Join(t.TempDir(), "audit.db"), Origin: testOrigin, Store: st, Signer: keys.signer,
		QueryKey: []byte("0123456789abcdef"), SegmentEvents: 50, SegmentInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)}, st, keys
}

// copyDB copies a closed log's database files (WAL and shared memory
// included, when there are any) from one path to another, as a backup
// and a restore of it would.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, suf := range []string{"", "-wal", "-shm"} {
		os.Remove(to + suf)
		b, err := os.ReadFile(from + suf)
		if errors.Is(err, os.ErrNotExist) && suf != "" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to+suf, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// An audit.db restored from an older backup, or lost, is brought up to
// date from the sealed segments when the log opens: the chain goes on after
// the last sealed event instead of reusing sealed seqs (a fork), and
// cairn audit verify passes.
func TestRestoredDatabaseCatchesUp(t *testing.T) {
	opts, st, keys := fsLogOptions(t)
	path := opts.Path
	backup := filepath.Join(filepath.Dir(path), "backup.db")
	ctx := context.Background()
	open := func() *Log {
		t.Helper()
		l, err := Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	verify := func(wantHead Seq) {
		t.Helper()
		r, err := Verify(ctx, VerifyOptions{Path: path, Origin: testOrigin, Store: st, Verifiers: []note.Verifier{keys.verifier}})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Checkpoint != wantHead {
			t.Fatalf("verify: checkpoint %d, want %d: %+v\n%s", r.Checkpoint, wantHead, r, problems(r))
		}
	}

	l := open()
	record(t, l, 60)
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()
	copyDB(t, path, backup) // sealed up to 60

	l = open()
	record(t, l, 90)
	if _, err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	record(t, l, 5) // 151-155, never sealed: lost with the database
	l.Close()

	copyDB(t, backup, path)
	l = open()
	if h, s := l.Head(), l.SealStatus(); h != 150 || s.Sealed != 150 {
		t.Fatalf("restored database: head %d, sealed %d; want both 150 (the last sealed event)", h, s.Sealed)
	}
	if seq, err := l.Record(ctx, sampleEvent(1000)); err != nil || seq != 151 {
		t.Fatalf("first event after the restore: seq %d, %v; want 151", seq, err)
	}
	if _, err := l.Seal(ctx); err != nil {
		t.Fatalf("sealing after the restore: %v", err)
	}
	l.Close()
	verify(151)

	// No database at all: rebuilt whole from the store.
	for _, suf := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suf)
	}
	l = open()
	if h := l.Head(); h != 151 {
		t.Fatalf("rebuilt database: head %d, want 151", h)
	}
	es, err := l.readEntries(ctx, 1, 200)
	if err != nil || len(es) != 151 || es[150].Event.Details.Bytes != sampleEvent(1000).Details.Bytes {
		t.Fatalf("rebuilt database: %d entries, %v", len(es), err)
	}
	l.Close()
	verify(151)
}

// A segment that does not continue the database's chain, a checkpoint that
// does not match its segment, and a database that went on from an older
// copy (a fork made before the catch-up existed) each stop Open with
// ErrTampered: the log is fail-closed.
func TestCatchUpRefusesDamage(t *testing.T) {
	setup := func(t *testing.T) (*testEnv, string) {
		e := newEnv(t, func(o *Options) { o.SegmentEvents = 50 })
		record(t, e.log, 30)
		e.log.Close()
		backup := filepath.Join(e.dir, "backup.db")
		copyDB(t, e.path, backup) // 30 events, none sealed
		e.open(func(o *Options) { o.SegmentEvents = 50 })
		record(t, e.log, 30)
		if _, err := e.log.Seal(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.log.Close()
		return e, backup
	}
	reopen := func(e *testEnv) error {
		l, err := Open(e.options(func(o *Options) { o.SegmentEvents = 50 }))
		if err == nil {
			l.Close()
		}
		return err
	}
	t.Run("segment edited", func(t *testing.T) {
		e, backup := setup(t)
		key := SegmentKey(testOrigin, 51)
		b := e.store.objs[key]
		b[len(b)/2] ^= 1
		copyDB(t, backup, e.path)
		if err := reopen(e); !errors.Is(err, ErrTampered) {
			t.Fatalf("Open with an edited segment: %v, want ErrTampered", err)
		}
	})
	t.Run("checkpoint replaced", func(t *testing.T) {
		e, backup := setup(t)
		other := newKeys(t)
		n, err := note.Sign(&note.Note{Text: Checkpoint{Origin: testOrigin, Size: 50, Root: Hash{1}}.Text()}, other.signer)
		if err != nil {
			t.Fatal(err)
		}
		e.store.objs[CheckpointKey(testOrigin, 50)] = n
		copyDB(t, backup, e.path)
		if err := reopen(e); !errors.Is(err, ErrTampered) {
			t.Fatalf("Open with a foreign checkpoint: %v, want ErrTampered", err)
		}
	})
	t.Run("fork", func(t *testing.T) {
		e, backup := setup(t)
		copyDB(t, backup, e.path)
		// Without a store, nothing is caught up: the chain goes on from
		// 30 with other events than the sealed 31-60.
		l, err := Open(e.options(func(o *Options) { o.Store, o.SegmentEvents = nil, 50 }))
		if err != nil {
			t.Fatal(err)
		}
		record(t, l, 40)
		l.Close()
		if err := reopen(e); !errors.Is(err, ErrTampered) {
			t.Fatalf("Open of a forked database: %v, want ErrTampered", err)
		}
	})
	// With the store down the log opens as it did (availability), and the
	// next Open with the store back catches up.
	t.Run("store down", func(t *testing.T) {
		e, backup := setup(t)
		copyDB(t, backup, e.path)
		e.store.down = true
		l, err := Open(e.options(func(o *Options) { o.SegmentEvents = 50 }))
		if err != nil {
			t.Fatalf("Open with the store down: %v", err)
		}
		if h := l.Head(); h != 30 {
			t.Errorf("head %d with the store down, want the database's 30", h)
		}
		l.Close()
		e.store.down = false
		l, err = Open(e.options(func(o *Options) { o.SegmentEvents = 50 }))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if h := l.Head(); h != 60 {
			t.Errorf("head %d with the store back, want 60", h)
		}
	})
}

// Events that another process records (a CLI command beside cairn serve)
// are sealed by the sealing log without it recording anything itself.
func TestSealsOtherProcessesEvents(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 3)
	cli, err := Open(e.options(func(o *Options) { o.NoSealing = true }))
	if err != nil {
		t.Fatal(err)
	}
	record(t, cli, 4)
	if _, err := cli.Seal(context.Background()); err == nil {
		t.Error("a NoSealing log sealed")
	}
	cli.Close()
	if _, err := e.log.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := e.log.SealStatus(); s.Sealed != 7 {
		t.Fatalf("sealed %d, want the 7 events of both logs", s.Sealed)
	}
	if r := e.verify(); !r.OK() || r.Checkpoint != 7 {
		t.Fatalf("verify: %+v\n%s", r, problems(r))
	}
}
