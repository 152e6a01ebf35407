package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// lateSegments makes the first ledger segment Put report failure while the
// object lands only later, at the next Put: an S3 PUT whose answer was lost
// and that completed after its timeout.
type lateSegments struct {
	inner interface {
		Put(ctx context.Context, key string, r io.Reader, size int64) error
	}
	*failingStore
	mu      sync.Mutex
	armed   bool
	pending []func()
}

func (l *lateSegments) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	l.mu.Lock()
	for _, f := range l.pending {
		f()
	}
	l.pending = nil
	if l.armed && strings.HasPrefix(key, "ledger/") {
		l.armed = false
		b, _ := io.ReadAll(r)
		l.pending = append(l.pending, func() { l.failingStore.Store.Put(context.Background(), key, bytes.NewReader(b), size) })
		l.mu.Unlock()
		return errors.New("injected: no answer from the store")
	}
	l.mu.Unlock()
	return l.failingStore.Put(ctx, key, r, size)
}

// A segment that lands after its write reported failure: the retried
// message is recorded once as a message (the late segment's) and once more
// as a delivery, never stored twice; the index never wedges.
func TestSegmentLandingLate(t *testing.T) {
	h := newHarness(t)
	h.st.Close()
	ls := &lateSegments{failingStore: &failingStore{Store: h.objs}, armed: true}
	opts := h.options()
	opts.Objects = ls
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	g := gen.New(77)
	a := g.Next(3000).Raw
	if _, err := st.Archive(context.Background(), env("x@example.com"), a); err == nil {
		t.Fatal("acknowledged although the segment write failed")
	}
	// Retries, as an MTA would, until one is acknowledged.
	var rc, last = st.Archive(context.Background(), env("x@example.com"), a)
	for i := 0; last != nil && i < 5; i++ {
		rc, last = st.Archive(context.Background(), env("x@example.com"), a)
	}
	if last != nil {
		t.Fatalf("never acknowledged: %v", last)
	}
	b := g.Next(3000).Raw
	if _, err := st.Archive(context.Background(), env("x@example.com"), b); err != nil {
		t.Fatalf("the archive wedged: %v", err)
	}
	if got := h.cat(rc.MessageSeq); !bytes.Equal(got, a) {
		t.Fatal("message differs")
	}
	h.reopen()
	rep := h.verify(true)
	if !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
	_, messages, _, _ := h.st.Index().Counts(context.Background())
	if messages != 2 || !rc.Duplicate {
		t.Fatalf("%d message rows for 2 distinct messages; the acknowledged retry: %+v", messages, rc)
	}
}
