package harvest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// tlsConfig builds the TLS configuration of a source: verification on
// unless TLSSkipVerify, against CAFile when set, else the system roots.
func (s *Source) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         s.Host,
		InsecureSkipVerify: s.TLSSkipVerify,
		MinVersion:         tls.VersionTLS12,
	}
	if s.TLSServerName != "" {
		cfg.ServerName = s.TLSServerName
	}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("harvest: source %s: ca_file: %w", s.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("harvest: source %s: ca_file %s holds no PEM certificate", s.Name, s.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// session is one logged-in connection to a source.
type session struct {
	c    *imapclient.Client
	conn *watchedConn
	caps imap.CapSet
	stop func() bool // stops closing the client when ctx ends
	// exists is signalled (without blocking) when the server reports a
	// new message count in the selected folder (EXISTS; RFC 9051 §7.4.1),
	// which is how IDLE announces new mail.
	exists chan struct{}
	// quiet is set while the session waits (IDLE, poll interval): the
	// server owes nothing then, so the watchdog leaves it alone.
	quiet       atomic.Bool
	stopWatch   chan struct{}
	watchClosed atomic.Bool
}

// watchedConn records when bytes last arrived, for the session's watchdog.
type watchedConn struct {
	net.Conn
	last atomic.Int64 // unix nanoseconds
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *watchedConn) touch() { c.last.Store(time.Now().UnixNano()) }

// watch closes the connection when the server stays silent for timeout
// while the session waits for it (a command pending, a FETCH streaming):
// a half-open TCP connection or a hung server then fails the session, which
// is retried, instead of blocking it for ever. imapclient's own deadlines
// apply only once a response has begun.
func (sess *session) watch(timeout time.Duration) {
	sess.stopWatch = make(chan struct{})
	go func() {
		t := time.NewTicker(max(timeout/4, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-sess.stopWatch:
				return
			case <-t.C:
				if sess.quiet.Load() {
					continue
				}
				if time.Since(time.Unix(0, sess.conn.last.Load())) > timeout {
					sess.watchClosed.Store(true)
					sess.conn.Close()
					return
				}
			}
		}
	}()
}

// setQuiet marks the session as waiting (true) or expecting the server
// (false); leaving quiet restarts the silence clock.
func (sess *session) setQuiet(q bool) {
	if !q {
		sess.conn.touch()
	}
	sess.quiet.Store(q)
}

// dial connects and logs in. The connection is closed when ctx ends, which
// is how every blocking IMAP call honours cancellation, and when the server
// stays silent for timeout while a command is pending.
func dial(ctx context.Context, s *Source, timeout time.Duration) (*session, error) {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	sess := &session{exists: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		TLSConfig: tlsCfg,
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					select {
					case sess.exists <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(dctx, "tcp", s.addr())
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", s.addr(), err)
	}
	wc := &watchedConn{Conn: raw}
	wc.touch()
	sess.conn = wc
	sess.watch(timeout)
	// Everything up to the end of the login must finish within timeout.
	stopDial := context.AfterFunc(dctx, func() { wc.Close() })
	var c *imapclient.Client
	switch s.tls() {
	case TLSImplicit:
		// RFC 8314 §3.3: TLS from the first byte.
		cfg := tlsCfg.Clone()
		if cfg.NextProtos == nil {
			cfg.NextProtos = []string{"imap"}
		}
		tc := tls.Client(wc, cfg)
		if err = tc.HandshakeContext(dctx); err == nil {
			c = imapclient.New(tc, opts)
		}
	case TLSStartTLS:
		// RFC 9051 §6.2.1. imapclient refuses a PREAUTH greeting on the
		// plain connection (§7.1.4) and fails when the server refuses
		// STARTTLS, so there is no silent fallback to plain text.
		c, err = imapclient.NewStartTLS(wc, opts)
	default:
		c = imapclient.New(wc, opts)
	}
	if err == nil {
		err = c.WaitGreeting()
	}
	if err != nil {
		stopDial()
		close(sess.stopWatch)
		if c != nil {
			c.Close()
		}
		wc.Close()
		if dctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (no answer within %v)", err, timeout)
		}
		return nil, fmt.Errorf("connect %s: %w", s.addr(), err)
	}
	sess.c = c
	err = sess.login(ctx, s)
	if !stopDial() && ctx.Err() == nil {
		// The timer closed the connection: whatever login returned, the
		// session is gone.
		err = fmt.Errorf("login: no answer within %v (%v)", timeout, err)
	}
	if err != nil {
		close(sess.stopWatch)
		c.Close()
		return nil, err
	}
	sess.stop = context.AfterFunc(ctx, func() { c.Close() })
	sess.caps = c.Caps()
	if sess.caps == nil {
		sess.close()
		return nil, fmt.Errorf("connect %s: no answer to CAPABILITY", s.addr())
	}
	return sess, nil
}

// login authenticates with the source's method.
func (sess *session) login(ctx context.Context, s *Source) error {
	c := sess.c
	caps := c.Caps()
	switch s.auth() {
	case AuthPassword:
		// RFC 9051 §6.2.3: LOGINDISABLED forbids LOGIN (typically before
		// TLS); a server saying so gets no password.
		if caps.Has(imap.CapLoginDisabled) {
			return fmt.Errorf("%w: the server disables LOGIN on this connection (LOGINDISABLED); use tls: implicit or starttls", ErrAuth)
		}
		pw, err := s.password()
		if err != nil {
			return err
		}
		if err := c.Login(s.User, pw).Wait(); err != nil {
			return loginError(err)
		}
	case AuthXOAUTH2, AuthOAuthBearer:
		tok, err := s.token(ctx)
		if err != nil {
			return err
		}
		mech := "XOAUTH2"
		if s.auth() == AuthOAuthBearer {
			mech = "OAUTHBEARER"
		}
		if !caps.Has(imap.Cap("AUTH=" + mech)) {
			return fmt.Errorf("%w: the server does not offer AUTH=%s", ErrAuth, mech)
		}
		cl := &oauthClient{mech: mech, user: s.User, token: tok, host: s.Host, port: s.port()}
		if err := c.Authenticate(cl); err != nil {
			err = loginError(err)
			if cl.serverFail != "" {
				err = fmt.Errorf("%w (server: %s)", err, cl.serverFail)
			}
			return err
		}
	}
	return nil
}

// loginError marks a refused login as ErrAuth; other errors (connection
// lost during login) stay temporary.
func loginError(err error) error {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return fmt.Errorf("%w: %v", ErrAuth, err)
	}
	return fmt.Errorf("login: %w", err)
}

// close logs out politely and closes the connection.
func (sess *session) close() {
	if sess.stop != nil {
		sess.stop()
	}
	if sess.stopWatch != nil {
		close(sess.stopWatch)
	}
	done := make(chan struct{})
	go func() {
		sess.c.Logout().Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	sess.c.Close()
}

// isServerError reports whether err is a tagged NO or BAD from the server
// (the connection is still usable) rather than a broken connection.
func isServerError(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie)
}
