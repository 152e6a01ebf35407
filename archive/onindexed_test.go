package archive

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// OnIndexed reports every committed entry once it is in the index, for
// messages, deliveries, tombstones and events alike, in increasing order.
func TestOnIndexed(t *testing.T) {
	h := newHarness(t)
	h.st.Close()
	var mu sync.Mutex
	var got []uint64
	var stp *Store
	opts := h.options()
	opts.OnIndexed = func(last uint64) {
		// The entry is already in the index when the hook runs.
		if _, err := stp.Index().Entry(context.Background(), last); err != nil {
			t.Errorf("entry %d not indexed when reported: %v", last, err)
		}
		mu.Lock()
		got = append(got, last)
		mu.Unlock()
	}
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.st, stp = st, st
	g := gen.New(5)
	var want []uint64
	for i := 0; i < 3; i++ {
		m := g.Next(3000)
		rc := h.archive(m.Raw, env("a@example.com"))
		want = append(want, rc.Seq)
		if rc := h.archive(m.Raw, env("b@example.com")); rc.Duplicate {
			want = append(want, rc.Seq)
		}
	}
	ev, err := st.AppendEvent(context.Background(), ledger.Event{Type: "test.event"})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, ev)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		var last uint64
		if n > 0 {
			last = got[n-1]
		}
		mu.Unlock()
		if n > 0 && last == want[len(want)-1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("OnIndexed saw %v, want up to %d", got, want[len(want)-1])
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("OnIndexed not increasing: %v", got)
		}
	}
	// Each sequential commit was reported (one batch each here).
	seen := map[uint64]bool{}
	for _, s := range got {
		seen[s] = true
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("entry %d never reported (got %v)", w, got)
		}
	}
}
