package imapview

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// deadlineConn records the write deadlines set on a server connection and
// flags any write made without one at least minAhead in the future.
type deadlineConn struct {
	net.Conn
	mu       sync.Mutex
	sets     int
	deadline time.Time
	writes   int
	bare     int // writes without a deadline far enough ahead
}

// minAhead is what a write must have left: the response timeout, 30 s,
// less go-imap patch 14's slack and some scheduling.
const minAhead = 28 * time.Second

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.sets++
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	if c.deadline.IsZero() || time.Until(c.deadline) < minAhead {
		c.bare++
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *deadlineConn) state() (sets, writes, bare int, deadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sets, c.writes, c.bare, c.deadline
}

type deadlineListener struct {
	net.Listener
	conns chan *deadlineConn
}

func (l deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	dc := &deadlineConn{Conn: c}
	l.conns <- dc
	return dc, nil
}

// waitCleared waits until the connection has no write deadline: the server
// clears it only after flushing its answer, so it may still be set when
// the client has read the answer.
func waitCleared(t *testing.T, dc *deadlineConn, after string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		sets, writes, _, dl := dc.state()
		if dl.IsZero() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a write deadline is left 10 s after the answer to %s: %v (%d writes, %d deadlines set)", after, dl, writes, sets)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeDeadlineSlack is go-imap patch 14's: a kept deadline may be up to
// this much shorter than asked, so a literal's deadline is set again at
// most once per writeDeadlineSlack (imapserver/conn.go).
const writeDeadlineSlack = time.Second

// go-imap patch 14: a FETCH of many bodies sets the write deadline a few
// times, not four times a message; every write still has one, and none is
// left once the answer is flushed and the client waits.
func TestWriteDeadlinesPerCommand(t *testing.T) {
	conns := make(chan *deadlineConn, 4)
	f := newFixture(t, fixtureOpts{generated: 60, wrap: func(ln net.Listener) net.Listener {
		return deadlineListener{ln, conns}
	}})
	r := f.inbox()
	dc := <-conns
	// EXAMINE's answer clears its deadline after the client has it: wait,
	// or that clearing is counted for the FETCH.
	waitCleared(t, dc, "EXAMINE")
	sets0, _, _, _ := dc.state()
	start := time.Now()
	r.send("A UID FETCH 1:* (UID BODY.PEEK[])\r\n")
	out := r.until("A ")
	if !containsLine(out, "A OK") || strings.Count(out, " FETCH (") != 60 {
		t.Fatalf("FETCH:\n%.2000s", out)
	}
	waitCleared(t, dc, "FETCH")
	// Every deadline the FETCH set was set within took.
	took := time.Since(start)
	sets, writes, bare, _ := dc.state()
	if bare != 0 {
		t.Fatalf("%d of %d writes had no deadline %v ahead", bare, writes, minAhead)
	}
	// Before patch 14: 4 a message (240). Now: the response's, the
	// clearing, and the literals': the first one's, then again only once
	// more than writeDeadlineSlack has passed since, so at most
	// ceil(took/writeDeadlineSlack) in all. A loaded machine makes the
	// FETCH slower and the bound larger, never the count wrong.
	limit := 2 + int((took+writeDeadlineSlack-1)/writeDeadlineSlack)
	if n := sets - sets0; n > limit {
		t.Fatalf("%d write deadlines set for a FETCH of 60 bodies in %v, want at most %d", n, took, limit)
	}
	t.Logf("%d writes, %d deadlines set in all, %d for the FETCH (%v, at most %d)", writes, sets, sets-sets0, took.Round(time.Millisecond), limit)
}
