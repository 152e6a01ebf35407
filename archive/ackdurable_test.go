package archive

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// reopenOpts reopens the harness's store with options changed by fn.
func (h *harness) reopenOpts(fn func(*Options)) {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	opts := h.options()
	fn(&opts)
	st, err := Open(context.Background(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
}

// holdIndex makes h's index stage stop before it writes the next batches
// it gathered, as a slow index would, until the returned function is
// called (at the latest at cleanup, which closes the store before it
// removes the hook).
func holdIndex(t *testing.T, h *harness) (free func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	free = func() { once.Do(func() { close(gate) }) }
	testHookIndexGathered = func() { <-gate }
	t.Cleanup(func() {
		free()
		h.st.Close()
		testHookIndexGathered = nil
	})
	return free
}

// underLoad opens a harness whose group commits never wait (CommitWait
// -1) with one message announced and never sent for the whole test: to the
// store, more deliveries are always on their way, as under SMTP load.
func underLoad(t *testing.T, seed uint64, opts func(*Options)) (*harness, *gen.Generator, context.Context) {
	t.Helper()
	h := newHarness(t)
	h.reopenOpts(func(o *Options) {
		o.CommitWait = -1
		if opts != nil {
			opts(o)
		}
	})
	ctx := context.Background()
	_, withdraw := h.st.Announce(ctx)
	t.Cleanup(withdraw)
	return h, gen.New(seed), ctx
}

type archived struct {
	rc  ingest.Receipt
	err error
}

func (h *harness) archiveAsync(ctx context.Context, raw []byte) chan archived {
	out := make(chan archived, 1)
	go func() {
		rc, err := h.st.Archive(ctx, env("a@example.com"), raw)
		out <- archived{rc, err}
	}()
	return out
}

func within(t *testing.T, c chan archived, d time.Duration, what string) ingest.Receipt {
	t.Helper()
	select {
	case a := <-c:
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		return a.rc
	case <-time.After(d):
		t.Fatalf("%s: not answered within %v", what, d)
	}
	return ingest.Receipt{}
}

func notWithin(t *testing.T, c chan archived, d time.Duration, what string) {
	t.Helper()
	select {
	case a := <-c:
		t.Fatalf("%s: answered (%+v, %v) while the index could not list it", what, a.rc, a.err)
	case <-time.After(d):
	}
}

// waitIndexed waits until the index lists entry seq.
func (h *harness) waitIndexed(seq uint64, d time.Duration) {
	h.t.Helper()
	for end := time.Now().Add(d); h.st.Index().Head() < int64(seq); {
		if time.Now().After(end) {
			h.t.Fatalf("entry %d not indexed within %v (index head %d)", seq, d, h.st.Index().Head())
		}
		time.Sleep(time.Millisecond)
	}
}

// Under load (another message announced), a writer that asked for it
// (ingest.AckWhenDurable, the SMTP receiver) is answered once its message is
// durable and its entry committed, even while the index is held up; a
// writer that did not ask waits for the index. Once the index is free both
// are listed, and the early one reads back.
func TestAckWhenDurableAnswersBeforeTheIndex(t *testing.T) {
	h, g, ctx := underLoad(t, 21, nil)

	unlock := holdIndex(t, h)
	m1, m2 := g.Next(3000).Raw, g.Next(3000).Raw
	early := within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), m1), 5*time.Second, "AckWhenDurable writer")
	if head := h.st.Index().Head(); head >= int64(early.Seq) {
		t.Fatalf("index head %d already lists entry %d under a held write lock", head, early.Seq)
	}
	// A second process verifying meanwhile (cairn verify while serve runs)
	// opens the index (the writer does not hold its lock while gathering),
	// checks the entry against the ledger and the objects, and says that
	// the index does not list it yet.
	ro := h.options()
	ro.ReadOnly = true
	rst, err := Open(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := rst.Verify(ctx, VerifyOptions{Full: true})
	rst.CloseWithoutCheckpoint()
	if err != nil || !rep.OK() {
		t.Fatalf("verify while the index lags: %v %v", rep.Problems, err)
	}
	unindexed := 0
	for _, w := range rep.Warnings {
		if w.Kind == WarningUnindexed {
			unindexed++
			if w.Seq != int64(early.Seq) {
				t.Errorf("verify while the index lags: %v, want entry %d unindexed", w, early.Seq)
			}
		}
	}
	if unindexed != 1 {
		t.Fatalf("verify while the index lags: warnings %v, want entry %d unindexed", rep.Warnings, early.Seq)
	}
	plain := h.archiveAsync(ctx, m2)
	notWithin(t, plain, 300*time.Millisecond, "plain writer")
	unlock()
	rc2 := within(t, plain, 10*time.Second, "plain writer after the index was freed")
	if h.st.Index().Head() < int64(rc2.Seq) {
		t.Fatalf("plain writer answered before the index listed entry %d", rc2.Seq)
	}
	h.waitIndexed(early.Seq, 5*time.Second)
	if got := h.cat(early.MessageSeq); !bytes.Equal(got, m1) {
		t.Fatal("the early-answered message does not read back")
	}
	if rep := h.verify(true); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

// A writer on its own is answered only once the index lists its message,
// with AckWhenDurable too: archive, then read, finds it.
func TestAckWhenDurableAloneIsIndexed(t *testing.T) {
	h := newHarness(t)
	g := gen.New(22)
	ctx := ingest.AckWhenDurable(context.Background())
	for i := 0; i < 20; i++ {
		rc, err := h.st.Archive(ctx, env("a@example.com"), g.Next(1500).Raw)
		if err != nil {
			t.Fatal(err)
		}
		if head := h.st.Index().Head(); head < int64(rc.Seq) {
			t.Fatalf("message %d: answered with entry %d while the index head is %d", i, rc.Seq, head)
		}
	}
}

// The same bytes delivered twice, the first answered before the index
// lists it: the second waits for the first to be indexed and becomes a
// second delivery of the same message, never a second copy.
func TestAckWhenDurableKeepsDuplicatesTogether(t *testing.T) {
	h, g, ctx := underLoad(t, 23, nil)

	raw := g.Next(3000).Raw
	unlock := holdIndex(t, h)
	first := within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), raw), 5*time.Second, "first copy")
	second := h.archiveAsync(ingest.AckWhenDurable(ctx), raw)
	notWithin(t, second, 300*time.Millisecond, "second copy")
	unlock()
	rc := within(t, second, 10*time.Second, "second copy after the index was freed")
	if !rc.Duplicate || rc.MessageSeq != first.MessageSeq {
		t.Fatalf("second copy: duplicate %v, message %d; want a delivery of message %d", rc.Duplicate, rc.MessageSeq, first.MessageSeq)
	}
	var msgs, deliveries int
	db := h.st.Index().DB()
	h.waitIndexed(rc.Seq, 5*time.Second)
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM deliveries)`).Scan(&msgs, &deliveries); err != nil {
		t.Fatal(err)
	}
	if msgs != 1 || deliveries != 2 {
		t.Fatalf("%d messages, %d deliveries; want 1 and 2", msgs, deliveries)
	}
}

// An index transaction that waits for more batches (IndexWait, a minute
// here) commits as soon as no batch follows: the last message of a load is
// listed within milliseconds, not at the end of the wait.
func TestIndexWaitEndsWhenIdle(t *testing.T) {
	h, g, ctx := underLoad(t, 24, func(o *Options) { o.IndexWait = time.Minute })
	var last ingest.Receipt
	for i := 0; i < 5; i++ {
		last = within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), g.Next(1500).Raw), 5*time.Second, "writer")
	}
	h.waitIndexed(last.Seq, 5*time.Second)
}

// Batches answered early while the index is held up are listed together
// in one transaction once it goes on.
func TestIndexRunsShareOneCommit(t *testing.T) {
	h, g, ctx := underLoad(t, 26, nil)
	before := h.st.Stats()
	free := holdIndex(t, h)
	var last ingest.Receipt
	for i := 0; i < 6; i++ {
		last = within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), g.Next(1500).Raw), 5*time.Second, "writer")
	}
	free()
	h.waitIndexed(last.Seq, 5*time.Second)
	h.st.Close() // the counters are complete once the stages have stopped
	st := h.st.Stats()
	if b := st.Batches - before.Batches; b != 6 {
		t.Fatalf("%d group commits for 6 messages archived one after another, want 6", b)
	}
	// The first run holds the first message and those that came before
	// its gathering ended; a second one, if any, all the others.
	if c := st.IndexCommits - before.IndexCommits; c < 1 || c > 2 {
		t.Fatalf("%d index commits for 6 group commits, want 1 or 2", c)
	}
}

// An index that fails after a writer was answered as durable: the entry is
// committed, so the answer stands; the next writer finds the index caught
// up from the ledger, and the message reads back, listed once.
func TestAckWhenDurableIndexFailure(t *testing.T) {
	h, g, ctx := underLoad(t, 25, nil)
	db := h.st.Index().DB()
	if _, err := db.Exec(`CREATE TRIGGER fail BEFORE INSERT ON entries BEGIN SELECT RAISE(ABORT, 'injected index failure'); END`); err != nil {
		t.Fatal(err)
	}
	raw := g.Next(3000).Raw
	early := within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), raw), 5*time.Second, "AckWhenDurable writer with a failing index")
	// A plain writer meanwhile is refused: the index is behind.
	for i := 0; i < 200 && !h.st.behind.Load(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := h.st.Archive(ctx, env("a@example.com"), g.Next(3000).Raw); err == nil {
		t.Fatal("a plain writer was acknowledged while the index fails")
	}
	if _, err := db.Exec(`DROP TRIGGER fail`); err != nil {
		t.Fatal(err)
	}
	h.archive(g.Next(3000).Raw, env("a@example.com"))
	if got := h.cat(early.MessageSeq); !bytes.Equal(got, raw) {
		t.Fatal("the message answered before the index failed does not read back")
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM messages WHERE sha256 = ?`, shaSum(raw)).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d index rows for the message (%v), want 1", n, err)
	}
	if rep := h.verify(true); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

// hangingStore holds ledger segment writes while hang is set, as an S3
// store that stopped answering would until its timeout.
type hangingStore struct {
	objstore.Store
	mu   sync.Mutex
	hang chan struct{}
}

func (s *hangingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	hang := s.hang
	s.mu.Unlock()
	if hang != nil && strings.HasPrefix(key, "ledger/") {
		select {
		case <-hang:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Put(ctx, key, r, size)
}

// A message answered once durable is listed within IndexWait even when
// the next group commit's segment write hangs (a store gone quiet): the
// index does not wait for a segment the batches it gathered do not need.
func TestIndexDoesNotWaitForAHangingSegment(t *testing.T) {
	hs := &hangingStore{}
	h, g, ctx := underLoad(t, 27, func(o *Options) {
		hs.Store = o.Objects
		o.Objects = hs
		o.IndexWait = 300 * time.Millisecond
	})
	first := within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), g.Next(2000).Raw), 5*time.Second, "first message")
	hang := make(chan struct{})
	var once sync.Once
	answer := func() { once.Do(func() { close(hang) }) }
	t.Cleanup(answer) // registered after the harness's: runs before the store closes
	hs.mu.Lock()
	hs.hang = hang
	hs.mu.Unlock()
	second := h.archiveAsync(ingest.AckWhenDurable(ctx), g.Next(2000).Raw)
	h.waitIndexed(first.Seq, 2*time.Second)
	notWithin(t, second, 100*time.Millisecond, "message whose segment write hangs")
	answer()
	rc := within(t, second, 5*time.Second, "message after the store answers again")
	h.waitIndexed(rc.Seq, 5*time.Second)
}

// Archive keeps no reference to raw once it returns (ingest.Archiver's
// contract; the SMTP receiver reuses its buffers): a message answered
// before the index lists it, its buffer overwritten at once, is indexed
// with its own header, envelope fields and search tokens, reads back, and
// verifies.
func TestArchiveKeepsNoReferenceToRaw(t *testing.T) {
	h, g, ctx := underLoad(t, 24, nil)
	unlock := holdIndex(t, h)
	m := g.Next(3000)
	raw := bytes.Clone(m.Raw)
	rc := within(t, h.archiveAsync(ingest.AckWhenDurable(ctx), raw), 5*time.Second, "AckWhenDurable writer")
	for i := range raw {
		raw[i] = 'X'
	}
	unlock()
	h.waitIndexed(rc.Seq, 5*time.Second)

	// What the index holds is what a fresh analysis of the bytes gives.
	got, err := h.st.Index().Message(ctx, rc.MessageSeq)
	if err != nil {
		t.Fatal(err)
	}
	want := &index.MessageRow{}
	analyze(m.Raw, h.st.tokenMACs).fill(want)
	if !bytes.Equal(got.Header, want.Header) || got.Subject != want.Subject || got.From != want.From || got.MessageID != want.MessageID {
		t.Errorf("indexed row: header %q subject %q from %q id %q\nwant header %q subject %q from %q id %q",
			got.Header, got.Subject, got.From, got.MessageID, want.Header, want.Subject, want.From, want.MessageID)
	}
	if got := h.cat(rc.MessageSeq); !bytes.Equal(got, m.Raw) {
		t.Fatal("the message does not read back")
	}
	if rep := h.verify(true); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}
