package imapview

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-archive/cairn/audit"
)

// TestPipelinedFetchAudit: 60 pipelined one-message UID FETCH commands (as
// mbsync sends them) are all served, and their access is on record before
// any of it is sent, in a few events rather than one per command; a
// pipelined command for other items is recorded on its own.
func TestPipelinedFetchAudit(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 60})
	r := f.raw()
	r.login("auditor", f.password)
	r.send("S SELECT INBOX\r\n")
	r.until("S OK")
	before := len(f.a.Audit.Events(audit.ActionFetch))
	var b strings.Builder
	for i, seq := range f.genSeqs {
		fmt.Fprintf(&b, "F%d UID FETCH %d (BODY.PEEK[])\r\n", i, seq+1)
	}
	b.WriteString("G UID FETCH 1:* (FLAGS)\r\n")
	r.send(b.String())
	got := r.until("G ")
	for i := range f.genSeqs {
		if !containsLine(got, fmt.Sprintf("F%d OK", i)) {
			t.Fatalf("command F%d not answered OK", i)
		}
	}
	evs := f.a.Audit.Events(audit.ActionFetch)[before:]
	covered := map[string]bool{}
	bodyEvents := 0
	for _, ev := range evs {
		if strings.Contains(strings.Join(ev.Details.Parts, " "), "BODY.PEEK[]") {
			bodyEvents++
			for _, part := range strings.Split(ev.Target.UIDs, ",") {
				lo, hi, isRange := strings.Cut(part, ":")
				if !isRange {
					hi = lo
				}
				var a, z int
				fmt.Sscan(lo, &a)
				fmt.Sscan(hi, &z)
				for u := a; u <= z; u++ {
					covered[fmt.Sprint(u)] = true
				}
			}
		}
	}
	for _, seq := range f.genSeqs {
		if !covered[fmt.Sprint(seq+1)] {
			t.Errorf("UID %d fetched but not on record", seq+1)
		}
	}
	if bodyEvents > 10 {
		t.Errorf("%d events for 60 pipelined commands", bodyEvents)
	}
	if n := len(evs) - bodyEvents; n != 1 {
		t.Errorf("%d events for the FLAGS fetch, want 1", n)
	}
	t.Logf("60 pipelined UID FETCH commands: %d audit events", bodyEvents)
}
