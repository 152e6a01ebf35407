package smtp

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/journal"
)

// session is one SMTP session as go-smtp sees it. go-smtp calls its methods
// from the connection's goroutine (Data from a second one for BDAT), one at
// a time.
type session struct {
	srv  *Server
	c    *gosmtp.Conn
	conn *trackedConn

	user         string // authenticated user, "" if none
	authFailures int

	from     string
	rcpts    []string
	sizeHint int64
	// ann is the transaction's message announced to the archive's group
	// commit (ingest.Announcer), from its first accepted recipient until it
	// is archived or the transaction ends. Logout may run on another goroutine (server
	// shutdown), hence atomic.
	ann atomic.Pointer[announced]
}

type announced struct {
	ctx      context.Context
	withdraw func()
}

// unannounce withdraws the transaction's announcement, if any.
func (s *session) unannounce() {
	if a := s.ann.Swap(nil); a != nil {
		a.withdraw()
	}
}

var (
	_ gosmtp.Session     = (*session)(nil)
	_ gosmtp.AuthSession = (*session)(nil)
)

// NewSession is go-smtp's Backend: it is called at the first EHLO/HELO and
// again after STARTTLS.
func (s *Server) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	tc := netConn(c.Conn())
	if tc == nil {
		return nil, errors.New("smtp: connection not admitted through the gate")
	}
	return &session{srv: s, c: c, conn: tc}, nil
}

func (s *session) Reset() {
	s.from, s.rcpts, s.sizeHint = "", nil, 0
	s.unannounce()
}

func (s *session) Logout() error {
	s.unannounce()
	return nil
}

func (s *session) AuthMechanisms() []string {
	if s.srv.auth == nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.srv.auth == nil {
		return nil, gosmtp.ErrAuthUnsupported
	}
	check := func(authzid, user, pass string) error {
		if authzid != "" && authzid != user {
			return s.authFailed(errAuthzid)
		}
		err := s.srv.auth.Authenticate(s.srv.baseCtx, user, pass)
		switch {
		case err == nil:
			s.user = user
			return nil
		case errors.Is(err, ErrInvalidCredentials):
			return s.authFailed(errAuthFailed)
		default:
			s.srv.log.Warn("smtp: authenticator failed", "client_ip", s.conn.ip, "err", err)
			return errAuthTemporary
		}
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(check), nil
	case sasl.Login:
		return &loginServer{check: func(u, p string) error { return check("", u, p) }}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (s *session) authFailed(r *gosmtp.SMTPError) error {
	s.srv.counters.refuse(reasonAuthFailed)
	if s.authFailures++; s.authFailures >= maxAuthFailures {
		s.conn.closeNext.Store(true) // this 535 is the last reply
	}
	return r
}

func (s *session) Mail(from string, opts *gosmtp.MailOptions) error {
	if s.srv.closing.Load() {
		s.srv.counters.refuse(reasonShutdown)
		return errShuttingDown
	}
	if s.srv.opts.AuthRequired && s.user == "" {
		s.srv.counters.refuse(reasonAuthRequired)
		return errAuthRequired
	}
	s.from = from
	s.rcpts = s.rcpts[:0]
	s.sizeHint = opts.Size
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if !s.srv.accept.accepts(to) {
		s.srv.counters.refuse(reasonRecipient)
		return errUnknownRecipient
	}
	s.rcpts = append(s.rcpts, to)
	// With a recipient accepted, a message is on its way: the group commit
	// may wait a moment for it rather than flush a batch without it
	// (archive.Options.CommitWait).
	if a, ok := s.srv.archiver.(ingest.Announcer); ok && s.ann.Load() == nil {
		ctx, withdraw := a.Announce(s.srv.baseCtx)
		s.ann.Store(&announced{ctx, withdraw})
	}
	return nil
}

// Data receives, classifies and archives one message. go-smtp writes the
// returned error as the reply; a 250 is returned as an *SMTPError too, so
// that its text can carry the ledger sequence number.
func (s *session) Data(r io.Reader) error {
	s.conn.beginData()
	defer s.conn.endData()
	defer s.unannounce()

	raw, held, err := s.srv.readMessage(r, s.sizeHint)
	defer s.srv.budget.release(held)
	// Last use of raw: the log lines below take its length only, and the
	// archive keeps nothing of it once Archive returns.
	defer s.srv.putBuffer(raw)
	if err != nil {
		rep, why := dataFailure(err, s.srv.opts.MaxMessageBytes)
		s.srv.counters.refuse(why)
		// go-smtp reads the rest of the message before replying; bound it.
		s.conn.drain.Store(s.srv.opts.MaxMessageBytes)
		s.srv.log.Info("smtp: message not received", "client_ip", s.conn.ip, "from", s.from,
			"reason", why.String(), "bytes", len(raw), "code", rep.Code)
		return rep
	}
	received := time.Now()

	msg, env := s.srv.classifier.Classify(raw, journal.SMTPEnvelope{MailFrom: s.from, RcptTo: s.rcpts})
	env.ReceivedAt = received
	env.Meta["client_ip"] = s.conn.ip.String()
	env.Meta["helo"] = s.c.Hostname()
	if st, ok := s.c.TLSConnectionState(); ok {
		env.Meta["tls"] = tls.VersionName(st.Version) + " " + tls.CipherSuiteName(st.CipherSuite)
	}
	if s.user != "" {
		env.Meta["auth"] = s.user
	}

	base := s.srv.baseCtx
	if a := s.ann.Load(); a != nil {
		base = a.ctx // Archive withdraws the announcement once queued
	}
	// The 250 needs the message durable and its ledger entry committed,
	// not yet listed in the index (ingest.AckWhenDurable), unless
	// ack_indexed says otherwise.
	if !s.srv.opts.AckIndexed {
		base = ingest.AckWhenDurable(base)
	}
	ctx, cancel := context.WithTimeout(base, s.srv.opts.ArchiveTimeout)
	rc, err := s.srv.archiver.Archive(ctx, env, msg)
	cancel()
	latency := time.Since(received)
	if err != nil {
		rep, why := archiveFailure(err)
		s.srv.counters.refuse(why)
		s.srv.log.Warn("smtp: message not archived", "client_ip", s.conn.ip, "from", s.from,
			"source", env.Source, "bytes", len(raw), "code", rep.Code, "err", err)
		return rep
	}
	s.srv.counters.accepted.Add(1)
	s.srv.counters.acceptedBytes.Add(uint64(len(raw)))
	s.srv.counters.observe(latency)
	if h := s.srv.log.Handler(); h.Enabled(context.Background(), slog.LevelInfo) {
		// One line a message: built with typed attributes and handed to the
		// handler directly, without Logger.Info's boxing of each value and
		// its runtime.Callers (the record's PC serves only AddSource, which
		// Cairn's handlers do not use). About 2.5 µs a message.
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "smtp: archived", 0)
		var sha [16]byte
		hex.Encode(sha[:], rc.SHA256[:8])
		r.AddAttrs(slog.Uint64("seq", rc.Seq), slog.Uint64("message_seq", rc.MessageSeq), slog.String("sha256", string(sha[:])),
			slog.String("source", env.Source), slog.String("from", env.Sender), slog.Int("recipients", len(env.Recipients)),
			slog.Int("bytes", len(msg)), slog.Any("client_ip", s.conn.ip), slog.Duration("latency", latency))
		if rc.Duplicate {
			r.AddAttrs(slog.Bool("duplicate", true))
		}
		if p := env.Meta[journal.MetaMalformed]; p != "" {
			r.AddAttrs(slog.String("journal_malformed", p))
		}
		if len(rc.Problems) > 0 {
			r.AddAttrs(slog.Int("problems", len(rc.Problems)))
		}
		h.Handle(context.Background(), r)
	}
	return archived(rc)
}
