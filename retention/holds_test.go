package retention

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/audit"
)

// A hold covers what matches it, including mail archived later; while it
// is active nothing it covers is disposed; its release lets the policy act.
func TestHoldPlaceReleaseAndDisposal(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	old := "Mon, 01 Jan 2018 09:00:00 +0000"
	alice := h.archive(msg(old, "alice@corp.example", "bob@corp.example", "a1", "merger plans"), envelope("", "alice@corp.example", []string{"bob@corp.example"}))
	bob := h.archive(msg(old, "carol@corp.example", "bob@corp.example", "b1", "lunch"), envelope("", "carol@corp.example", []string{"bob@corp.example"}))
	dave := h.archive(msg(old, "erin@corp.example", "dave@corp.example", "d1", "weekly report"), envelope("", "erin@corp.example", []string{"dave@corp.example"}))
	other := h.archive(msg("Mon, 01 Jan 2024 09:00:00 +0000", "erin@corp.example", "dave@corp.example", "d2", "new"), envelope("", "erin@corp.example", []string{"dave@corp.example"}))

	// Custodian alice: her sent mail (From, envelope sender) is hers too.
	r, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-7", Reason: "litigation Acme v. Corp", Custodians: []string{"Alice@corp.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Messages != 1 || r.Pending || r.HeldCustodians[0].Addr != "bob@corp.example" {
		t.Fatalf("hold C-7: %+v", r)
	}
	// A query hold, and a date-range hold.
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-8", Reason: "audit", Query: `BODY report`}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-9", Reason: "audit", From: time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	// Archived after the hold: covered too.
	later := h.archive(msg(old, "alice@corp.example", "zed@corp.example", "a2", "more"), envelope("", "alice@corp.example", []string{"zed@corp.example"}))

	// Time passes: everything has expired (7y from the Date field).
	h.clock.set(time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
	dry, err := h.m.Run(ctx, SystemCaller, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(dry.Disposed); len(got) != 1 || got[0] != bob {
		t.Fatalf("dry run disposes %v, want only %d (held: %d)", got, bob, dry.Held)
	}
	run, err := h.m.Run(ctx, SystemCaller, false)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSeqs(seqsOf(run.Disposed), seqsOf(dry.Disposed)) || run.Held != 4 || len(run.Failed) != 0 {
		t.Fatalf("run %+v, dry %+v", run, dry)
	}
	for seq, want := range map[uint64]string{alice: "active", later: "active", dave: "active", other: "active", bob: "disposed"} {
		if got := h.state(seq); got != want {
			t.Errorf("message %d is %s, want %s", seq, got, want)
		}
	}
	// A hold always wins, whoever asks: archive.Dispose refuses too.
	if _, err := h.st.Dispose(ctx, alice, ledger.KindErase, nil); !errors.Is(err, archive.ErrHeld) {
		t.Fatalf("direct disposal of a held message: %v", err)
	}

	// List and show.
	list, err := h.m.ListHolds(ctx, false)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %v %v", list, err)
	}
	show, err := h.m.ShowHold(ctx, "C-7")
	if err != nil || len(show) != 1 || show[0].Messages != 2 {
		t.Fatalf("show C-7: %+v %v", show, err)
	}

	// Release C-7: alice's mail goes at the next run; C-8 still keeps dave's report.
	rel, err := h.m.ReleaseHold(ctx, tester, "C-7", "case settled")
	if err != nil || len(rel) != 1 || !rel[0].Released {
		t.Fatalf("release: %+v %v", rel, err)
	}
	if _, err := h.m.ReleaseHold(ctx, tester, "C-7", "again"); !errors.Is(err, ErrNoHold) {
		t.Fatalf("second release: %v", err)
	}
	run, err = h.m.Run(ctx, SystemCaller, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqsOf(run.Disposed); !equalSeqs(got, []uint64{alice, later}) {
		t.Fatalf("after release disposed %v", got)
	}
	if h.state(dave) != "active" || h.state(other) != "active" {
		t.Fatal("a message still held was disposed")
	}

	// The ledger holds every change, with the whole hold.
	evs := h.holdEvents()
	if len(evs) != 4 || evs[0].Type != EventHoldPlace || evs[0].Fields["custodians"] != "alice@corp.example" || evs[0].Fields["case"] != "C-7" ||
		evs[1].Fields["query"] != "BODY report" || evs[2].Fields["from"] != "2023-12-31" || evs[3].Type != EventHoldRelease || evs[3].Fields["reason"] != "case settled" {
		t.Fatalf("ledger events: %+v", evs)
	}
	// And the audit log, before each change.
	var actions []string
	for _, e := range h.auditEvents() {
		actions = append(actions, string(e.Action))
		if e.Action == audit.ActionHoldPlace && (e.Actor.User != "tester" || e.Target.Case == "") {
			t.Errorf("audit event %+v", e)
		}
	}
	got := strings.Join(actions, " ")
	if strings.Count(got, "hold.place") != 3 || strings.Count(got, "hold.release") != 1 || strings.Count(got, "retention.dispose") != 3 {
		t.Fatalf("audit: %s", got)
	}

	// verify --full passes and names each disposed message.
	rep, err := h.st.Verify(ctx, archive.VerifyOptions{Full: true})
	if err != nil || !rep.OK() || len(rep.Disposed) != 3 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	for _, d := range rep.Disposed {
		if !strings.Contains(d.Detail, "default-7y") {
			t.Errorf("verify names a disposal as %q", d.Detail)
		}
	}
}

func seqsOf(ds []Disposal) []uint64 {
	var out []uint64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHoldSpecValidate(t *testing.T) {
	for _, c := range []struct {
		spec HoldSpec
		want string
	}{
		{HoldSpec{Reason: "r", Query: "ALL"}, "case id"},
		{HoldSpec{Case: "C-1", Query: "ALL"}, "reason"},
		{HoldSpec{Case: "C-1", Reason: "r"}, "at least one criterion"},
		{HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"nobody"}}, "local@domain"},
		{HoldSpec{Case: "C-1", Reason: "r", Query: "SEEN"}, "flag keys"},
		{HoldSpec{Case: "C-1", Reason: "r", Query: "UID 1:5"}, "UID"},
		{HoldSpec{Case: "C-1", Reason: "r", Query: "FROM"}, "syntax"},
		{HoldSpec{Case: "C-1", Reason: "r", From: time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}, "before"},
		{HoldSpec{Case: " C-1", Reason: "r", Query: "ALL"}, "spaces"},
		{HoldSpec{Case: "C-1", Reason: "a\nb", Query: "ALL"}, "control"},
	} {
		if err := c.spec.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", c.spec, err, c.want)
		}
	}
}

// retention.db lost (or restored from an old backup): Open rebuilds the
// holds from the ledger before anything can be disposed.
func TestHoldsRebuiltFromLedger(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	old := "Mon, 01 Jan 2018 09:00:00 +0000"
	a := h.archive(msg(old, "alice@corp.example", "bob@corp.example", "a1", "x"), envelope("", "alice@corp.example", []string{"bob@corp.example"}))
	b := h.archive(msg(old, "carol@corp.example", "dan@corp.example", "b1", "y"), envelope("", "carol@corp.example", []string{"dan@corp.example"}))
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"alice@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-2", Reason: "r", Custodians: []string{"carol@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.ReleaseHold(ctx, tester, "C-2", "done"); err != nil {
		t.Fatal(err)
	}
	h.m.Close()
	h.m = nil
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(h.data() + "/retention.db" + sfx)
	}
	h.openManager()
	all, err := h.m.ListHolds(ctx, true)
	if err != nil || len(all) != 2 || all[0].Case != "C-1" || all[0].Released || !all[1].Released || all[1].ReleaseReason != "done" || all[0].Pending {
		t.Fatalf("rebuilt holds: %+v %v", all, err)
	}
	h.clock.set(time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
	run, err := h.m.Run(ctx, SystemCaller, false)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSeqs(seqsOf(run.Disposed), []uint64{b}) || h.state(a) != "active" {
		t.Fatalf("after rebuild disposed %v", seqsOf(run.Disposed))
	}
	// No duplicate events: the rebuild recorded nothing new.
	if evs := h.holdEvents(); len(evs) != 3 {
		t.Fatalf("%d hold events", len(evs))
	}
}

// With the archive held by another process (no Archive), holds still take
// effect at once; their ledger events are recorded by the next process
// that opens the archive.
func TestHoldPendingWithoutArchive(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	a := h.archive(msg("Mon, 01 Jan 2018 09:00:00 +0000", "alice@corp.example", "bob@corp.example", "a1", "x"), envelope("", "alice@corp.example", []string{"bob@corp.example"}))
	opts := h.options()
	opts.Archive = nil
	cli, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	r, err := cli.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"bob@corp.example"}})
	if err != nil || !r.Pending || r.Messages != 1 {
		t.Fatalf("place without archive: %+v %v", r, err)
	}
	if _, err := cli.Run(ctx, tester, false); !errors.Is(err, ErrNoArchive) {
		t.Fatalf("run without archive: %v", err)
	}
	cli.Close()
	// The serving process (h.m, with the archive) sees the hold at once.
	h.clock.set(time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
	run, err := h.m.Run(ctx, SystemCaller, false)
	if err != nil || len(run.Disposed) != 0 || h.state(a) != "active" {
		t.Fatalf("run: %+v %v", run, err)
	}
	// ... and the run recorded its ledger event.
	if evs := h.holdEvents(); len(evs) != 1 || evs[0].Fields["custodians"] != "bob@corp.example" {
		t.Fatalf("events %+v", evs)
	}
	list, _ := h.m.ListHolds(ctx, false)
	if len(list) != 1 || list[0].Pending {
		t.Fatalf("still pending: %+v", list[0])
	}
}

// No audit, no hold (fail closed).
func TestAuditFailureRefusesHold(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	h.alog.Close()
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Query: "ALL"}); err == nil {
		t.Fatal("a hold placed without its audit event")
	}
	h.alog = nil
	if list, _ := h.m.ListHolds(ctx, true); len(list) != 0 {
		t.Fatalf("unaudited hold stored: %+v", list)
	}
}

// A hold placed while a run disposes waits for the batch in flight, and
// from then on wins: no tombstone commits after PlaceHold returns, and
// nothing it covers is disposed.
func TestHoldDuringRun(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	const n = 1200
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				_, err := h.st.Archive(ctx, envelope("", "alice@corp.example", []string{"bob@corp.example"}),
					msg("Mon, 01 Jan 2018 09:00:00 +0000", "alice@corp.example", "bob@corp.example", fmt.Sprintf("s%d", i), "x"))
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	h.clock.set(time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC))
	done := make(chan *RunReport)
	go func() {
		r, err := h.m.Run(ctx, SystemCaller, false)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	// Let the run start disposing.
	for h.countState(1) < 50 {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Query: "ALL"}); err != nil {
		t.Fatal(err)
	}
	placed := time.Now().UTC()
	r := <-done
	disposed := h.countState(1)
	if disposed == n || disposed != len(r.Disposed) || int(r.Held)+disposed != n {
		t.Fatalf("%d disposed (report %d, held %d) of %d", disposed, len(r.Disposed), r.Held, n)
	}
	h.st.Index().EachEntry(ctx, func(seq uint64, line []byte) error {
		e, _ := ledger.ParseEntry(line)
		if e.Kind == ledger.KindDispose && e.Time.After(placed) {
			t.Errorf("tombstone %d committed at %v, after the hold (%v)", seq, e.Time, placed)
		}
		return nil
	})
}

func (h *harness) countState(state int) int {
	var n int
	h.st.Index().DB().QueryRow(`SELECT COUNT(*) FROM messages WHERE state = ?`, state).Scan(&n)
	return n
}

// Held answers from a cache for speed; what changes the answer for a
// message after the cache was built (a new delivery, new words in the
// full-text index, a new hold) is seen all the same.
func TestHeldFollowsChanges(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	checker := NewChecker(h.data()+"/retention.db", h.data()+"/index.db", h.ring.SearchKey())
	defer checker.Close()
	a := h.archive(msg("Mon, 01 Jan 2018 09:00:00 +0000", "x@corp.example", "y@corp.example", "a", "hello"), envelope("", "x@corp.example", []string{"y@corp.example"}))
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"alice@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-2", Reason: "r", Query: "BODY zanzibar"}); err != nil {
		t.Fatal(err)
	}
	// Until its words are in the full-text index (the archive indexes
	// them in the background, within a second), a BODY hold cannot say:
	// Held fails, and so does a disposal (fail closed).
	if held, _, err := checker.Held(ctx, a); err != nil && !strings.Contains(err.Error(), "full-text") || err == nil && held {
		t.Fatalf("Held with the full-text index maybe behind: %v %v", held, err)
	}
	if err := h.st.FlushSearch(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []archive.HoldChecker{checker, h.m} {
		if held, _, err := c.Held(ctx, a); err != nil || held {
			t.Fatalf("before: %v %v", held, err)
		}
	}
	// A new delivery makes alice a custodian of message a.
	h.archive(msg("Mon, 01 Jan 2018 09:00:00 +0000", "x@corp.example", "y@corp.example", "a", "hello"), envelope("", "x@corp.example", []string{"alice@corp.example"}))
	// A new message with the word the query hold names.
	b := h.archive(msg("Mon, 01 Jan 2018 09:00:00 +0000", "x@corp.example", "y@corp.example", "b", "off to Zanzibar"), envelope("", "x@corp.example", []string{"y@corp.example"}))
	if err := h.st.FlushSearch(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []archive.HoldChecker{checker, h.m} {
		if held, name, err := c.Held(ctx, a); err != nil || !held || !strings.Contains(name, "C-1") {
			t.Fatalf("after a new delivery: %v %q %v", held, name, err)
		}
		if held, name, err := c.Held(ctx, b); err != nil || !held || !strings.Contains(name, "C-2") {
			t.Fatalf("a new message: %v %q %v", held, name, err)
		}
	}
	// Released: not held any more.
	h.m.ReleaseHold(ctx, tester, "C-1", "done")
	if held, _, err := checker.Held(ctx, a); err != nil || held {
		t.Fatalf("after release: %v %v", held, err)
	}
}
