package imapview

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/audit"
)

// A FETCH over several batches (small batches here) answers every message
// once, in order, with its own bytes and sequence number; body reads go in
// bodyBatch batches and header reads in fetchBatch ones, each audited
// before it is sent.
func TestFetchAcrossBatches(t *testing.T) {
	oldF, oldB := fetchBatch, bodyBatch
	fetchBatch, bodyBatch = 3, 7
	defer func() { fetchBatch, bodyBatch = oldF, oldB }()
	const n = 23
	f := newFixture(t, fixtureOpts{generated: n})
	c := f.auditor()
	defer c.Close()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		opts   *imap.FetchOptions
		events int
	}{
		{"body", &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}, (n + 6) / 7},
		{"envelope and body", &imap.FetchOptions{UID: true, Envelope: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}, (n + 2) / 3},
	} {
		before := len(f.a.Audit.Events(audit.ActionFetch))
		var all imap.UIDSet
		all.AddRange(1, 0)
		res, err := c.Fetch(all, tc.opts).Collect()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(res) != n {
			t.Fatalf("%s: %d messages, want %d", tc.name, len(res), n)
		}
		for i, m := range res {
			if m.SeqNum != uint32(i+1) || m.UID != imap.UID(f.genSeqs[i]+1) {
				t.Fatalf("%s: message %d is seq %d UID %d, want seq %d UID %d", tc.name, i, m.SeqNum, m.UID, i+1, f.genSeqs[i]+1)
			}
			if got := m.BodySection[0].Bytes; !bytes.Equal(got, f.msgs[f.genSeqs[i]]) {
				t.Fatalf("%s: UID %d: %d bytes, not the original", tc.name, m.UID, len(got))
			}
			if tc.opts.Envelope && (m.Envelope == nil || m.Envelope.Subject != f.gen[i].Subject) {
				t.Fatalf("%s: UID %d: envelope %+v", tc.name, m.UID, m.Envelope)
			}
		}
		if got := len(f.a.Audit.Events(audit.ActionFetch)) - before; got != tc.events {
			t.Errorf("%s: %d audit events, want one per batch: %d", tc.name, got, tc.events)
		}
	}
}

// A FETCH of a set with holes answers exactly the messages asked for,
// whether the rows come from a range scan (most of the seqs between the
// ends asked for) or from lookups one by one.
func TestFetchSetWithHoles(t *testing.T) {
	for _, c := range []struct {
		msgs  []int64
		dense bool
	}{
		{[]int64{1}, false},
		{[]int64{1, 2}, true},
		{[]int64{1, 3, 4, 5, 8}, true},
		{[]int64{1, 100}, false},
		{[]int64{3, 2, 4}, false},
		{[]int64{2, 2, 3}, false},
	} {
		if _, _, dense := denseRange(c.msgs); dense != c.dense {
			t.Errorf("denseRange(%v) = %v, want %v", c.msgs, dense, c.dense)
		}
	}

	f := newFixture(t, fixtureOpts{generated: 40})
	r := f.inbox()
	uidRe := regexp.MustCompile(`(?m)^\* \d+ FETCH \(.*UID (\d+)`)
	for _, c := range []struct{ set, items, want string }{
		{"2,4:6,9,30:31", "RFC822.SIZE ENVELOPE", "2 4 5 6 9 30 31"},
		{"2,4:6,9,30:31", "BODY.PEEK[]", "2 4 5 6 9 30 31"},
		{"1,40", "RFC822.SIZE", "1 40"},
		{"3:4,7", "FLAGS INTERNALDATE", "3 4 7"},
	} {
		r.send(fmt.Sprintf("F UID FETCH %s (UID %s)\r\n", c.set, c.items))
		got := r.until("F ")
		if !containsLine(got, "F OK") {
			t.Fatalf("UID FETCH %s (%s): %q", c.set, c.items, got)
		}
		var uids []string
		for _, m := range uidRe.FindAllStringSubmatch(got, -1) {
			uids = append(uids, m[1])
		}
		if strings.Join(uids, " ") != c.want {
			t.Errorf("UID FETCH %s (%s): UIDs %v, want %s", c.set, c.items, uids, c.want)
		}
	}
}

// INTERNALDATE is the first delivery's time whatever comes with it: alone,
// with bodies in a batch, and with bodies one message a command pipelined
// (read ahead). The index rows skip the deliveries when it is not asked.
func TestInternalDateWithAndWithoutBodies(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 3})
	raw := []byte("From: a@example.com\r\nSubject: when\r\n\r\nbody\r\n")
	var uids []uint64
	for i := range 3 {
		raw := append([]byte(fmt.Sprintf("X-N: %d\r\n", i)), raw...)
		seq := f.a.Add(t, raw, time.Date(2024, 3, 10+i, 12, 0, 0, 0, time.UTC), custA)
		uids = append(uids, seq+1)
	}
	want := func(i int) string { return fmt.Sprintf(`INTERNALDATE "%02d-Mar-2024 12:00:00 +0000"`, 10+i) }
	r := f.inbox()
	set := fmt.Sprintf("%d:%d", uids[0], uids[2])
	for _, items := range []string{"INTERNALDATE", "BODY.PEEK[] INTERNALDATE", "RFC822.SIZE INTERNALDATE", "BODY.PEEK[]"} {
		r.send(fmt.Sprintf("F UID FETCH %s (%s)\r\n", set, items))
		got := r.until("F ")
		for i := range 3 {
			if has := strings.Contains(got, want(i)); has != strings.Contains(items, "INTERNALDATE") {
				t.Errorf("UID FETCH %s (%s): %s: %v in %q", set, items, want(i), has, got)
			}
		}
	}
	var burst strings.Builder
	for i, uid := range uids {
		fmt.Fprintf(&burst, "P%d UID FETCH %d (BODY.PEEK[] INTERNALDATE)\r\n", i, uid)
	}
	r.send(burst.String())
	got := r.until("P2 ")
	for i := range 3 {
		if !strings.Contains(got, want(i)) {
			t.Errorf("pipelined: no %s in %q", want(i), got)
		}
	}
}
