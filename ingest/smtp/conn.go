package smtp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// gate is the listener go-smtp serves from. It refuses clients outside the
// allowed networks and over the session limits before go-smtp greets them,
// and wraps every admitted connection in a trackedConn.
type gate struct {
	net.Listener
	srv *Server
	tls *tls.Config // non-nil for the implicit-TLS listener
}

func (g *gate) Accept() (net.Conn, error) {
	for {
		raw, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, r, ok := g.srv.admit(raw)
		if !ok {
			g.srv.counters.refuse(r)
			g.srv.turnAway(raw, g.tls, r)
			continue
		}
		if g.tls != nil {
			return tls.Server(c, g.tls), nil
		}
		return c, nil
	}
}

// admit registers a new connection, or says why it may not have a session.
func (s *Server) admit(raw net.Conn) (*trackedConn, reason, bool) {
	ip := remoteAddr(raw)
	if !s.allowed(ip) {
		return nil, reasonNetwork, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closing.Load():
		return nil, reasonShutdown, false
	case len(s.conns) >= s.opts.MaxSessions:
		return nil, reasonSessions, false
	case s.perIP[clientKey(ip)] >= s.opts.MaxSessionsPerIP:
		return nil, reasonSessionsPerIP, false
	}
	c := &trackedConn{Conn: raw, srv: s, ip: ip}
	c.drain.Store(-1)
	s.conns[c] = struct{}{}
	s.perIP[clientKey(ip)]++
	s.counters.sessionsOpen.Add(1)
	s.counters.sessions.Add(1)
	return c, 0, true
}

func (s *Server) release(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	k := clientKey(c.ip)
	if s.perIP[k]--; s.perIP[k] <= 0 {
		delete(s.perIP, k)
	}
	s.counters.sessionsOpen.Add(-1)
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	// Unix sockets and the like: only the operator can reach them.
	return netip.IPv6Loopback()
}

// clientKey is what MaxSessionsPerIP counts: an IPv4 address, or the /64
// an IPv6 address is in, since one IPv6 host usually has a whole /64.
func clientKey(ip netip.Addr) netip.Prefix {
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

func (s *Server) allowed(ip netip.Addr) bool {
	for _, p := range s.networks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// maxTurningAway bounds the goroutines that answer refused connections.
const maxTurningAway = 64

// turnAway answers a refused connection in its own goroutine, so the accept
// loop never waits on a client. A client outside the allowed networks gets
// 554 and, as RFC 5321 §3.1 asks, 503 to anything but QUIT for a short
// while; a client over a limit gets 421 and the connection is closed
// (§3.8).
func (s *Server) turnAway(c net.Conn, tlsConfig *tls.Config, r reason) {
	if s.turningAway.Add(1) > maxTurningAway {
		s.turningAway.Add(-1)
		c.Close()
		return
	}
	s.mu.Lock()
	s.refused[c] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer s.turningAway.Add(-1)
		defer func() {
			c.Close()
			s.mu.Lock()
			delete(s.refused, c)
			s.mu.Unlock()
		}()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var rw net.Conn = c
		if tlsConfig != nil {
			tc := tls.Server(c, tlsConfig)
			if tc.Handshake() != nil {
				return
			}
			rw = tc
		}
		if _, err := io.WriteString(rw, greetingRefusal(r, s.opts.Hostname)+"\r\n"); err != nil || r != reasonNetwork {
			return
		}
		br := bufio.NewReaderSize(io.LimitReader(rw, 4096), 512)
		for i := 0; i < 10; i++ {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if strings.EqualFold(strings.TrimSpace(line), "QUIT") {
				io.WriteString(rw, "221 2.0.0 Bye\r\n")
				return
			}
			// RFC 5321 §3.1: "503 bad sequence of commands" until QUIT.
			if _, err := io.WriteString(rw, "503 5.5.1 Bad sequence of commands\r\n"); err != nil {
				return
			}
		}
	}()
}

// stop modes of a trackedConn.
const (
	running  int32 = iota
	stopEOF        // reads end quietly: a reply was already written
	stopIdle       // reads time out: go-smtp answers 421 4.4.2 and closes
)

// errStopped is the timeout error reads return after stopIdle. go-smtp
// checks for a net.Error that is a timeout and answers "421 4.4.2".
var errStopped = &stoppedError{}

type stoppedError struct{}

func (*stoppedError) Error() string   { return "smtp: server shutting down" }
func (*stoppedError) Timeout() bool   { return true }
func (*stoppedError) Temporary() bool { return true }

// trackedConn is the connection under go-smtp (and under TLS when there is
// TLS). It sets the read deadline for every read (CommandTimeout, or
// DataTimeout while a message is being received), bounds the bytes drained
// after a refused message, and lets the server stop the session between
// commands.
type trackedConn struct {
	net.Conn
	srv *Server
	ip  netip.Addr

	inData    atomic.Bool  // a message is being received or archived
	stop      atomic.Int32 // running, stopEOF or stopIdle
	drain     atomic.Int64 // bytes left to drain after a refused message; -1 when not draining
	closeNext atomic.Bool  // stop (EOF) after the next write: the reply that ends the session
	closeOnce sync.Once
}

func (c *trackedConn) Read(b []byte) (int, error) {
	if err := c.stopped(); err != nil {
		return 0, err
	}
	d := c.srv.opts.CommandTimeout
	if c.inData.Load() {
		d = c.srv.opts.DataTimeout
	}
	c.Conn.SetReadDeadline(time.Now().Add(d))
	// Check again: a stop that raced with the deadline above has set a past
	// deadline before or after it; if before, this catches it.
	if err := c.stopped(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if err != nil {
		if serr := c.stopped(); serr != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return n, serr
		}
		return n, err
	}
	if left := c.drain.Load(); left >= 0 {
		if c.drain.Add(-int64(n)) < 0 {
			// A refused message keeps coming: stop reading it.
			c.stopWith(stopEOF)
		}
	}
	return n, nil
}

func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.drain.Store(-1) // the reply to the drained message is out
	if c.closeNext.Load() {
		c.stopWith(stopEOF)
	}
	return n, err
}

func (c *trackedConn) stopped() error {
	switch c.stop.Load() {
	case stopEOF:
		return io.EOF
	case stopIdle:
		return errStopped
	}
	return nil
}

// stopWith makes pending and future reads fail. The first mode set wins.
func (c *trackedConn) stopWith(mode int32) {
	if c.stop.CompareAndSwap(running, mode) {
		c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// beginData and endData bracket the receipt and archiving of one message.
func (c *trackedConn) beginData() { c.inData.Store(true) }

func (c *trackedConn) endData() {
	c.inData.Store(false)
	if c.srv.closing.Load() {
		c.stopWith(stopIdle) // the reply is written before the next read
	}
}

// stopIfIdle is Shutdown's request: a session between commands stops now,
// one receiving a message stops after it (endData).
func (c *trackedConn) stopIfIdle() {
	if !c.inData.Load() {
		c.stopWith(stopIdle)
	}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.srv.release(c) })
	return err
}

// netConn finds the trackedConn under a go-smtp connection.
func netConn(c net.Conn) *trackedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*trackedConn)
	return t
}
