package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

func mapRows(t *testing.T, s *Store, prefix string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM objects WHERE key >= ? AND key < ?`, prefix, prefix+"\xff").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func listKeys(t *testing.T, s *Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := s.List(context.Background(), prefix, func(i objstore.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return keys
}

func put(t *testing.T, s *Store, key, value string) {
	t.Helper()
	if err := s.Put(context.Background(), key, strings.NewReader(value), int64(len(value))); err != nil {
		t.Fatal(err)
	}
}

// The writer's map rows come behind its flushes; meanwhile another process
// finds every flushed object (and only those) by reading the published
// tail, across volumes, deletions and the map catching up.
func TestFlushedTailVisibleToReaders(t *testing.T) {
	old := MaxVolume
	MaxVolume = 80 // two records a volume
	defer func() { MaxVolume = old }()
	dir := t.TempDir()
	w := open(t, dir)
	ctx := context.Background()
	for i := range 5 {
		put(t, w, fmt.Sprintf("t/%d", i), fmt.Sprintf("value %d", i))
	}
	if err := w.PutUnsynced(ctx, "t/u", strings.NewReader("unflushed"), 9); err != nil {
		t.Fatal(err)
	}
	if n := mapRows(t, w, "t/"); n != 0 {
		t.Fatalf("%d map rows written by the flushes themselves", n)
	}
	if vols := volumeFiles(t, dir); len(vols) < 3 {
		t.Fatalf("%d volumes, want the tail to span several", len(vols))
	}
	r := open(t, dir)
	if !r.ReadOnly() {
		t.Fatal("second open is not read-only")
	}
	for i := range 5 {
		if got := string(get(t, r, fmt.Sprintf("t/%d", i))); got != fmt.Sprintf("value %d", i) {
			t.Fatalf("reader: t/%d = %q", i, got)
		}
	}
	if _, err := r.Stat(ctx, "t/u"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("reader sees an unflushed object: %v", err)
	}
	want := []string{"t/0", "t/1", "t/2", "t/3", "t/4"}
	if got := listKeys(t, r, "t/"); !slices.Equal(got, want) {
		t.Fatalf("reader lists %v, want %v", got, want)
	}
	if err := w.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(get(t, r, "t/u")); got != "unflushed" {
		t.Fatalf("reader after the flush: %q", got)
	}
	// The map catches up: listed once, found the same.
	if err := w.writeMap(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mapRows(t, w, "t/"); n != 6 {
		t.Fatalf("%d map rows after writeMap, want 6", n)
	}
	want = append(want, "t/u")
	if got := listKeys(t, r, "t/"); !slices.Equal(got, want) {
		t.Fatalf("reader lists %v, want %v", got, want)
	}
	// A deletion, and an object past the map again.
	put(t, w, "t/5", "value 5")
	if err := w.Delete(ctx, "t/2"); err != nil {
		t.Fatal(err)
	}
	put(t, w, "t/6", "value 6")
	if _, err := r.Stat(ctx, "t/2"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("reader sees a deleted object: %v", err)
	}
	if got := string(get(t, r, "t/6")); got != "value 6" {
		t.Fatalf("reader: t/6 = %q", got)
	}
	want = []string{"t/0", "t/1", "t/3", "t/4", "t/5", "t/6", "t/u"}
	if got := listKeys(t, r, "t/"); !slices.Equal(got, want) {
		t.Fatalf("reader lists %v, want %v", got, want)
	}
	// The writer's own view is the same, and so is the next writer's.
	if got := listKeys(t, w, "t/"); !slices.Equal(got, want) {
		t.Fatalf("writer lists %v, want %v", got, want)
	}
	r.Close()
	w.Close()
	w2 := open(t, dir)
	if n := mapRows(t, w2, "t/"); n != len(want) {
		t.Fatalf("after Close: %d map rows, want %d", n, len(want))
	}
	if got := listKeys(t, w2, "t/"); !slices.Equal(got, want) {
		t.Fatalf("reopened writer lists %v, want %v", got, want)
	}
}

// The map is also written on its own, shortly after the flushes.
func TestMapWrittenBehind(t *testing.T) {
	old := mapEvery
	mapEvery = 10 * time.Millisecond
	defer func() { mapEvery = old }()
	w := open(t, t.TempDir())
	put(t, w, "b/1", "one")
	// writeMap commits the rows and only then drops them from pending:
	// both are waited for.
	deadline := time.Now().Add(20 * time.Second)
	for {
		rows := mapRows(t, w, "b/")
		w.mu.Lock()
		pending := len(w.pending)
		w.mu.Unlock()
		if rows == 1 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d map rows (want 1), %d rows still pending (want 0)", rows, pending)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A writer never holds more than maxPending rows: past it, the flush
// writes the map itself.
func TestMapBacklogWrittenByFlush(t *testing.T) {
	oldMax, oldEvery := maxPending, mapEvery
	maxPending, mapEvery = 10, time.Hour
	defer func() { maxPending, mapEvery = oldMax, oldEvery }()
	w := open(t, t.TempDir())
	for i := range 25 {
		put(t, w, fmt.Sprintf("p/%02d", i), "x")
		w.mu.Lock()
		n := len(w.pending)
		w.mu.Unlock()
		if n >= maxPending {
			t.Fatalf("after %d puts: %d rows pending", i+1, n)
		}
	}
	if n := mapRows(t, w, "p/"); n < 16 {
		t.Fatalf("%d map rows, want the backlog written", n)
	}
}

// A mark left past the end by a writer that died (its torn end then cut)
// is rewritten at Open, before the next writer's records could lie under
// it unflushed.
func TestStaleMarkRewrittenAtOpen(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir)
	put(t, w, "m/1", "one")
	w.Close()
	f, err := os.OpenFile(filepath.Join(dir, "durable"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := publishMark(f, 1, 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w2 := open(t, dir)
	vol, end, ok, err := readMark(dir)
	if err != nil || !ok {
		t.Fatalf("mark: %v %v", ok, err)
	}
	st, err := os.Stat(w2.volPath(1))
	if err != nil {
		t.Fatal(err)
	}
	if vol != 1 || end != st.Size() {
		t.Fatalf("mark (%d, %d) after Open, want (1, %d)", vol, end, st.Size())
	}
	// A torn mark reads as none, and a reader then relies on the map.
	os.WriteFile(filepath.Join(dir, "durable"), []byte("garbage-garbage!"), 0o640)
	if _, _, ok, _ := readMark(dir); ok {
		t.Fatal("a damaged mark was accepted")
	}
}

// A store with nothing new flushed writes nothing to its map: an idle
// serve does not rewrite map.db twice a second.
func TestIdleStoreWritesNoMap(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir)
	ctx := context.Background()
	wal := func() int64 {
		st, err := os.Stat(filepath.Join(dir, "map.db-wal"))
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	before := wal()
	if err := w.writeMap(ctx); err != nil {
		t.Fatal(err)
	}
	if got := wal(); got != before {
		t.Fatalf("an idle store wrote its map after Open: WAL %d -> %d bytes", before, got)
	}
	put(t, w, "i/1", "one")
	if err := w.writeMap(ctx); err != nil {
		t.Fatal(err)
	}
	after := wal()
	if after == before {
		t.Fatal("the map was not written for a flushed object")
	}
	for range 3 {
		if err := w.writeMap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := wal(); got != after {
		t.Fatalf("an idle store wrote its map: WAL %d -> %d bytes", after, got)
	}
}
