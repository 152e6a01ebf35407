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
	sets0, _, _, _ := dc.state()
	r.send("A UID FETCH 1:* (UID BODY.PEEK[])\r\n")
	out := r.until("A ")
	if !containsLine(out, "A OK") || strings.Count(out, " FETCH (") != 60 {
		t.Fatalf("FETCH:\n%.2000s", out)
	}
	// The answer is flushed before the deadline is cleared: wait for it.
	var sets, writes, bare int
	var dl time.Time
	for i := 0; i < 100; i++ {
		if sets, writes, bare, dl = dc.state(); dl.IsZero() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !dl.IsZero() {
		t.Fatalf("a write deadline is left after the answer: %v", dl)
	}
	if bare != 0 {
		t.Fatalf("%d of %d writes had no deadline %v ahead", bare, writes, minAhead)
	}
	// Before patch 14: 4 a message (240). Now: the response's, the first
	// literal's, the clearing, and a refresh a second at most.
	if n := sets - sets0; n > 8 {
		t.Fatalf("%d write deadlines set for a FETCH of 60 bodies", n)
	}
	t.Logf("%d writes, %d deadlines set in all, %d for the FETCH", writes, sets, sets-sets0)
}
