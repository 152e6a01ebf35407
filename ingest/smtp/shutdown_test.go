package smtp

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestGracefulShutdown(t *testing.T) {
	fa := &fakeArchiver{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	s, err := New(Options{Hostname: "cairn.test"}, fa, Runtime{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	addr := l.Addr().String()

	idle := dial(t, addr)
	idle.Hello(heloName)

	busy := dial(t, addr)
	busy.Hello(heloName)
	busy.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	busy.Expect("250")
	busy.Expect("250")
	busy.Expect("354")
	busy.Send(message("inflight", "x\r\n") + ".\r\n")
	<-fa.entered

	// A session still sending its message finishes it too.
	sending := dial(t, addr)
	sending.Hello(heloName)
	sending.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	sending.Expect("250")
	sending.Expect("250")
	sending.Expect("354")
	sending.Send("Subject: half\r\n\r\n")
	waitFor(t, func() bool { return inData(s) })

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()

	// The idle session is told at once.
	idle.Expect("421 ")
	if closed, r := idle.Closed(); !closed {
		t.Errorf("idle session still open: %q", r)
	}
	// No new sessions.
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		if strings.HasPrefix(string(buf[:n]), "220") {
			t.Error("a new session was greeted during shutdown")
		}
		c.Close()
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a message in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	// The half-sent message completes and is archived, then 421.
	sending.Send("rest of the body\r\n.\r\n")
	// The archived message is answered, then 421.
	close(fa.hold)
	busy.Expect("250 2.0.0 Archived as seq")
	busy.Expect("421 ")
	sending.Expect("250 2.0.0 Archived as seq")
	sending.Expect("421 ")
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if n := len(fa.messages()); n != 2 {
		t.Errorf("%d messages archived, want 2", n)
	}
	if st := s.Stats(); st.SessionsOpen != 0 {
		t.Errorf("%d sessions open after Shutdown", st.SessionsOpen)
	}
}

// When the context ends first, Shutdown closes what is left and says so;
// the unfinished message is not archived and got no 250.
func TestShutdownDeadline(t *testing.T) {
	fa := &fakeArchiver{}
	s, err := New(Options{Hostname: "cairn.test"}, fa, Runtime{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.Serve(l)
	c := dial(t, l.Addr().String())
	c.Hello(heloName)
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("354")
	c.Send("Subject: never finished\r\n\r\n")
	waitFor(t, func() bool { return inData(s) })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if r, err := c.Reply(); err == nil && strings.HasPrefix(r, "250") {
		t.Fatalf("got %q for an unfinished message", r)
	}
	if len(fa.messages()) != 0 {
		t.Fatal("an unfinished message was archived")
	}
	waitFor(t, func() bool { return s.Stats().SessionsOpen == 0 })
}

// inData reports whether every open session is receiving a message (go-smtp
// writes 354 a moment before it hands the data to the session).
func inData(s *Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		if c.inData.Load() {
			n++
		}
	}
	return n > 0 && n >= len(s.conns)-1
}
