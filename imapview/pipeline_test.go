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
	// The command that finds the burst behind it is in the burst's event:
	// it does not cost a durable write of its own.
	if ev := evs[0]; ev.Details.Note == "" || !strings.HasPrefix(ev.Target.UIDs, fmt.Sprint(f.genSeqs[0]+1)) {
		t.Errorf("first command recorded apart from the burst behind it: %q %q", ev.Target.UIDs, ev.Details.Note)
	}
	if n := len(evs) - bodyEvents; n != 1 {
		t.Errorf("%d events for the FLAGS fetch, want 1", n)
	}
	t.Logf("60 pipelined UID FETCH commands: %d audit events", bodyEvents)
}

// Answers to pipelined commands are written together (go-imap patch 10:
// FETCH lines and a tagged answer followed by another command already
// received are not flushed on their own), and nothing waits in the buffer
// when the client waits: behind a partial command line, before IDLE's
// continuation, after the last command.
func TestPipelinedAnswersAllArrive(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 5})
	r := f.inbox()
	// A and B whole, C cut short: A's and B's answers must arrive although
	// bytes of C are buffered.
	r.send("A UID FETCH 1:* (UID FLAGS)\r\nB NOOP\r\nC NO")
	out := r.until("B ")
	if !containsLine(out, "A OK") || !containsLine(out, "B OK") || strings.Count(out, " FETCH (") != 5 {
		t.Fatalf("before the rest of C:\n%s", out)
	}
	r.send("OP\r\n")
	if out := r.until("C "); !containsLine(out, "C OK") {
		t.Fatalf("C: %s", out)
	}
	// A FETCH answered without flushing, then IDLE: its continuation
	// request brings everything.
	r.send("F UID FETCH 1:* (FLAGS)\r\nG IDLE\r\n")
	out = r.until("+ ")
	if !containsLine(out, "F OK") || strings.Count(out, " FETCH (") != 5 {
		t.Fatalf("before IDLE's continuation:\n%s", out)
	}
	r.send("DONE\r\n")
	if out := r.until("G "); !containsLine(out, "G OK") {
		t.Fatalf("IDLE: %s", out)
	}
	// The last command of a burst is flushed.
	r.send("H UID FETCH 1:* (FLAGS)\r\nI UID FETCH 1:* (UID)\r\n")
	if out := r.until("I "); !containsLine(out, "H OK") || !containsLine(out, "I OK") {
		t.Fatalf("last of a burst: %s", out)
	}
	r.send("Z LOGOUT\r\n")
	if out := r.until("Z "); !containsLine(out, "Z OK") {
		t.Fatalf("LOGOUT: %s", out)
	}
}
