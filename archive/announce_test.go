package archive

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// reopenWith reopens the harness's store with CommitWait set to wait.
func (h *harness) reopenWith(wait time.Duration) {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	opts := h.options()
	opts.CommitWait = wait
	st, err := Open(context.Background(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
}

// fillWaits sets testHookFillWaits for the test: it counts the batches
// that started waiting for announced messages and signals each on the
// returned channel (buffered, never blocking the commit loop).
func fillWaits(t *testing.T) (*atomic.Int64, <-chan struct{}) {
	t.Helper()
	var n atomic.Int64
	waiting := make(chan struct{}, 1)
	testHookFillWaits = func() {
		n.Add(1)
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { testHookFillWaits = nil })
	return &n, waiting
}

// archiveUntilWaiting archives m from a goroutine and returns once its
// batch has started waiting for an announced message (testHookFillWaits,
// signalled on waiting). Archive's error comes on the returned channel,
// which has room for one more.
func (h *harness) archiveUntilWaiting(t *testing.T, m []byte, waiting <-chan struct{}) chan error {
	t.Helper()
	done := make(chan error, 2)
	go func() {
		_, err := h.st.Archive(context.Background(), env("a@example.com"), m)
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("committed (%v) without waiting for the announced message", err)
	case <-time.After(15 * time.Second):
		t.Fatal("the batch never waited for the announced message")
	}
	return done
}

// statsAfter waits until the store has counted at least entries entries
// (the counters are updated after the writers are answered) and returns
// its counters.
func statsAfter(t *testing.T, st *Store, entries int64) CommitStats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := st.Stats()
		if s.Entries >= entries {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("the commit counters never reached %d entries: %+v", entries, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The group commit waits for messages announced ahead (the SMTP receiver
// announces one at MAIL FROM), and only for those: a writer alone is never
// delayed, and an announcement whose message never comes costs each batch
// CommitWait at most.
//
// Whether a batch waited is observed through testHookFillWaits, not the
// clock: a loaded machine can make an fsynced commit take seconds. The
// clock bounds stay, loose, as a check that nothing else delayed it.
func TestCommitWaitsForAnnouncedMessages(t *testing.T) {
	h := newHarness(t)
	g := gen.New(5)
	ctx := context.Background()
	waits, waiting := fillWaits(t)
	h.reopenWith(20 * time.Second)

	// Nothing announced: a message commits at once.
	start := time.Now()
	h.archive(g.Next(2000).Raw, env("a@example.com"))
	if d, n := time.Since(start), waits.Load(); n != 0 || d > 5*time.Second {
		t.Fatalf("a lone message took %v, %d batches waited: the commit waited with nothing announced", d, n)
	}

	// One announced: a message archived meanwhile waits for it, and both
	// go in one batch.
	m1, m2 := g.Next(2000).Raw, g.Next(2000).Raw
	before := statsAfter(t, h.st, 1)
	actx, withdraw := h.st.Announce(ctx)
	// m1's batch began and waits for the announced message: only now is
	// m2 sure to find it waiting rather than begin a batch of its own.
	done := h.archiveUntilWaiting(t, m1, waiting)
	if _, err := h.st.Archive(actx, env("b@example.com"), m2); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := statsAfter(t, h.st, before.Entries+2); st.Entries-before.Entries != 2 || st.Batches-before.Batches != 1 {
		t.Errorf("%d entries in %d batches for the waiting message and the announced one, want 2 in 1",
			st.Entries-before.Entries, st.Batches-before.Batches)
	}
	if n := h.st.announced.Load(); n != 0 {
		t.Fatalf("%d announcements left after the announced message was queued", n)
	}
	withdraw() // already withdrawn by Archive: no effect
	if n := h.st.announced.Load(); n != 0 {
		t.Fatalf("withdrawing twice left %d", n)
	}

	// An announcement never followed by its message: the batch waits
	// CommitWait, no longer; withdrawn, nothing waits.
	h.reopenWith(1500 * time.Millisecond)
	_, withdraw = h.st.Announce(ctx)
	waits.Store(0)
	start = time.Now()
	h.archive(g.Next(2000).Raw, env("a@example.com"))
	if d, n := time.Since(start), waits.Load(); n != 1 || d < 1400*time.Millisecond || d > 10*time.Second {
		t.Errorf("with a stalled announcement the commit took %v, %d batches waited; want CommitWait (1.5 s), 1", d, n)
	}
	withdraw()
	waits.Store(0)
	start = time.Now()
	h.archive(g.Next(2000).Raw, env("a@example.com"))
	if d, n := time.Since(start), waits.Load(); n != 0 || d > 5*time.Second {
		t.Errorf("after the withdrawal the commit took %v, %d batches waited", d, n)
	}

	// A negative CommitWait never waits.
	h.reopenWith(-1)
	_, withdraw = h.st.Announce(ctx)
	defer withdraw()
	waits.Store(0)
	start = time.Now()
	h.archive(g.Next(2000).Raw, env("a@example.com"))
	if d, n := time.Since(start), waits.Load(); n != 0 || d > 5*time.Second {
		t.Errorf("CommitWait < 0: the commit took %v, %d batches waited", d, n)
	}
}

// A batch waits for the messages announced before it began, not for those
// announced while it waits: under a steady load someone is always about to
// announce, and waiting for them too held every batch for all of
// CommitWait.
func TestCommitDoesNotWaitForLaterAnnouncements(t *testing.T) {
	h := newHarness(t)
	g := gen.New(6)
	ctx := context.Background()
	_, waiting := fillWaits(t)
	h.reopenWith(20 * time.Second)

	before := h.st.Stats()
	actx, withdrawA := h.st.Announce(ctx)
	defer withdrawA()
	m1, m2 := g.Next(2000).Raw, g.Next(2000).Raw
	// m1's batch began, and waits for A's message.
	done := h.archiveUntilWaiting(t, m1, waiting)
	// B announces now and does not come.
	_, withdrawB := h.st.Announce(ctx)
	defer withdrawB()
	go func() {
		_, err := h.st.Archive(actx, env("b@example.com"), m2)
		done <- err
	}()
	timeout := time.After(10 * time.Second) // CommitWait is 20 s
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-timeout:
			t.Fatal("the batch waited for a message announced after it began")
		}
	}
	if st := statsAfter(t, h.st, before.Entries+2); st.Entries-before.Entries != 2 || st.Batches-before.Batches != 1 {
		t.Errorf("%d entries in %d batches for the waiting message and the announced one, want 2 in 1",
			st.Entries-before.Entries, st.Batches-before.Batches)
	}
	withdrawB()
	if n := h.st.announced.Load(); n != 0 {
		t.Errorf("%d announcements left", n)
	}
	if a, n := h.st.arrived.Load(), h.st.announcements.Load(); a != n {
		t.Errorf("%d of %d announced messages counted as arrived", a, n)
	}
}
