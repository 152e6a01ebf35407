package imapview

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Pipelined one-message UID FETCH commands (mbsync) are answered from
// messages opened ahead, each byte for byte; a command out of the expected
// order is opened in place and the read-ahead goes on.
func TestPipelinedFetchReadahead(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 60})
	r := f.raw()
	r.login("auditor", f.password)
	r.send("S SELECT INBOX\r\n")
	r.until("S OK")

	var uids []uint64
	for _, seq := range f.genSeqs[:30] {
		uids = append(uids, seq+1)
	}
	uids = append(uids, f.genSeqs[2]+1) // back to an earlier one
	for _, seq := range f.genSeqs[30:] {
		uids = append(uids, seq+1)
	}
	var b strings.Builder
	for i, u := range uids {
		fmt.Fprintf(&b, "F%d UID FETCH %d (BODY.PEEK[])\r\n", i, u)
	}
	b.WriteString("ZZEND NOOP\r\n")
	before := f.srv.aheadUsed.Load()
	r.send(b.String())
	out := []byte(r.until("ZZEND "))

	// Walk the answers in order: each FETCH carries its literal, then its
	// command's tagged OK.
	fetchLine := regexp.MustCompile(`^\* \d+ FETCH \(UID (\d+) BODY\[\] \{(\d+)\}\r\n`)
	got := map[int][]byte{} // command index -> body
	var gotUID = map[int]uint64{}
	var pending []byte
	var pendingUID uint64
	for len(out) > 0 {
		if m := fetchLine.FindSubmatch(out); m != nil {
			n, _ := strconv.Atoi(string(m[2]))
			start := len(m[0])
			pending = out[start : start+n]
			pendingUID, _ = strconv.ParseUint(string(m[1]), 10, 64)
			out = out[start+n:]
			continue
		}
		i := bytes.Index(out, []byte("\r\n"))
		if i < 0 {
			break
		}
		line := string(out[:i])
		out = out[i+2:]
		var n int
		if _, err := fmt.Sscanf(line, "F%d OK", &n); err == nil && strings.Contains(line, " OK") {
			got[n], gotUID[n] = pending, pendingUID
			pending = nil
		}
	}
	for i, u := range uids {
		if gotUID[i] != u {
			t.Fatalf("command F%d: UID %d answered, want %d", i, gotUID[i], u)
		}
		if !bytes.Equal(got[i], f.msgs[u-1]) {
			t.Fatalf("command F%d (UID %d): %d bytes, not the original %d", i, u, len(got[i]), len(f.msgs[u-1]))
		}
	}
	used := f.srv.aheadUsed.Load() - before
	// All but the one asked for again (no longer ahead); the first is
	// recorded with the burst behind it and read ahead with it.
	if used != int64(len(uids))-1 {
		t.Errorf("%d of %d messages came from the read-ahead, want %d", used, len(uids), len(uids)-1)
	}
	t.Logf("%d of %d pipelined one-message fetches answered from the read-ahead", used, len(uids))
}

// The read-ahead's index rows answer a command only while no ledger entry
// came after they were loaded: a message disposed meanwhile (its row now
// says so) is read from the index again.
func TestReadaheadRowsStayCurrent(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 4})
	if f.srv.db.head == nil {
		t.Fatal("the fixture's store is the writer: the head should come from memory")
	}
	m := int64(f.genSeqs[1])
	fresh := func() *session {
		return &session{srv: f.srv, ra: &readahead{rows: map[int64]aheadRow{m: {&row{seq: m}, f.srv.db.head()}}}}
	}
	if rows := fresh().aheadRows([]int64{m}); rows == nil || rows[m].seq != m {
		t.Fatalf("current rows not used: %v", rows)
	}
	s := fresh()
	if rows := s.aheadRows([]int64{m, m + 1000}); rows != nil {
		t.Fatalf("rows used although one is missing: %v", rows)
	}
	f.dispose(f.genSeqs[2])
	if rows := s.aheadRows([]int64{m}); rows != nil {
		t.Fatalf("rows loaded before a dispose entry used after it: %v", rows)
	}
}

// locate reports the messages of a batch located in order: the first
// few at once, then a chunk at a time, and stops when its context ends.
func TestLocateInChunks(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 300})
	st := f.srv.opts.Store
	var ms []member
	rows := map[int64]*row{}
	for i, seq := range f.genSeqs {
		ms = append(ms, member{key: int64(i), msg: int64(seq)})
		m, err := st.Index().Message(ctxT(t), seq)
		if err != nil {
			t.Fatal(err)
		}
		rows[int64(seq)] = &row{seq: int64(seq), ix: *m}
	}
	delete(rows, ms[5].msg) // a row that went missing is skipped
	done := make(chan int)
	go locate(ctxT(t), st, ms, rows, done)
	var got []int
	for n := range done {
		got = append(got, n)
	}
	if want := []int{locateFirst, locateFirst + locateChunk, 300}; !slices.Equal(got, want) {
		t.Fatalf("located %v, want %v", got, want)
	}

	ctx, cancel := context.WithCancel(ctxT(t))
	done = make(chan int)
	go locate(ctx, st, ms, rows, done)
	if n := <-done; n != locateFirst {
		t.Fatalf("first chunk %d", n)
	}
	cancel()
	select {
	case n, ok := <-done:
		if ok {
			// A chunk already sent before the cancel was seen: the next
			// receive must find the channel closed.
			if _, ok := <-done; ok {
				t.Fatalf("locate went on after its context ended (sent %d)", n)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("locate did not stop after its context ended")
	}
}

// A client that reads a folder's bodies a run of UIDs a command gets each
// next run's rows read while it parses the previous answer; they are used
// only while current: not after the ledger moved, not for INTERNALDATE
// when read without it, not after another folder was selected.
func TestNextBatchRowsReadAhead(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 40})
	r := f.inbox()
	fetch := func(tag string, lo, hi int, items string) string {
		t.Helper()
		r.send(fmt.Sprintf("%s UID FETCH %d:%d (%s)\r\n", tag, lo, hi, items))
		got := r.until(tag + " ")
		if !containsLine(got, tag+" OK") {
			t.Fatalf("%s: %q", tag, got)
		}
		// Every body asked for came, and is the archived one.
		for uid := lo; uid <= hi && strings.Contains(items, "BODY.PEEK[]"); uid++ {
			want := f.msgs[seqOfUID(imap.UID(uid))]
			if !strings.Contains(got, fmt.Sprintf("UID %d BODY[] {%d}\r\n%s", uid, len(want), want)) &&
				!strings.Contains(got, fmt.Sprintf("BODY[] {%d}\r\n%s", len(want), want)) {
				t.Fatalf("%s: UID %d: not its body", tag, uid)
			}
		}
		return got
	}
	used := func() int64 { return f.srv.nextUsed.Load() }

	fetch("A", 1, 10, "UID BODY.PEEK[]")
	u := used()
	fetch("B", 11, 20, "UID BODY.PEEK[]")
	if used() != u+1 {
		t.Fatalf("the second run did not use the rows read ahead (%d -> %d)", u, used())
	}
	// The ledger moves between two runs: the rows read ahead are not used.
	f.a.Add(t, []byte("Subject: new\r\n\r\nnew\r\n"), time.Now(), custA)
	u = used()
	fetch("C", 21, 30, "UID BODY.PEEK[]")
	if used() != u {
		t.Fatal("rows read before the ledger moved were used")
	}
	// Read without the received time: not for INTERNALDATE.
	got := fetch("D", 31, 40, "UID BODY.PEEK[] INTERNALDATE")
	if used() != u {
		t.Fatal("rows read without INTERNALDATE were used for it")
	}
	if strings.Contains(got, "01-Jan-1970") || strings.Count(got, "INTERNALDATE") != 10 {
		t.Fatalf("INTERNALDATE: %q", got)
	}
	// Another folder selected: nothing read ahead is kept.
	fetch("E", 1, 10, "UID BODY.PEEK[]")
	r.send("S2 EXAMINE INBOX\r\n")
	r.until("S2 OK")
	u = used()
	fetch("F", 11, 20, "UID BODY.PEEK[]")
	if used() != u {
		t.Fatal("rows read ahead survived a SELECT")
	}
}
