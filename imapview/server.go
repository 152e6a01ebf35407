package imapview

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/imapview/search"
)

// Options configure a Server.
type Options struct {
	// Store is the archive: its index answers every listing and search, its
	// ranged reader serves bodies.
	Store *archive.Store
	// Accounts checks logins and keeps each account's flags.
	Accounts *auth.DB
	// Audit records every access; a command whose event cannot be recorded
	// is refused (fail closed). Required.
	Audit audit.Recorder
	// Cases resolves the Cases/ folders and case scopes; nil: none.
	Cases CaseSource
	// TLS serves IMAPS (ServeTLS) and STARTTLS. Without it, only loopback
	// clients can log in (LOGINDISABLED elsewhere).
	TLS *tls.Config
	// Logger; default slog.Default().
	Logger *slog.Logger
	// PollInterval is how often the view looks for newly archived and
	// disposed messages for idling clients (default 1s). Every other
	// command checks at its end.
	PollInterval time.Duration
	// MaxConnections bounds the open connections (default 1,000), and
	// MaxConnectionsPerIP those from one address (default 50); more get
	// BYE at once. Each idle connection costs ~20 KiB.
	MaxConnections      int
	MaxConnectionsPerIP int
	// ConfirmLimit: a BODY or TEXT search with at most this many word
	// matches checks each candidate's text for the exact phrase (default
	// 200; see package search).
	ConfirmLimit int
	// ReaderConns bounds the SQLite connections reading the index
	// (default 8).
	ReaderConns int
	// DebugWriter, if set, receives every byte of every connection
	// (passwords included): for tests only.
	DebugWriter interface{ Write([]byte) (int, error) }
}

// Server serves the read-only IMAP view. Create it with New, feed it
// listeners with Serve (plain, with STARTTLS) and ServeTLS (IMAPS), stop it
// with Close.
type Server struct {
	opts        Options
	lg          *slog.Logger
	db          *stmtDB
	uidValidity uint32
	aheadUsed   atomic.Int64 // messages sent from a read-ahead (prefetch.go)
	nextUsed    atomic.Int64 // batches whose rows were read ahead (prefetch.go)
	// numberMu serializes the renumbering of numbered folders (numbering.go)
	// among this server's sessions.
	numberMu sync.Mutex

	// Two go-imap servers: one lets loopback clients log in before TLS,
	// the other answers LOGINDISABLED until STARTTLS (RFC 9051 §6.2.3).
	local, remote     *imapserver.Server
	localLn, remoteLn *chanListener

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     int
	perIP     map[netip.Addr]int
	closed    bool
	changed   chan struct{} // closed and replaced when the ledger grows

	// isLocal decides who may log in before TLS (tests replace it).
	isLocal func(net.Addr) bool

	stop     chan struct{}
	wg       sync.WaitGroup
	sessions sync.WaitGroup
}

// New opens the index read-only and prepares the server.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Accounts == nil || opts.Audit == nil {
		return nil, errors.New("imapview: Store, Accounts and Audit are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 1000
	}
	if opts.MaxConnectionsPerIP <= 0 {
		opts.MaxConnectionsPerIP = 50
	}
	if opts.ConfirmLimit == 0 {
		opts.ConfirmLimit = 200
	}
	db, err := search.OpenReader(opts.Store.Index().Path(), opts.Accounts.Path(), opts.ReaderConns)
	if err != nil {
		return nil, fmt.Errorf("imapview: %w", err)
	}
	sdb := newStmtDB(db)
	if !opts.Store.ReadOnly() {
		// This process is the archive's only writer: every new ledger
		// entry goes through its index, which knows the head.
		sdb.head = opts.Store.Index().Head
	}
	s := &Server{
		opts:      opts,
		lg:        opts.Logger.With("service", "imap"),
		db:        sdb,
		listeners: map[net.Listener]struct{}{},
		perIP:     map[netip.Addr]int{},
		changed:   make(chan struct{}),
		stop:      make(chan struct{}),
		isLocal:   isLoopback,
	}
	// UIDVALIDITY never changes for this archive (its ledger's name) and
	// differs between archives, so a client never mixes two up. Folders
	// made of litigation holds add the holds' changes (viewer.uidValidity).
	h := sha256.Sum256([]byte("cairn imap uidvalidity\x00" + opts.Store.LogID()))
	s.uidValidity = binary.BigEndian.Uint32(h[:4])&0x7fffffff | 1

	caps := imap.CapSet{}
	for _, c := range []imap.Cap{imap.CapIMAP4rev1, imap.CapESearch, imap.CapNamespace, imap.CapBinary,
		imap.CapChildren, imap.CapStatusSize} {
		caps[c] = struct{}{}
	}
	mk := func(insecure bool) *imapserver.Server {
		o := &imapserver.Options{
			NewSession:   s.newSession,
			Caps:         caps,
			Logger:       logAdapter{s.lg},
			TLSConfig:    opts.TLS,
			InsecureAuth: insecure,
		}
		if opts.DebugWriter != nil {
			o.DebugWriter = opts.DebugWriter
		}
		return imapserver.New(o)
	}
	s.local, s.remote = mk(true), mk(false)
	s.localLn, s.remoteLn = newChanListener(), newChanListener()
	for _, p := range []struct {
		srv *imapserver.Server
		ln  *chanListener
	}{{s.local, s.localLn}, {s.remote, s.remoteLn}} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			p.srv.Serve(p.ln)
		}()
	}
	s.wg.Add(1)
	go s.watch()
	return s, nil
}

// UIDValidity is the UIDVALIDITY of every folder of this archive whose
// members do not depend on litigation holds; Cases/<id>, and the INBOX and
// Dates/ of an account scoped to cases, add their cases' CaseSource.Epoch.
func (s *Server) UIDValidity() uint32 { return s.uidValidity }

// Serve accepts plain connections on ln (STARTTLS upgrades them when
// Options.TLS is set) until Close. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts IMAPS connections (implicit TLS, RFC 8314) on ln.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opts.TLS == nil {
		return errors.New("imapview: ServeTLS needs Options.TLS")
	}
	return s.serve(ln, true)
}

func (s *Server) serve(ln net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				delay = min(max(delay*2, 5*time.Millisecond), time.Second)
				s.lg.Warn("accept failed; retrying", "err", err, "in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("imapview: accept: %w", err)
		}
		delay = 0
		loopback := s.isLocal(c.RemoteAddr())
		if implicitTLS {
			c = tls.Server(c, s.opts.TLS)
		}
		ln := s.remoteLn
		if loopback {
			ln = s.localLn
		}
		if !ln.hand(c) {
			c.Close()
			return nil
		}
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Close stops accepting, ends every connection and closes the index.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	close(s.stop)
	// Stop go-imap's accept loops before closing its servers (their
	// listener WaitGroup must not be waited on while Serve may still
	// start), then end the connections and wait for their sessions.
	s.localLn.Close()
	s.remoteLn.Close()
	s.wg.Wait()
	s.local.Close()
	s.remote.Close()
	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.lg.Warn("sessions still running at close")
	}
	return s.db.Close()
}

// watch notices ledger growth (new messages, disposals) for idling
// sessions: one cheap query per interval for the whole server.
func (s *Server) watch() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PollInterval)
	defer t.Stop()
	last := int64(-2)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		head, err := ledgerHead(ctx, s.db)
		cancel()
		if err != nil {
			s.lg.Warn("polling the index failed", "err", err)
			continue
		}
		if head != last {
			last = head
			s.mu.Lock()
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
	}
}

// changes returns a channel closed at the next ledger growth.
func (s *Server) changes() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// admit counts a new connection from ip, or refuses it.
func (s *Server) admit(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.conns >= s.opts.MaxConnections || s.perIP[ip] >= s.opts.MaxConnectionsPerIP {
		return false
	}
	s.conns++
	s.perIP[ip]++
	s.sessions.Add(1)
	return true
}

func (s *Server) release(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	s.sessions.Done()
}

// Connections returns the number of open connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// chanListener hands accepted connections to a go-imap server.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) hand(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// logAdapter sends go-imap's log lines to slog.
type logAdapter struct{ lg *slog.Logger }

func (a logAdapter) Printf(format string, args ...any) {
	a.lg.Debug(fmt.Sprintf(format, args...))
}
