package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/journal"
)

// Runtime holds what a config file cannot: the certificate made at run time,
// the credential check and the logger. Every field is optional.
type Runtime struct {
	// TLSConfig, when set, is used for STARTTLS and TLSListen instead of
	// Options.TLSCert/TLSKey (cmd/cairn passes the embedded default's
	// certs.LoadOrCreate pair this way).
	TLSConfig *tls.Config
	// Authenticator enables AUTH PLAIN and LOGIN (over TLS only).
	Authenticator Authenticator
	// Logger receives one line per message and the receiver's warnings.
	// Default slog.Default().
	Logger *slog.Logger
}

// Server is the SMTP receiver.
type Server struct {
	opts       Options
	archiver   ingest.Archiver
	auth       Authenticator
	classifier *journal.Classifier
	networks   []netip.Prefix
	accept     *acceptList
	tlsConfig  *tls.Config
	log        *slog.Logger
	smtp       *gosmtp.Server
	budget     budget
	buffers    sync.Pool // *[]byte: message buffers for reuse (data.go)
	counters   *counters

	baseCtx    context.Context // ends at Close: cancels Archive calls in flight
	cancelBase context.CancelFunc

	closing     atomic.Bool
	turningAway atomic.Int64

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	perIP   map[netip.Prefix]int  // by clientKey
	refused map[net.Conn]struct{} // connections being turned away
}

// New returns a receiver that archives into archiver. It validates opts
// (zero fields take DefaultOptions' values) and loads the TLS pair.
func New(opts Options, archiver ingest.Archiver, rt Runtime) (*Server, error) {
	if archiver == nil {
		return nil, errors.New("smtp: nil Archiver")
	}
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	networks, _ := parseNetworks(opts.AllowedNetworks)
	accept, _ := parseAcceptList(opts.AcceptRecipients)
	classifier, err := journal.New(opts.Journal)
	if err != nil {
		return nil, err
	}
	tlsConfig := rt.TLSConfig
	if tlsConfig == nil && opts.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("smtp: load %s: %w", opts.TLSCert, err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	if tlsConfig != nil {
		tlsConfig = tlsConfig.Clone()
		if tlsConfig.MinVersion < tls.VersionTLS12 {
			tlsConfig.MinVersion = tls.VersionTLS12
		}
	}
	if opts.TLSListen != "" && tlsConfig == nil {
		return nil, errors.New("smtp: tls_listen needs tls_cert and tls_key")
	}
	if opts.AuthRequired && (rt.Authenticator == nil || tlsConfig == nil) {
		return nil, errors.New("smtp: auth_required needs TLS and an authenticator")
	}
	logger := rt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{
		opts:       opts,
		archiver:   archiver,
		auth:       rt.Authenticator,
		classifier: classifier,
		networks:   networks,
		accept:     accept,
		tlsConfig:  tlsConfig,
		log:        logger,
		counters:   newCounters(),
		conns:      map[*trackedConn]struct{}{},
		perIP:      map[netip.Prefix]int{},
		refused:    map[net.Conn]struct{}{},
	}
	s.budget.limit = opts.MaxBufferedBytes
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())

	g := gosmtp.NewServer(s)
	g.Domain = opts.Hostname
	g.TLSConfig = tlsConfig
	g.MaxMessageBytes = opts.MaxMessageBytes
	g.MaxRecipients = opts.MaxRecipients
	g.MaxLineLength = opts.MaxLineLength
	g.AllowInsecureAuth = false // AUTH only over TLS
	g.EnableSMTPUTF8 = true     // RFC 6531: addresses are archived as given
	// Read deadlines are set per read by trackedConn; go-smtp's would be
	// one deadline for a whole message.
	g.ReadTimeout = 0
	g.WriteTimeout = opts.CommandTimeout
	g.ErrorLog = errorLog{logger}
	s.smtp = g
	return s, nil
}

// Serve accepts SMTP connections on l until Shutdown or Close, then returns
// nil.
func (s *Server) Serve(l net.Listener) error {
	return s.smtp.Serve(&gate{Listener: l, srv: s})
}

// ServeTLS accepts implicit-TLS connections (RFC 8314) on l.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.tlsConfig == nil {
		return errors.New("smtp: ServeTLS without a certificate")
	}
	return s.smtp.Serve(&gate{Listener: l, srv: s, tls: s.tlsConfig})
}

// ListenAndServe listens on Options.Listen (and TLSListen when set) and
// serves until Shutdown or Close. It returns the first listener error, or
// nil after a shutdown.
func (s *Server) ListenAndServe() error {
	l, err := Listen(s.opts.Listen)
	if err != nil {
		return fmt.Errorf("smtp: listen %s: %w", s.opts.Listen, err)
	}
	var tl net.Listener
	if s.opts.TLSListen != "" {
		if tl, err = Listen(s.opts.TLSListen); err != nil {
			l.Close()
			return fmt.Errorf("smtp: listen %s: %w", s.opts.TLSListen, err)
		}
	}
	s.log.Info("smtp: listening", "addr", l.Addr().String(), "tls_addr", addrOf(tl), "starttls", s.tlsConfig != nil)
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(l) }()
	n := 1
	if tl != nil {
		n++
		go func() { errc <- s.ServeTLS(tl) }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil && first == nil {
			first = err
			s.Close()
		}
	}
	return first
}

// Listen opens a TCP listener for the server without TCP keepalive on its
// connections: the command and data timeouts already end sessions whose
// client went away, and the keepalive options cost four setsockopt calls
// per connection, which journaling clients open once per message.
func Listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}

func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Shutdown stops accepting connections and ends every session: one waiting
// for a command is answered 421 at once; one receiving or archiving a
// message finishes it, gets its reply, and then 421. It returns when every
// session has ended, or when ctx ends; then it closes what is left (Close)
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.stopIfIdle()
	}
	for c := range s.refused {
		c.Close()
	}
	s.mu.Unlock()
	err := s.smtp.Shutdown(ctx)
	if errors.Is(err, gosmtp.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		s.Close()
		return err
	}
	s.cancelBase()
	return nil
}

// Close closes the listeners and every connection at once, cancelling
// Archive calls in flight (their messages get no reply, so the clients
// retry them).
func (s *Server) Close() error {
	s.closing.Store(true)
	s.cancelBase()
	err := s.smtp.Close()
	if errors.Is(err, gosmtp.ErrServerClosed) {
		err = nil // after Shutdown go-smtp closes nothing more: close below
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Conn.Close()
	}
	for c := range s.refused {
		c.Close()
	}
	s.mu.Unlock()
	return err
}

// errorLog sends go-smtp's internal messages to slog: panics as errors,
// everything else (mostly clients that hang up or fail TLS) as debug.
type errorLog struct{ l *slog.Logger }

func (e errorLog) Printf(format string, v ...any) { e.log(fmt.Sprintf(format, v...)) }
func (e errorLog) Println(v ...any)               { e.log(strings.TrimSuffix(fmt.Sprintln(v...), "\n")) }

func (e errorLog) log(msg string) {
	if strings.Contains(msg, "panic") {
		e.l.Error("smtp: go-smtp: " + msg)
		return
	}
	e.l.Debug("smtp: go-smtp: " + msg)
}
