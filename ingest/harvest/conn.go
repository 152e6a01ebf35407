package harvest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
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
	caps imap.CapSet
	stop func() bool // stops closing the client when ctx ends
	// exists is signalled (without blocking) when the server reports a
	// new message count in the selected folder (EXISTS; RFC 9051 §7.4.1),
	// which is how IDLE announces new mail.
	exists chan struct{}
}

// dial connects and logs in. The connection is closed when ctx ends, which
// is how every blocking IMAP call honours cancellation.
func dial(ctx context.Context, s *Source, timeout time.Duration) (*session, error) {
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	sess := &session{exists: make(chan struct{}, 1)}
	opts := &imapclient.Options{
		TLSConfig: tlsCfg,
		Dialer:    &net.Dialer{Timeout: timeout},
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
	var c *imapclient.Client
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		switch s.tls() {
		case TLSImplicit:
			c, err = imapclient.DialTLS(s.addr(), opts)
		case TLSStartTLS:
			// RFC 9051 §6.2.1. imapclient refuses a PREAUTH greeting on
			// the plain connection (§7.1.4) and fails when the server
			// refuses STARTTLS, so there is no silent fallback to plain.
			c, err = imapclient.DialStartTLS(s.addr(), opts)
		default:
			c, err = imapclient.DialInsecure(s.addr(), opts)
		}
		if err == nil {
			err = c.WaitGreeting()
		}
	}()
	select {
	case <-done:
	case <-dctx.Done():
		<-done // the dialer's own timeout ends it
		if c != nil {
			c.Close()
		}
		if err == nil {
			err = dctx.Err()
		}
	}
	if err != nil {
		if c != nil {
			c.Close()
		}
		return nil, fmt.Errorf("connect %s: %w", s.addr(), err)
	}
	sess.c = c
	sess.stop = context.AfterFunc(ctx, func() { c.Close() })
	// Bound the login too: a server that accepts and then stalls.
	timer := time.AfterFunc(timeout, func() { c.Close() })
	err = sess.login(ctx, s)
	if !timer.Stop() && err != nil {
		err = fmt.Errorf("login timed out after %v: %w", timeout, err)
	}
	if err != nil {
		sess.close()
		return nil, err
	}
	sess.caps = c.Caps()
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
