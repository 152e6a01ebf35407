package volume

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/storetest"
)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) objstore.Store { return open(t, t.TempDir()) })
}

// Small volumes, so that rotation happens inside the conformance suite.
func TestConformanceSmallVolumes(t *testing.T) {
	old := MaxVolume
	MaxVolume = 64 << 10
	defer func() { MaxVolume = old }()
	storetest.Run(t, func(t *testing.T) objstore.Store { return open(t, t.TempDir()) })
}

func get(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnsyncedThenReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		if err := s.PutUnsynced(ctx, fmt.Sprintf("k/%02d", i), strings.NewReader(fmt.Sprint("value ", i)), int64(len(fmt.Sprint("value ", i)))); err != nil {
			t.Fatal(err)
		}
	}
	// Visible in this process before the flush.
	if got := get(t, s, "k/07"); string(got) != "value 7" {
		t.Fatalf("got %q", got)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := open(t, dir)
	n := 0
	s2.List(ctx, "k/", func(objstore.Info) error { n++; return nil })
	if n != 50 || string(get(t, s2, "k/49")) != "value 49" {
		t.Fatalf("after reopen: %d objects", n)
	}
}

// A second process (here: a second Open while the first holds the lock)
// reads what the writer flushed and cannot write.
func TestReadOnlyWhileWriterRuns(t *testing.T) {
	dir := t.TempDir()
	w := open(t, dir)
	ctx := context.Background()
	w.Put(ctx, "a/b", strings.NewReader("flushed"), 7)
	w.PutUnsynced(ctx, "a/c", strings.NewReader("pending"), 7)
	r := open(t, dir)
	if !r.ReadOnly() {
		t.Fatal("second open is not read-only")
	}
	if got := get(t, r, "a/b"); string(got) != "flushed" {
		t.Fatalf("reader sees %q", got)
	}
	if _, err := r.Stat(ctx, "a/c"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("reader sees an unflushed object: %v", err)
	}
	if err := r.Put(ctx, "a/d", strings.NewReader("x"), 1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only Put: %v", err)
	}
	w.Sync(ctx)
	if got := get(t, r, "a/c"); string(got) != "pending" {
		t.Fatalf("reader after flush sees %q", got)
	}
}

func volumeFiles(t *testing.T, dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "volumes", "*.vol"))
	return files
}

// Delete destroys the bytes in the volume, not just the map row: what a
// crypto-shredding erasure relies on.
func TestDeleteZeroesBytes(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	secret := []byte("erase-me-" + strings.Repeat("x", 5000) + "-unique-secret-token")
	s.Put(ctx, "keys/abc/k", bytes.NewReader(secret), int64(len(secret)))
	s.Put(ctx, "keys/abc/other", strings.NewReader("kept"), 4)
	if err := s.Delete(ctx, "keys/abc/k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "keys/abc/k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("second delete: %v", err)
	}
	for _, f := range volumeFiles(t, dir) {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("unique-secret-token")) {
			t.Fatalf("deleted bytes still in %s", f)
		}
	}
	s.Close()
	// Lose the map: everything is rebuilt from the volumes, the deleted
	// object stays deleted and the kept one is intact.
	os.Remove(filepath.Join(dir, "map.db"))
	os.Remove(filepath.Join(dir, "map.db-wal"))
	os.Remove(filepath.Join(dir, "map.db-shm"))
	s2 := open(t, dir)
	if _, err := s2.Stat(ctx, "keys/abc/k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("deleted object back after the map was rebuilt: %v", err)
	}
	if got := get(t, s2, "keys/abc/other"); string(got) != "kept" {
		t.Fatalf("kept object: %q", got)
	}
	// A key deleted can be stored again.
	if err := s2.Put(ctx, "keys/abc/k", strings.NewReader("new"), 3); err != nil {
		t.Fatal(err)
	}
}

// A torn end: a record cut anywhere, or garbage appended, is removed at
// Open and everything flushed before it is intact.
func TestTornTail(t *testing.T) {
	for _, tear := range []string{"half-header", "half-data", "garbage", "zeros"} {
		t.Run(tear, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir)
			ctx := context.Background()
			s.Put(ctx, "a/1", strings.NewReader("first"), 5)
			s.Put(ctx, "a/2", strings.NewReader("second"), 6)
			s.Close()
			f := volumeFiles(t, dir)[0]
			good, _ := os.ReadFile(f)
			rec := header("a/3", 0, 1000, 1)
			body := make([]byte, 1004)
			rand.Read(body)
			var tail []byte
			switch tear {
			case "half-header":
				tail = rec[:10]
			case "half-data":
				tail = append(rec, body[:500]...)
			case "garbage":
				tail = body
			case "zeros":
				// Header whole, data never written (zeros): the data CRC
				// tells.
				tail = append(rec, make([]byte, 1004)...)
			}
			os.WriteFile(f, append(good, tail...), 0o640)
			s2 := open(t, dir)
			if _, err := s2.Stat(ctx, "a/3"); !errors.Is(err, objstore.ErrNotExist) {
				t.Fatalf("torn record visible: %v", err)
			}
			if got := get(t, s2, "a/2"); string(got) != "second" {
				t.Fatalf("flushed record lost: %q", got)
			}
			if st, _ := os.Stat(f); st.Size() != int64(len(good)) {
				t.Fatalf("volume not cut back: %d, want %d", st.Size(), len(good))
			}
			// And the log goes on.
			if err := s2.Put(ctx, "a/3", strings.NewReader("third"), 5); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func BenchmarkPutUnsyncedBatch(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	data := make([]byte, 5000)
	rand.Read(data)
	b.SetBytes(5000)
	for i := 0; b.Loop(); i++ {
		if err := s.PutUnsynced(ctx, fmt.Sprintf("m/%d", i), bytes.NewReader(data), 5000); err != nil {
			b.Fatal(err)
		}
		if i%32 == 31 {
			s.Sync(ctx)
		}
	}
}

// List pages through map.db and merges this process's unflushed records,
// in key order, across page boundaries.
func TestListPages(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	for i := 0; i < 2*listPage+100; i++ {
		k := fmt.Sprintf("p/%05d", i)
		if i%3 == 0 {
			s.PutUnsynced(ctx, k, strings.NewReader("u"), 1) // stays pending
		} else {
			s.Put(ctx, k, strings.NewReader("s"), 1)
		}
	}
	s.PutUnsynced(ctx, "p/99999", strings.NewReader("last"), 4)
	var keys []string
	if err := s.List(ctx, "p/", func(i objstore.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2*listPage+101 {
		t.Fatalf("%d keys listed", len(keys))
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Fatalf("out of order at %d: %s, %s", i, keys[i-1], keys[i])
		}
	}
}

// The writer's filter of taken names, loaded from map.db at Open and fed by
// every Put, never lets a taken name through, whether it was taken by an
// earlier run, is still unflushed, or was flushed in this run.
func TestKnownKeys(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := open(t, dir)
	if err := s.Put(ctx, "k/old", strings.NewReader("old"), 3); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	<-s.loadedKeys
	if !s.known.Absent("k/new") {
		t.Fatal("the loaded filter does not rule out a name never taken")
	}
	put := func(key string) error { return s.PutUnsynced(ctx, key, strings.NewReader("v"), 1) }
	if err := put("k/old"); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("name taken by an earlier run: %v", err)
	}
	if err := put("k/new"); err != nil {
		t.Fatal(err)
	}
	if err := put("k/new"); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("name taken, unflushed: %v", err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := put("k/new"); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("name taken and flushed in this run: %v", err)
	}
	if got := get(t, s, "k/new"); string(got) != "v" {
		t.Fatalf("k/new = %q", got)
	}
}

// putSecret stores keys/abc/k holding token among other bytes, and
// keys/abc/other holding "kept".
func putSecret(t *testing.T, s *Store, token string) {
	t.Helper()
	ctx := context.Background()
	secret := []byte("erase-me-" + strings.Repeat("y", 3000) + token)
	if err := s.Put(ctx, "keys/abc/k", bytes.NewReader(secret), int64(len(secret))); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "keys/abc/other", strings.NewReader("kept"), 4); err != nil {
		t.Fatal(err)
	}
}

// checkErased checks that keys/abc/k is gone, bytes included, and
// keys/abc/other intact.
func checkErased(t *testing.T, dir string, s *Store, token string) {
	t.Helper()
	for _, f := range volumeFiles(t, dir) {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(token)) {
			t.Fatalf("the deleted object's bytes are still in %s", f)
		}
	}
	if _, err := s.Stat(context.Background(), "keys/abc/k"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("deleted object: Stat = %v", err)
	}
	if got := get(t, s, "keys/abc/other"); string(got) != "kept" {
		t.Fatalf("kept object: %q", got)
	}
}

// A Delete that died after removing the object's row but before punching
// its bytes (steps 2 to 4) is finished at the next Open.
func TestUnfinishedDeletionIsFinished(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	putSecret(t, s, "-unfinished-secret-token")
	// Delete's first step: the object flushed and in the map.
	if err := s.writeMap(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := s.lookup(context.Background(), "keys/abc/k")
	if err != nil {
		t.Fatal(err)
	}
	// What step 2 commits; the process dies before the punch.
	if _, err := s.db.Exec(`DELETE FROM objects WHERE key = 'keys/abc/k'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`INSERT INTO punches(vol, off, size) VALUES(?, ?, ?)`, l.vol, l.off, l.size); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir)
	checkErased(t, dir, s, "-unfinished-secret-token")
	var n int
	s.db.QueryRow(`SELECT count(*) FROM punches`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d punches still recorded", n)
	}
}

// The same death, with map.db lost as well (its recorded punch with it):
// the rescan of the volumes finds the deletion record and punches the
// object it names.
func TestRescanPunchesDeletedObjects(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	putSecret(t, s, "-rescan-secret-token")
	// Step 1 of Delete: the deletion record, flushed; then the process dies.
	s.mu.Lock()
	rec := append(header("keys/abc/k", flagDelete, 0, time.Now().UnixNano()), 0, 0, 0, 0)
	if _, err := s.active.WriteAt(rec, s.actEnd); err != nil {
		t.Fatal(err)
	}
	s.actEnd += int64(len(rec))
	s.dirty[s.actID] = s.actEnd
	s.mu.Unlock()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{"map.db", "map.db-wal", "map.db-shm"} {
		os.Remove(filepath.Join(dir, name))
	}
	s = open(t, dir)
	checkErased(t, dir, s, "-rescan-secret-token")
}

func hinted(s *Store, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.hints[key]
	return ok
}

// Prefetch's locations serve one lookup each, never outlive a deletion
// (also one racing the query), and stay bounded.
func TestPrefetch(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	for _, k := range []string{"o/a", "o/b", "o/c", "o/d"} {
		if err := s.Put(ctx, k, strings.NewReader("value of "+k), int64(len("value of "+k))); err != nil {
			t.Fatal(err)
		}
	}
	// Prefetch reads map.db, which the writer fills behind its flushes
	// (until then its lookups find the rows in memory).
	if err := s.writeMap(ctx); err != nil {
		t.Fatal(err)
	}
	s.Prefetch(ctx, []string{"o/a", "o/b", "o/missing", "o/c"})
	for k, want := range map[string]bool{"o/a": true, "o/b": true, "o/c": true, "o/missing": false, "o/d": false} {
		if hinted(s, k) != want {
			t.Fatalf("%s hinted: %v, want %v", k, !want, want)
		}
	}
	if got := get(t, s, "o/a"); string(got) != "value of o/a" {
		t.Fatalf("o/a = %q", got)
	}
	if hinted(s, "o/a") {
		t.Fatal("a used location is kept")
	}
	if got := get(t, s, "o/a"); string(got) != "value of o/a" {
		t.Fatalf("o/a again = %q", got)
	}

	// A deletion drops its location.
	if err := s.Delete(ctx, "o/b"); err != nil {
		t.Fatal(err)
	}
	if hinted(s, "o/b") {
		t.Fatal("a deleted object's location is kept")
	}
	if _, err := s.Get(ctx, "o/b"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get of a deleted object: %v", err)
	}

	// A deletion between the query and the keeping: nothing is kept.
	prefetchQueried = func() {
		prefetchQueried = nil
		if err := s.Delete(ctx, "o/d"); err != nil {
			t.Error(err)
		}
	}
	defer func() { prefetchQueried = nil }()
	s.Prefetch(ctx, []string{"o/d"})
	if hinted(s, "o/d") {
		t.Fatal("a location found before a deletion is kept after it")
	}
	if _, err := s.Get(ctx, "o/d"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("get of an object deleted during a prefetch: %v", err)
	}

	// Bounded: past maxHints, what was kept is dropped.
	old := maxHints
	maxHints = 3
	defer func() { maxHints = old }()
	s.Prefetch(ctx, []string{"o/a"}) // o/c is still kept: 2
	if !hinted(s, "o/c") || !hinted(s, "o/a") {
		t.Fatal("locations within the bound dropped")
	}
	s.Prefetch(ctx, []string{"o/a", "o/c"}) // 2 + 2 > 3
	s.mu.Lock()
	n := len(s.hints)
	s.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d locations kept, want 2", n)
	}
	if got := get(t, s, "o/c"); string(got) != "value of o/c" {
		t.Fatalf("o/c = %q", got)
	}
}

// BenchmarkPrefetch looks up 500 random keys of 50,000 (hashes, as the
// archive's object names are) in one Prefetch, as the IMAP view does for
// each 500 messages it sends.
func BenchmarkPrefetch(b *testing.B) {
	s := open(b, b.TempDir())
	ctx := context.Background()
	keys := make([]string, 50000)
	for i := range keys {
		h := sha256.Sum256([]byte(fmt.Sprint(i)))
		keys[i] = "m/" + hex.EncodeToString(h[:])
		if err := s.PutUnsynced(ctx, keys[i], strings.NewReader("x"), 1); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if err := s.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	batch := make([]string, prefetchChunk)
	for b.Loop() {
		for i := range batch {
			batch[i] = keys[r.IntN(len(keys))]
		}
		s.hints = nil
		s.Prefetch(ctx, batch)
		if len(s.hints) == 0 {
			b.Fatal("nothing prefetched")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*prefetchChunk), "ns/key")
}

// Every connection to map.db gets the larger page cache (the DSN sets it),
// not only the first.
func TestMapCache(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var conns []*sql.Conn
	for range 3 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var kib int
		if err := c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&kib); err != nil {
			t.Fatal(err)
		}
		if kib != -mapCacheKiB {
			t.Fatalf("connection %d: cache_size %d, want %d", len(conns), kib, -mapCacheKiB)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// A hint reads the object back from where it was put, in this process and
// in a read-only one, and every way it can lead astray is ErrStaleHint:
// another key, a deleted (punched) object, a damaged record, a size over
// the caller's limit, a hint that is not one.
func TestReadHint(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // over one chunk: appended in pieces
	objs := map[string][]byte{"m/a": []byte("first"), "m/b": big, "m/c": []byte("third"), "m/d": {}}
	hints := map[string][]byte{}
	for _, k := range []string{"m/a", "m/b", "m/c", "m/d"} {
		h, err := s.PutUnsyncedHint(ctx, k, bytes.NewReader(objs[k]), int64(len(objs[k])))
		if err != nil {
			t.Fatal(err)
		}
		hints[k] = h
	}
	read := func(s *Store, key string, hint []byte, max int64) ([]byte, error) {
		return s.ReadHint(ctx, key, hint, max, nil)
	}
	// An empty object is always looked up (deleting it changes no byte
	// of its record).
	b, err := read(s, "m/d", hints["m/d"], 1<<20)
	if !errors.Is(err, objstore.ErrStaleHint) {
		t.Fatalf("empty object: %v", err)
	}
	// Before the flush (this process), after it, and from a reader.
	for _, k := range []string{"m/a", "m/b", "m/c"} {
		if b, err := read(s, k, hints[k], 1<<20); err != nil || !bytes.Equal(b, objs[k]) {
			t.Fatalf("%s before the flush: %v (%d bytes)", k, err, len(b))
		}
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir)
	for _, k := range []string{"m/a", "m/b", "m/c"} {
		if b, err := read(r, k, hints[k], 1<<20); err != nil || !bytes.Equal(b, objs[k]) {
			t.Fatalf("%s from a reader: %v", k, err)
		}
		// Hint, for an object stored earlier, gives the same hint.
		if h, err := r.Hint(ctx, k); err != nil || !bytes.Equal(h, hints[k]) {
			t.Fatalf("Hint(%s) = %x, %v; put gave %x", k, h, err, hints[k])
		}
	}
	if _, err := r.Hint(ctx, "m/none"); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("Hint of a missing object: %v", err)
	}
	stale := func(what string, b []byte, err error) {
		t.Helper()
		if !errors.Is(err, objstore.ErrStaleHint) || b != nil {
			t.Fatalf("%s: %v (%d bytes), want ErrStaleHint", what, err, len(b))
		}
	}
	b, err = read(s, "m/c", hints["m/a"], 1<<20)
	stale("another key's hint", b, err)
	b, err = read(s, "m/b", hints["m/b"], int64(len(big))-1)
	stale("over max", b, err)
	for _, h := range [][]byte{nil, {}, {9, 1, 2, 3}, append(append([]byte{}, hints["m/a"]...), 0), hints["m/a"][:2]} {
		b, err = read(s, "m/a", h, 1<<20)
		stale(fmt.Sprintf("malformed hint %x", h), b, err)
	}
	l, _ := parseHint(hints["m/a"])
	b, err = read(s, "m/a", appendHint(nil, loc{vol: l.vol + 7, off: l.off, size: l.size}), 1<<20)
	stale("a volume that does not exist", b, err)
	b, err = read(s, "m/a", appendHint(nil, loc{vol: l.vol, off: l.off + 1, size: l.size}), 1<<20)
	stale("a shifted offset", b, err)
	b, err = read(s, "m/a", appendHint(nil, loc{vol: l.vol, off: 1 << 40, size: l.size}), 1<<20)
	stale("past the end", b, err)
	b, err = read(s, "m/a", appendHint(nil, loc{vol: l.vol, off: l.off, size: l.size + 1}), 1<<20)
	stale("another size", b, err)

	// A flipped data byte fails the data CRC.
	lc, _ := parseHint(hints["m/c"])
	f, err := os.OpenFile(s.volPath(lc.vol), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), lc.off+1)
	f.Close()
	b, err = read(s, "m/c", hints["m/c"], 1<<20)
	stale("a damaged record", b, err)

	// A deleted object's hint leads nowhere, in the writer and a reader.
	if err := s.Delete(ctx, "m/a"); err != nil {
		t.Fatal(err)
	}
	b, err = read(s, "m/a", hints["m/a"], 1<<20)
	stale("a deleted object", b, err)
	b, err = read(r, "m/a", hints["m/a"], 1<<20)
	stale("a deleted object, from a reader", b, err)
	if b, err := read(s, "m/b", hints["m/b"], 1<<20); err != nil || !bytes.Equal(b, big) {
		t.Fatalf("m/b after another's deletion: %v", err)
	}
}

// FuzzParseHint: any bytes parse or are refused without a panic, and a
// location that parses survives being encoded and parsed again.
func FuzzParseHint(f *testing.F) {
	f.Add(appendHint(nil, loc{vol: 1, off: 27 + 5, size: 100}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x10, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, ok := parseHint(b)
		if !ok {
			return
		}
		again, ok := parseHint(appendHint(nil, l))
		if !ok || again != l {
			t.Fatalf("%x parsed as %+v, then as %+v (%v)", b, l, again, ok)
		}
	})
}
