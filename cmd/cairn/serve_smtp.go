package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/cairn-archive/cairn/crypto/certs"
	"github.com/cairn-archive/cairn/ingest/smtp"
)

// SMTPConfig is the journaling receiver's section.
type SMTPConfig struct {
	Enabled      bool `mapstructure:"enabled"`
	smtp.Options `mapstructure:",squash"`
}

// Validate checks the smtp section.
func (c *SMTPConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("config: smtp.tls_cert and smtp.tls_key must be set together")
	}
	return nil
}

func init() { registerService("smtp", startSMTP) }

// tlsConfig returns the configured certificate, or the embedded default's
// self-signed one (created on first use under <data_dir>/tls), so that TLS
// is always offered.
func tlsConfig(cfg *Config, certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" {
		certFile = filepath.Join(cfg.DataDir, "tls", "cert.pem")
		keyFile = filepath.Join(cfg.DataDir, "tls", "key.pem")
	}
	pair, err := certs.LoadOrCreate(certFile, keyFile, nil)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

type smtpService struct {
	srv  *smtp.Server
	ln   net.Listener
	tlsL net.Listener
}

func startSMTP(ctx context.Context, d *deps) (service, error) {
	c := d.cfg.SMTP
	if !c.Enabled {
		return nil, nil
	}
	opts := c.Options
	if opts.MaxMessageBytes == 0 {
		opts.MaxMessageBytes = int64(d.cfg.Ingest.MaxMessageSize)
	}
	tc, err := tlsConfig(d.cfg, opts.TLSCert, opts.TLSKey)
	if err != nil {
		return nil, err
	}
	opts.TLSCert, opts.TLSKey = "", ""
	srv, err := smtp.New(opts, d.archive, smtp.Runtime{TLSConfig: tc, Logger: logger})
	if err != nil {
		return nil, err
	}
	s := &smtpService{srv: srv}
	if s.ln, err = smtp.Listen(opts.Listen); err != nil {
		return nil, fmt.Errorf("listen %s: %w", opts.Listen, err)
	}
	if a := opts.TLSListen; a != "" {
		if s.tlsL, err = smtp.Listen(a); err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
	}
	logger.Info("smtp listening", "addr", s.ln.Addr().String())
	return s, nil
}

func (s *smtpService) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- s.srv.Serve(s.ln) }()
	if s.tlsL != nil {
		go func() { errc <- s.srv.ServeTLS(s.tlsL) }()
	}
	select {
	case err := <-errc:
		s.srv.Close()
		return err
	case <-ctx.Done():
	}
	// Finish the messages in flight (their senders get their 250 or 451),
	// then 421 to everyone.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	return nil
}
