package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "cairn.test/audit"

type testKeys struct {
	signer   note.Signer
	verifier note.Verifier
}

func newKeys(t testing.TB) testKeys {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "cairn.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{s, v}
}

// testEnv is a Log with its database, store and keys.
type testEnv struct {
	t     testing.TB
	dir   string
	path  string
	store *memStore
	keys  testKeys
	log   *Log
}

func newEnv(t testing.TB, mod func(*Options)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	e := &testEnv{t: t, dir: dir, path: filepath.Join(dir, "audit.db"), store: newMemStore(), keys: newKeys(t)}
	e.open(mod)
	return e
}

func (e *testEnv) options(mod func(*Options)) Options {
	o := Options{
		Path: e.path, Origin: testOrigin, Store: e.store, Signer: e.keys.signer,
		QueryKey: []byte("0123456789abcdef0123456789abcdef"), SegmentEvents: 100,
		SegmentInterval: time.Hour,
		Logger:          slog.New(slog.DiscardHandler),
	}
	if mod != nil {
		mod(&o)
	}
	return o
}

func (e *testEnv) open(mod func(*Options)) {
	e.t.Helper()
	l, err := Open(e.options(mod))
	if err != nil {
		e.t.Fatal(err)
	}
	e.log = l
	e.t.Cleanup(func() { l.Close() })
}

func (e *testEnv) verify() *Report {
	e.t.Helper()
	r, err := Verify(context.Background(), VerifyOptions{Path: e.path, Origin: testOrigin, Store: e.store, Verifiers: []note.Verifier{e.keys.verifier}})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *testEnv) db() *sql.DB {
	e.t.Helper()
	db, err := sql.Open("sqlite3", dsn(e.path, false))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { db.Close() })
	return db
}

// sampleEvent returns a different, fully populated event for each i.
func sampleEvent(i int) Event {
	acts := Actions()
	return Event{
		Action:  acts[i%len(acts)],
		Outcome: OutcomeSuccess,
		Actor:   Actor{User: fmt.Sprintf("auditor%d@example.com", i%7), Role: "auditor", Session: fmt.Sprintf("s-%d", i/10), AuthMech: "PLAIN"},
		Source:  Source{IP: "192.0.2.10", Port: 40000 + i%1000, TLS: true, Service: "imap"},
		Target:  Target{Folder: "INBOX", UIDValidity: 7, UIDs: FormatSet([]uint64{uint64(i%50 + 1), uint64(i%50 + 2)}), Case: "CASE-1"},
		Details: Details{Parts: []string{"BODY[HEADER]"}, Bytes: int64(i * 10), Count: 2},
	}
}

func record(t testing.TB, l *Log, n int) []Seq {
	t.Helper()
	seqs := make([]Seq, n)
	for i := range n {
		s, err := l.Record(context.Background(), sampleEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs[i] = s
	}
	return seqs
}

// recordParallel records n events from 8 goroutines (group commits), for
// tests that need volume, not a particular order.
func recordParallel(t testing.TB, l *Log, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := l.Record(context.Background(), sampleEvent(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestRecordAssignsSeqAndChains(t *testing.T) {
	e := newEnv(t, nil)
	seqs := record(t, e.log, 10)
	for i, s := range seqs {
		if s != Seq(i+1) {
			t.Fatalf("seq %d = %d", i, s)
		}
	}
	var prev Hash
	err := e.log.Events(context.Background(), Query{}, func(en *Entry) error {
		if en.Prev != prev {
			return fmt.Errorf("seq %d: prev %s, want %s", en.Seq, en.Prev, prev)
		}
		prev = en.Hash
		u, err := uuid.Parse(en.Event.ID)
		if err != nil || u.Version() != 7 {
			return fmt.Errorf("seq %d: id %q not UUIDv7", en.Seq, en.Event.ID)
		}
		// The line form parses back to the same entry.
		back, err := ParseLine(en.Line())
		if err != nil || back.Seq != en.Seq || back.Hash != en.Hash || string(back.Bytes) != string(en.Bytes) {
			return fmt.Errorf("seq %d: line round trip: %v", en.Seq, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := e.verify(); !r.OK() {
		t.Fatalf("verify: %v", r.Problems)
	}
}

func TestEntryBytesGolden(t *testing.T) {
	ev := Event{
		ID:      "01936b2e-8a4c-7def-8123-456789abcdef",
		Time:    time.Date(2026, 11, 26, 9, 30, 0, 123456789, time.FixedZone("CET", 3600)),
		Action:  ActionFetch,
		Outcome: OutcomeSuccess,
		Actor:   Actor{User: "ann@example.com", Role: "auditor", Session: "s1", AuthMech: "PLAIN"},
		Source:  Source{IP: "192.0.2.1", Port: 50123, TLS: true, Service: "imap"},
		Target:  Target{Folder: "Journal/2026", UIDValidity: 9, UIDs: "1:3,7"},
		Details: Details{Parts: []string{"BODY[]"}, Bytes: 20480, Count: 4},
	}
	body, err := marshalEvent(&ev)
	if err != nil {
		t.Fatal(err)
	}
	got := string(entryBytes(nil, 1, Hash{}, body))
	want := `{"v":1,"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","id":"01936b2e-8a4c-7def-8123-456789abcdef","time":"2026-11-26T08:30:00.123456789Z","action":"message.fetch","outcome":"success","actor":{"user":"ann@example.com","role":"auditor","session":"s1","auth_mech":"PLAIN"},"source":{"ip":"192.0.2.1","port":50123,"tls":true,"service":"imap"},"target":{"folder":"Journal/2026","uid_validity":9,"uids":"1:3,7"},"details":{"parts":["BODY[]"],"bytes":20480,"count":4}}`
	if got != want {
		t.Fatalf("entry bytes changed (a schema change needs a new SchemaVersion):\n got %s\nwant %s", got, want)
	}
}

func TestConcurrentRecordGroupCommit(t *testing.T) {
	e := newEnv(t, nil)
	const workers, each = 16, 200
	var wg sync.WaitGroup
	seen := make(chan Seq, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				s, err := e.log.Record(context.Background(), sampleEvent(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seen <- s
			}
		}()
	}
	wg.Wait()
	close(seen)
	got := map[Seq]bool{}
	for s := range seen {
		if got[s] {
			t.Fatalf("seq %d returned twice", s)
		}
		got[s] = true
	}
	if len(got) != workers*each || e.log.Head() != Seq(workers*each) {
		t.Fatalf("got %d seqs, head %d", len(got), e.log.Head())
	}
	if r := e.verify(); !r.OK() {
		t.Fatalf("verify: %v", r.Problems)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 5)
	e.log.Close()
	e.open(nil)
	s, err := e.log.Record(context.Background(), sampleEvent(5))
	if err != nil || s != 6 {
		t.Fatalf("after reopen: seq %d, %v", s, err)
	}
	if r := e.verify(); !r.OK() {
		t.Fatalf("verify: %v", r.Problems)
	}
}

func TestOpenRefusesDamagedHead(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 3)
	e.log.Close()
	if _, err := e.db().Exec(`UPDATE events SET body = replace(body, 'auditor', 'Auditor') WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(e.options(nil))
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("Open on a damaged head: %v, want ErrTampered", err)
	}
}

func TestOpenRefusesOtherOrigin(t *testing.T) {
	e := newEnv(t, nil)
	e.log.Close()
	_, err := Open(e.options(func(o *Options) { o.Origin = "other/audit" }))
	if err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("Open with another origin: %v", err)
	}
}

func TestRecordFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 1)
	// Make commits fail: a trigger that rejects every insert, as a full
	// disk or a broken database would.
	if _, err := e.db().Exec(`CREATE TRIGGER nope BEFORE INSERT ON events BEGIN SELECT RAISE(FAIL, 'disk full'); END`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.log.Record(context.Background(), sampleEvent(1)); err == nil {
		t.Fatal("Record succeeded although the commit failed")
	}
	if e.log.Head() != 1 {
		t.Fatalf("head moved to %d after a failed commit", e.log.Head())
	}
	if _, err := e.db().Exec(`DROP TRIGGER nope`); err != nil {
		t.Fatal(err)
	}
	if s, err := e.log.Record(context.Background(), sampleEvent(2)); err != nil || s != 2 {
		t.Fatalf("after recovery: %d, %v", s, err)
	}
	if r := e.verify(); !r.OK() {
		t.Fatalf("verify: %v", r.Problems)
	}
	e.log.Close()
	if _, err := e.log.Record(context.Background(), sampleEvent(3)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
}

func TestQueryStoredAsHMAC(t *testing.T) {
	e := newEnv(t, nil)
	ev := sampleEvent(0)
	ev.Action = ActionSearch
	ev.Details.Query = `FROM "jane.doe@example.com" BODY "diagnosis"`
	s, err := e.log.Record(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	var got *Entry
	e.log.Events(context.Background(), Query{From: s, Limit: 1}, func(en *Entry) error { got = en; return nil })
	if strings.Contains(string(got.Bytes), "jane.doe") || got.Event.Details.Query != "" {
		t.Fatalf("plaintext query stored: %s", got.Bytes)
	}
	if want := QueryHMAC(e.log.opts.QueryKey, ev.Details.Query); got.Event.Details.QueryHMAC != want {
		t.Fatalf("query_hmac %q, want %q", got.Event.Details.QueryHMAC, want)
	}

	k := newEnv(t, func(o *Options) { o.KeepQueries = true; o.QueryKey = nil })
	s, err = k.log.Record(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	k.log.Events(context.Background(), Query{From: s, Limit: 1}, func(en *Entry) error { got = en; return nil })
	if got.Event.Details.Query != ev.Details.Query || got.Event.Details.QueryHMAC != "" {
		t.Fatalf("KeepQueries: %s", got.Bytes)
	}
}

func TestValidateRejects(t *testing.T) {
	for name, ev := range map[string]Event{
		"action":  {Action: "message.delete", Outcome: OutcomeSuccess},
		"outcome": {Action: ActionLogin, Outcome: "ok"},
		"id v4":   {Action: ActionLogin, Outcome: OutcomeSuccess, ID: uuid.NewString()},
		"ip":      {Action: ActionLogin, Outcome: OutcomeSuccess, Source: Source{IP: "host.example"}},
		"uids":    {Action: ActionFetch, Outcome: OutcomeSuccess, Target: Target{UIDs: "1:x"}},
		"utf8":    {Action: ActionLogin, Outcome: OutcomeFailure, Actor: Actor{User: "\xff"}},
	} {
		if err := ev.Validate(); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: Validate = %v", name, err)
		}
	}
}

func TestFormatSet(t *testing.T) {
	for _, c := range []struct {
		in   []uint64
		want string
	}{
		{nil, ""}, {[]uint64{5}, "5"}, {[]uint64{3, 1, 2, 2, 7, 9, 8}, "1:3,7:9"}, {[]uint64{1, 3, 5}, "1,3,5"},
	} {
		if got := FormatSet(c.in); got != c.want {
			t.Errorf("FormatSet(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEventsTimeRangeAndFollow(t *testing.T) {
	e := newEnv(t, nil)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		ev := sampleEvent(i)
		ev.Time = base.Add(time.Duration(i) * time.Hour)
		if _, err := e.log.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	var got []Seq
	e.log.Events(context.Background(), Query{Since: base.Add(3 * time.Hour), Until: base.Add(6 * time.Hour)}, func(en *Entry) error {
		got = append(got, en.Seq)
		return nil
	})
	if fmt.Sprint(got) != "[4 5 6]" {
		t.Fatalf("time range: %v", got)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []Seq)
	go func() {
		var got []Seq
		e.log.Events(ctx, Query{From: 9, Follow: true}, func(en *Entry) error {
			got = append(got, en.Seq)
			if len(got) == 4 {
				return errors.New("enough")
			}
			return nil
		})
		done <- got
	}()
	time.Sleep(50 * time.Millisecond)
	record(t, e.log, 2)
	if got := <-done; fmt.Sprint(got) != "[9 10 11 12]" {
		t.Fatalf("follow: %v", got)
	}
}

func TestPublishCheckpoint(t *testing.T) {
	e := newEnv(t, nil)
	cp := Checkpoint{Origin: "cairn.test/ledger", Size: 42, Root: Hash{1, 2, 3}}
	k := newKeys(t)
	signed, err := note.Sign(&note.Note{Text: cp.Text()}, k.signer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := PublishCheckpoint(context.Background(), e.log, signed)
	if err != nil {
		t.Fatal(err)
	}
	var got *Entry
	e.log.Events(context.Background(), Query{From: s, Limit: 1}, func(en *Entry) error { got = en; return nil })
	if got.Event.Action != ActionCheckpointPublish || got.Event.Details.Checkpoint != string(signed) || got.Event.Details.Count != 42 {
		t.Fatalf("published: %s", got.Bytes)
	}
	if back, err := OpenCheckpoint([]byte(got.Event.Details.Checkpoint), k.verifier); err != nil || back != cp {
		t.Fatalf("the stored checkpoint does not verify: %v", err)
	}
	if _, err := PublishCheckpoint(context.Background(), e.log, []byte("garbage")); err == nil {
		t.Fatal("garbage published")
	}
}

func TestExportFormats(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 5)
	for _, f := range []Format{FormatJSONL, FormatCEF, FormatLEEF, FormatSyslog} {
		r, err := NewRenderer(f, RenderOptions{Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		n, err := e.log.Export(context.Background(), &b, Query{From: 2, Limit: 3}, r)
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if err != nil || n != 3 || len(lines) != 3 {
			t.Fatalf("%s: n %d, %v: %q", f, n, err, b.String())
		}
		prefix := map[Format]string{FormatJSONL: `{"v":1,"seq":2,`, FormatCEF: "CEF:0|", FormatLEEF: "LEEF:2.0|", FormatSyslog: "<110>1 "}[f]
		if !strings.HasPrefix(lines[0], prefix) {
			t.Errorf("%s: %q", f, lines[0])
		}
	}
	ro, err := Open(Options{Path: e.path, Origin: testOrigin, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.Head() != 5 {
		t.Fatalf("read-only head %d", ro.Head())
	}
	if _, err := ro.Record(context.Background(), sampleEvent(0)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Record on a read-only log: %v", err)
	}
}

func TestCloseWhileRecording(t *testing.T) {
	e := newEnv(t, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []Seq
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				s, err := e.log.Record(context.Background(), sampleEvent(w*1000+i))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, s)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	e.log.Close()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("Record hung across Close")
	}
	// Every acknowledged seq is in the database.
	var n int64
	e.db().QueryRow(`SELECT count(*) FROM events`).Scan(&n)
	for _, s := range got {
		if int64(s) > n {
			t.Fatalf("acknowledged seq %d not in the database (%d rows)", s, n)
		}
	}
	if int64(len(got)) != n {
		t.Fatalf("%d acknowledged, %d stored", len(got), n)
	}
}

// A second process (a CLI command while cairn serve runs) appends to the
// same chain: both writers read the head inside their write transaction,
// so the chain never forks.
func TestTwoWritersShareOneChain(t *testing.T) {
	e := newEnv(t, nil)
	other, err := Open(e.options(func(o *Options) { o.Store = nil; o.Signer = nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	for _, l := range []*Log{e.log, other} {
		wg.Add(1)
		go func(l *Log) {
			defer wg.Done()
			recordParallel(t, l, 300)
		}(l)
	}
	wg.Wait()
	if rep := e.verify(); len(rep.Problems) != 0 {
		t.Fatalf("chain forked: %v", rep.Problems)
	}
	var n int
	e.db().QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n)
	if n != 600 {
		t.Fatalf("%d events, want 600", n)
	}
}

func TestLedgerSetsStartAtZero(t *testing.T) {
	ev := Event{Action: ActionFetch, Outcome: OutcomeSuccess, Target: Target{Ledger: "0,3:5"}}
	if err := ev.Validate(); err != nil {
		t.Fatalf("ledger seq 0 refused: %v", err)
	}
	ev.Target.UIDs = "0"
	if err := ev.Validate(); err == nil {
		t.Fatal("IMAP UID 0 accepted")
	}
}
