// Package storetest is the conformance suite that every objstore backend
// passes. A backend's test calls Run with a function that opens an empty
// store; each subtest gets a store of its own.
//
// The suite checks the objstore contract, not a backend's internals: write
// once, one winner among racing Puts, exact sizes, nothing visible after a
// failed Put, ErrNotExist from every read of a missing key, List order and
// prefix semantics, ranged reads at the edges (when the store implements
// objstore.RangeReader), key syntax, context cancellation, and Object Lock
// (when the store implements objstore.Locker and its bucket has the lock).
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Run runs the whole suite. open must return an empty store and register
// its own cleanup with t.Cleanup; it is called once per subtest.
func Run(t *testing.T, open func(t *testing.T) objstore.Store) {
	t.Run("InvalidKey", func(t *testing.T) { testInvalidKey(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("WriteOnce", func(t *testing.T) { testWriteOnce(t, open(t)) })
	t.Run("RacingPuts", func(t *testing.T) { testRacingPuts(t, open(t)) })
	t.Run("BadReader", func(t *testing.T) { testBadReader(t, open(t)) })
	t.Run("Large", func(t *testing.T) { testLarge(t, open(t)) })
	t.Run("Missing", func(t *testing.T) { testMissing(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("List", func(t *testing.T) { testList(t, open(t)) })
	t.Run("ConcurrentPuts", func(t *testing.T) { testConcurrentPuts(t, open(t)) })
	t.Run("RangeRead", func(t *testing.T) { testRangeRead(t, open(t)) })
	t.Run("Context", func(t *testing.T) { testContext(t, open(t)) })
	t.Run("Locker", func(t *testing.T) { testLocker(t, open) })
}

// content returns a reader of size deterministic pseudo-random bytes. It is
// neither an io.Seeker nor an io.ReaderAt, so a backend sees a plain stream.
func content(seed uint64, size int64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(rand.NewChaCha8(s), size)
}

// contentBytes is content read into memory, for small objects.
func contentBytes(seed uint64, size int64) []byte {
	b, err := io.ReadAll(content(seed, size))
	if err != nil {
		panic(err)
	}
	return b
}

func put(t *testing.T, s objstore.Store, key string, b []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, plain(b), int64(len(b))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
}

// plain hides bytes.Reader's Seek and ReadAt.
func plain(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) }

func get(t *testing.T, s objstore.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get(%q): read: %v", key, err)
	}
	return b
}

func list(t *testing.T, s objstore.Store, prefix string) []objstore.Info {
	t.Helper()
	var got []objstore.Info
	if err := s.List(t.Context(), prefix, func(i objstore.Info) error {
		got = append(got, i)
		return nil
	}); err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func listKeys(t *testing.T, s objstore.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for _, i := range list(t, s, prefix) {
		keys = append(keys, i.Key)
	}
	return keys
}

// assertAbsent checks that every read path agrees that key holds nothing.
func assertAbsent(t *testing.T, s objstore.Store, key string) {
	t.Helper()
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("Stat(%q) = %v, want ErrNotExist", key, err)
	}
	rc, err := s.Get(t.Context(), key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("Get(%q) = %v, want ErrNotExist", key, err)
	}
	for _, i := range list(t, s, key) {
		if i.Key == key {
			t.Errorf("List(%q) shows %q (%d bytes)", key, key, i.Size)
		}
	}
}

func testInvalidKey(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	bad := []string{
		"", "/", "/a", "a/", "a//b", ".a", "a/.b", "a/./b", "a/../b", "..",
		"A", "a/B", "a b", "a\x00b", "a\\b", "é", strings.Repeat("a", 513),
		strings.Repeat("s", 256), "a/" + strings.Repeat("s", 256) + "/b",
	}
	for _, key := range bad {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if rc, err := s.Get(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			if err == nil {
				rc.Close()
			}
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
		if rr, ok := s.(objstore.RangeReader); ok {
			if r, err := rr.OpenReaderAt(ctx, key); !errors.Is(err, objstore.ErrInvalidKey) {
				if err == nil {
					r.Close()
				}
				t.Errorf("OpenReaderAt(%q) = %v, want ErrInvalidKey", key, err)
			}
		}
	}
	for _, prefix := range []string{"/", "a//", "A", ".tmp", "a/.", "a/../", "a b"} {
		err := s.List(ctx, prefix, func(objstore.Info) error { return nil })
		if !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", prefix, err)
		}
	}
	// The longest valid key works: 512 bytes, a 255-byte segment.
	long := strings.Repeat("k", 200) + "/" + strings.Repeat("v", 255) + "/" + strings.Repeat("w", 55)
	put(t, s, long, []byte("long key"))
	if got := get(t, s, long); string(got) != "long key" {
		t.Errorf("Get(long key) = %q", got)
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{long}) {
		t.Errorf("List after invalid Puts = %q, want only the long key", got)
	}
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	start := time.Now()
	sizes := []int64{0, 1, 100, 64<<10 + 1, 1<<20 + 7}
	for i, size := range sizes {
		key := fmt.Sprintf("rt/%02d-%d", i, size)
		want := contentBytes(uint64(i), size)
		if err := s.Put(t.Context(), key, content(uint64(i), size), size); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		if got := get(t, s, key); !bytes.Equal(got, want) {
			t.Errorf("Get(%q): %d bytes differ from the %d put", key, len(got), len(want))
		}
		info, err := s.Stat(t.Context(), key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		if info.Key != key || info.Size != size {
			t.Errorf("Stat(%q) = %+v, want key %q size %d", key, info, key, size)
		}
		// Clocks of an S3 server and ours may differ a little.
		if info.ModTime.Before(start.Add(-time.Hour)) || info.ModTime.After(time.Now().Add(time.Hour)) {
			t.Errorf("Stat(%q).ModTime = %v, want about %v", key, info.ModTime, start)
		}
	}
	infos := list(t, s, "rt/")
	if len(infos) != len(sizes) {
		t.Fatalf("List(rt/) has %d objects, want %d", len(infos), len(sizes))
	}
	for i, info := range infos {
		if info.Size != sizes[i] {
			t.Errorf("List: %q has size %d, want %d", info.Key, info.Size, sizes[i])
		}
	}
}

func testWriteOnce(t *testing.T, s objstore.Store) {
	first := []byte("first object")
	put(t, s, "wo/key", first)
	for _, second := range [][]byte{[]byte("second, longer object"), []byte("x"), nil, first} {
		err := s.Put(t.Context(), "wo/key", plain(second), int64(len(second)))
		if !errors.Is(err, objstore.ErrExist) {
			t.Errorf("second Put(%d bytes) = %v, want ErrExist", len(second), err)
		}
	}
	if got := get(t, s, "wo/key"); !bytes.Equal(got, first) {
		t.Errorf("after second Put: content %q, want %q", got, first)
	}
	if info, err := s.Stat(t.Context(), "wo/key"); err != nil || info.Size != int64(len(first)) {
		t.Errorf("Stat after second Put = %+v, %v", info, err)
	}
}

func testRacingPuts(t *testing.T, s objstore.Store) {
	const n = 16
	for round := range 3 {
		key := fmt.Sprintf("race/key-%d", round)
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			errs   [n]error
			bodies [n][]byte
		)
		for i := range n {
			bodies[i] = contentBytes(uint64(round*100+i), int64(1000+i*977))
			wg.Go(func() {
				<-start
				errs[i] = s.Put(t.Context(), key, plain(bodies[i]), int64(len(bodies[i])))
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Errorf("round %d: Puts %d and %d both won", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, objstore.ErrExist):
				t.Errorf("round %d: Put %d = %v, want nil or ErrExist", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no Put won", round)
		}
		if got := get(t, s, key); !bytes.Equal(got, bodies[winner]) {
			t.Errorf("round %d: stored %d bytes are not the winner's %d", round, len(got), len(bodies[winner]))
		}
	}
}

// errAfter is a reader that fails after giving n bytes.
type errAfter struct {
	r   io.Reader
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		return n, e.err
	}
	return n, err
}

var errReader = errors.New("storetest: reader broke")

func testBadReader(t *testing.T, s objstore.Store) {
	cases := []struct {
		name string
		r    func() io.Reader
		size int64
	}{
		{"short", func() io.Reader { return content(1, 500) }, 1000},
		{"short-empty", func() io.Reader { return content(1, 0) }, 10},
		{"long", func() io.Reader { return content(1, 1001) }, 1000},
		{"long-from-empty", func() io.Reader { return content(1, 1) }, 0},
		{"much-longer", func() io.Reader { return content(1, 300<<10) }, 100 << 10},
		{"failing", func() io.Reader { return &errAfter{content(1, 700), errReader} }, 1000},
		{"negative", func() io.Reader { return content(1, 10) }, -1},
	}
	for _, c := range cases {
		key := "bad/" + c.name
		err := s.Put(t.Context(), key, c.r(), c.size)
		if err == nil {
			t.Errorf("%s: Put succeeded", c.name)
			continue
		}
		if errors.Is(err, objstore.ErrExist) {
			t.Errorf("%s: Put = %v, must not be ErrExist", c.name, err)
		}
		if c.name == "failing" && !errors.Is(err, errReader) {
			t.Errorf("%s: Put = %v, want it to wrap the reader's error", c.name, err)
		}
		assertAbsent(t, s, key)
		// The failed Put left nothing that blocks a correct one.
		want := contentBytes(2, 321)
		put(t, s, key, want)
		if got := get(t, s, key); !bytes.Equal(got, want) {
			t.Errorf("%s: Put after the failed one stored other bytes", c.name)
		}
	}
}

// testLarge streams 20 MB through Put and Get and checks that the backend
// did not hold the object in memory.
func testLarge(t *testing.T, s objstore.Store) {
	const size = 20 << 20
	want := sha256.New()
	io.Copy(want, content(42, size))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := s.Put(t.Context(), "large/object", content(42, size), size); err != nil {
		t.Fatalf("Put: %v", err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("Put of %d bytes allocated %d bytes: the backend buffers the object", size, alloc)
	} else {
		t.Logf("Put of %d bytes allocated %d bytes", size, alloc)
	}

	rc, err := s.Get(t.Context(), "large/object")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rc)
	rc.Close()
	if err != nil || n != size {
		t.Fatalf("Get: read %d bytes, %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("Get: content differs")
	}
	if info, err := s.Stat(t.Context(), "large/object"); err != nil || info.Size != size {
		t.Errorf("Stat = %+v, %v", info, err)
	}
}

func testMissing(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	put(t, s, "m/file", []byte("a file"))
	put(t, s, "m/folder/inner", []byte("inside"))
	// "m/file/below": a path element is an object. "m/folder": a folder on
	// a filesystem, a mere prefix on S3. "m/fil": a prefix of a name.
	for _, key := range []string{"m/none", "none/at/all", "m/file/below", "m/folder", "m/fil", "m"} {
		assertAbsent(t, s, key)
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("Delete(%q) = %v, want ErrNotExist", key, err)
		}
		if rr, ok := s.(objstore.RangeReader); ok {
			r, err := rr.OpenReaderAt(ctx, key)
			if err == nil {
				r.Close()
			}
			if !errors.Is(err, objstore.ErrNotExist) {
				t.Errorf("OpenReaderAt(%q) = %v, want ErrNotExist", key, err)
			}
		}
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"m/file", "m/folder/inner"}) {
		t.Errorf("List = %q: the missing-key calls changed the store", got)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	put(t, s, "d/a", []byte("a"))
	put(t, s, "d/b", []byte("b"))
	put(t, s, "d/b2/c", []byte("c"))
	if err := s.Delete(ctx, "d/b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	assertAbsent(t, s, "d/b")
	if err := s.Delete(ctx, "d/b"); !errors.Is(err, objstore.ErrNotExist) {
		t.Errorf("second Delete = %v, want ErrNotExist", err)
	}
	if got := listKeys(t, s, "d/"); !slices.Equal(got, []string{"d/a", "d/b2/c"}) {
		t.Errorf("List after Delete = %q", got)
	}
	// Once deleted, the key is free again.
	put(t, s, "d/b", []byte("new b"))
	if got := get(t, s, "d/b"); string(got) != "new b" {
		t.Errorf("Put after Delete: content %q", got)
	}
	// Deleting the only object in a folder leaves the rest listable.
	if err := s.Delete(ctx, "d/b2/c"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := listKeys(t, s, "d/"); !slices.Equal(got, []string{"d/a", "d/b"}) {
		t.Errorf("List after Delete = %q", got)
	}
}

func testList(t *testing.T, s objstore.Store) {
	ctx := t.Context()
	// '-' and '.' sort before '/', the rest after it: a backend that walks
	// folders naively lists "l/a/b" before "l/a-b".
	keys := []string{
		"l/a-b", "l/a.c", "l/a/b", "l/a/c-d", "l/a/c/d", "l/a/c_d", "l/a0", "l/ab",
		"l/b-", "l/b.", "l/b/0", "l/b_", "l/bz", "l0/x", "l_/x", "la", "z",
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("test keys out of order")
	}
	for i, k := range slices.Backward(keys) { // Put in reverse: List must sort
		put(t, s, k, contentBytes(uint64(i), int64(i)))
	}
	prefixes := []string{
		"", "l", "l/", "l/a", "l/a/", "l/a/c", "l/a/c/", "l/a/c/d", "l/b", "l/b-",
		"l/b.", "l/c", "l/a/b/", "l/a/b/x", "nothing/here/", "z", "z/", "l_",
	}
	for _, prefix := range prefixes {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		if got := listKeys(t, s, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) =\n  %q\nwant\n  %q", prefix, got, want)
		}
	}
	for _, info := range list(t, s, "") {
		// slices.Backward keeps the indices: key i got i bytes.
		if i := slices.Index(keys, info.Key); info.Size != int64(i) {
			t.Errorf("List: %q size %d, want %d", info.Key, info.Size, i)
		}
	}
	// An error from fn stops the walk and comes back.
	stop := errors.New("stop")
	var seen int
	err := s.List(ctx, "", func(objstore.Info) error {
		seen++
		if seen == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || seen != 3 {
		t.Errorf("List with failing fn = %v after %d calls, want stop after 3", err, seen)
	}
}

func testConcurrentPuts(t *testing.T, s objstore.Store) {
	const workers, each = 8, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("c/%02x/%02d", (w*each+i)%5, w*each+i)
				b := contentBytes(uint64(w*each+i), int64(100+i))
				if err := s.Put(t.Context(), key, plain(b), int64(len(b))); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := listKeys(t, s, "c/")
	if len(got) != workers*each || !slices.IsSorted(got) {
		t.Errorf("List after concurrent Puts: %d keys (sorted: %v), want %d sorted", len(got), slices.IsSorted(got), workers*each)
	}
}

func testRangeRead(t *testing.T, s objstore.Store) {
	rr, ok := s.(objstore.RangeReader)
	if !ok {
		t.Skip("store does not implement objstore.RangeReader")
	}
	ctx := t.Context()
	const size = 1000
	data := contentBytes(7, size)
	put(t, s, "rr/obj", data)
	put(t, s, "rr/empty", nil)

	r, err := rr.OpenReaderAt(ctx, "rr/obj")
	if err != nil {
		t.Fatalf("OpenReaderAt: %v", err)
	}
	defer r.Close()
	if r.Size() != size {
		t.Errorf("Size = %d, want %d", r.Size(), size)
	}
	cases := []struct {
		off, n  int64
		wantN   int64
		wantEOF bool // io.EOF is required; at an exact end it is allowed
	}{
		{0, 10, 10, false},
		{0, size, size, false},
		{1, 1, 1, false},
		{500, 0, 0, false},
		{size - 10, 10, 10, false},
		{size - 1, 1, 1, false},
		{size - 5, 10, 5, true},
		{0, size + 1, size, true},
		{size, 1, 0, true},
		{size + 100, 10, 0, true},
	}
	for _, c := range cases {
		p := make([]byte, c.n)
		n, err := r.ReadAt(p, c.off)
		if int64(n) != c.wantN {
			t.Errorf("ReadAt(off %d, len %d): n = %d, want %d (err %v)", c.off, c.n, n, c.wantN, err)
			continue
		}
		if c.wantEOF && err != io.EOF {
			t.Errorf("ReadAt(off %d, len %d): err = %v, want io.EOF", c.off, c.n, err)
		}
		if !c.wantEOF && err != nil && !(err == io.EOF && c.off+c.n == size) {
			t.Errorf("ReadAt(off %d, len %d): err = %v", c.off, c.n, err)
		}
		if c.off < size && !bytes.Equal(p[:n], data[c.off:c.off+int64(n)]) {
			t.Errorf("ReadAt(off %d, len %d): wrong bytes", c.off, c.n)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Errorf("ReadAt(off -1) succeeded")
	}
	// Concurrent ReadAt calls are allowed by io.ReaderAt.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			off := int64(i * 100)
			p := make([]byte, 150)
			n, err := r.ReadAt(p, off)
			want := data[off:min(off+150, size)]
			if n != len(want) || !bytes.Equal(p[:n], want) || (err != nil && err != io.EOF) {
				t.Errorf("concurrent ReadAt(off %d) = %d, %v", off, n, err)
			}
		})
	}
	wg.Wait()

	e, err := rr.OpenReaderAt(ctx, "rr/empty")
	if err != nil {
		t.Fatalf("OpenReaderAt(empty): %v", err)
	}
	defer e.Close()
	if e.Size() != 0 {
		t.Errorf("empty Size = %d", e.Size())
	}
	if n, err := e.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Errorf("empty ReadAt = %d, %v, want 0, io.EOF", n, err)
	}
}

// cancelAfter cancels a context once n bytes were read through it.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func testContext(t *testing.T, s objstore.Store) {
	put(t, s, "ctx/there", []byte("there"))
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled", what, err)
		}
	}
	check("Put", s.Put(canceled, "ctx/new", strings.NewReader("x"), 1))
	assertAbsent(t, s, "ctx/new")
	rc, err := s.Get(canceled, "ctx/there")
	if err == nil {
		rc.Close()
	}
	check("Get", err)
	_, err = s.Stat(canceled, "ctx/there")
	check("Stat", err)
	check("Delete", s.Delete(canceled, "ctx/there"))
	check("List", s.List(canceled, "", func(objstore.Info) error { return nil }))
	if rr, ok := s.(objstore.RangeReader); ok {
		r, err := rr.OpenReaderAt(canceled, "ctx/there")
		if err == nil {
			r.Close()
		}
		check("OpenReaderAt", err)
	}
	if got := get(t, s, "ctx/there"); string(got) != "there" {
		t.Errorf("object changed by canceled calls: %q", got)
	}

	// Canceled in the middle of the upload: an error and nothing stored.
	mid, cancelMid := context.WithCancel(t.Context())
	defer cancelMid()
	const size = 4 << 20
	err = s.Put(mid, "ctx/mid", &cancelAfter{r: content(3, size), n: size / 2, cancel: cancelMid}, size)
	if err == nil {
		t.Fatalf("Put canceled midway succeeded")
	}
	check("Put canceled midway", err)
	assertAbsent(t, s, "ctx/mid")
}

func testLocker(t *testing.T, open func(t *testing.T) objstore.Store) {
	s := open(t)
	l, ok := s.(objstore.Locker)
	if !ok {
		t.Skip("store does not implement objstore.Locker")
	}
	ctx := t.Context()
	enabled, err := l.LockEnabled(ctx)
	if err != nil {
		t.Fatalf("LockEnabled: %v", err)
	}
	if !enabled {
		// Without Object Lock the store must not pretend to lock.
		put(t, s, "nolock/a", []byte("a"))
		if err := l.SetRetention(ctx, "nolock/a", objstore.Governance, time.Now().Add(time.Hour)); err == nil {
			t.Errorf("SetRetention on a bucket without Object Lock succeeded")
		}
		if err := l.SetLegalHold(ctx, "nolock/a", true); err == nil {
			t.Errorf("SetLegalHold on a bucket without Object Lock succeeded")
		}
		if err := s.Delete(ctx, "nolock/a"); err != nil {
			t.Errorf("Delete: %v", err)
		}
		return
	}

	t.Run("Retention", func(t *testing.T) {
		data := []byte("retained object")
		put(t, s, "lock/ret", data)
		until := time.Now().Add(time.Hour).Truncate(time.Second)
		if err := l.SetRetention(ctx, "lock/ret", objstore.Governance, until); err != nil {
			t.Fatalf("SetRetention: %v", err)
		}
		lk, err := l.GetLock(ctx, "lock/ret")
		if err != nil {
			t.Fatalf("GetLock: %v", err)
		}
		if lk.Mode != objstore.Governance || !lk.RetainUntil.Equal(until) || lk.LegalHold {
			t.Errorf("GetLock = %+v, want GOVERNANCE until %v, no hold", lk, until)
		}
		if err := s.Delete(ctx, "lock/ret"); !errors.Is(err, objstore.ErrLocked) {
			t.Errorf("Delete under retention = %v, want ErrLocked", err)
		}
		if got := get(t, s, "lock/ret"); !bytes.Equal(got, data) {
			t.Errorf("object changed under retention: %q", got)
		}
		later := until.Add(time.Hour)
		if err := l.SetRetention(ctx, "lock/ret", objstore.Governance, later); err != nil {
			t.Fatalf("extend retention: %v", err)
		}
		if lk, err := l.GetLock(ctx, "lock/ret"); err != nil || !lk.RetainUntil.Equal(later) {
			t.Errorf("GetLock after extension = %+v, %v, want until %v", lk, err, later)
		}
	})

	t.Run("ComplianceExpires", func(t *testing.T) {
		put(t, s, "lock/comp", []byte("short retention"))
		until := time.Now().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
		if err := l.SetRetention(ctx, "lock/comp", objstore.Compliance, until); err != nil {
			t.Fatalf("SetRetention: %v", err)
		}
		if lk, err := l.GetLock(ctx, "lock/comp"); err != nil || lk.Mode != objstore.Compliance {
			t.Errorf("GetLock = %+v, %v, want COMPLIANCE", lk, err)
		}
		if err := s.Delete(ctx, "lock/comp"); !errors.Is(err, objstore.ErrLocked) {
			t.Errorf("Delete under compliance retention = %v, want ErrLocked", err)
		}
		time.Sleep(time.Until(until.Add(1500 * time.Millisecond)))
		if err := s.Delete(ctx, "lock/comp"); err != nil {
			t.Errorf("Delete after retention expired: %v", err)
		}
		assertAbsent(t, s, "lock/comp")
	})

	t.Run("LegalHold", func(t *testing.T) {
		put(t, s, "lock/hold", []byte("held object"))
		if err := l.SetLegalHold(ctx, "lock/hold", true); err != nil {
			t.Fatalf("SetLegalHold(on): %v", err)
		}
		if lk, err := l.GetLock(ctx, "lock/hold"); err != nil || !lk.LegalHold || lk.Mode != "" || !lk.RetainUntil.IsZero() {
			t.Errorf("GetLock = %+v, %v, want hold only", lk, err)
		}
		if err := s.Delete(ctx, "lock/hold"); !errors.Is(err, objstore.ErrLocked) {
			t.Errorf("Delete under legal hold = %v, want ErrLocked", err)
		}
		if err := l.SetLegalHold(ctx, "lock/hold", false); err != nil {
			t.Fatalf("SetLegalHold(off): %v", err)
		}
		if lk, err := l.GetLock(ctx, "lock/hold"); err != nil || lk.LegalHold {
			t.Errorf("GetLock after release = %+v, %v", lk, err)
		}
		if err := s.Delete(ctx, "lock/hold"); err != nil {
			t.Errorf("Delete after release: %v", err)
		}
	})

	t.Run("NoLock", func(t *testing.T) {
		put(t, s, "lock/free", []byte("free"))
		if lk, err := l.GetLock(ctx, "lock/free"); err != nil || lk != (objstore.Lock{}) {
			t.Errorf("GetLock of an unlocked object = %+v, %v, want zero", lk, err)
		}
		if err := s.Delete(ctx, "lock/free"); err != nil {
			t.Errorf("Delete of an unlocked object: %v", err)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		if _, err := l.GetLock(ctx, "lock/missing"); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("GetLock(missing) = %v, want ErrNotExist", err)
		}
		if err := l.SetRetention(ctx, "lock/missing", objstore.Governance, time.Now().Add(time.Hour)); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("SetRetention(missing) = %v, want ErrNotExist", err)
		}
		if err := l.SetLegalHold(ctx, "lock/missing", true); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("SetLegalHold(missing) = %v, want ErrNotExist", err)
		}
		assertAbsent(t, s, "lock/missing")
	})

	t.Run("Invalid", func(t *testing.T) {
		put(t, s, "lock/inv", []byte("x"))
		if err := l.SetRetention(ctx, "lock/inv", "FOREVER", time.Now().Add(time.Hour)); err == nil {
			t.Errorf("SetRetention with mode FOREVER succeeded")
		}
		if err := l.SetRetention(ctx, "lock/inv", objstore.Governance, time.Now().Add(-time.Hour)); err == nil {
			t.Errorf("SetRetention in the past succeeded")
		}
		if err := l.SetRetention(ctx, "Bad", objstore.Governance, time.Now().Add(time.Hour)); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("SetRetention(invalid key) = %v, want ErrInvalidKey", err)
		}
		if _, err := l.GetLock(ctx, "Bad"); !errors.Is(err, objstore.ErrInvalidKey) {
			t.Errorf("GetLock(invalid key) = %v, want ErrInvalidKey", err)
		}
		if err := s.Delete(ctx, "lock/inv"); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
}
