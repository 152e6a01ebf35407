package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/cairn-archive/cairn/archive/export"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/httpapi"
	"github.com/cairn-archive/cairn/ingest/harvest"
	"github.com/cairn-archive/cairn/ingest/smtp"
	"github.com/cairn-archive/cairn/retention"
)

// HTTPConfig is the HTTP API's section.
type HTTPConfig struct {
	Enabled       bool   `mapstructure:"enabled"`
	Listen        string `mapstructure:"listen"`
	TLSCert       string `mapstructure:"tls_cert"`
	TLSKey        string `mapstructure:"tls_key"`
	TLSSelfSigned bool   `mapstructure:"tls_self_signed"`
	MetricsPublic bool   `mapstructure:"metrics_public"`
	ExportDir     string `mapstructure:"export_dir"`
	MaxResults    int    `mapstructure:"max_results"`
}

func (c *HTTPConfig) tls() bool { return c.TLSCert != "" || c.TLSSelfSigned }

// Validate checks the http section: among others, that API tokens never
// cross a network in clear.
func (c *HTTPConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.Listen == "" {
		return fmt.Errorf("config: http.enabled is true but http.listen is empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("config: http.listen %q: want host:port", c.Listen)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("config: http.tls_cert and http.tls_key must be set together")
	}
	if err := httpapi.CheckListen(c.Listen, c.tls()); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.MaxResults < 0 {
		return fmt.Errorf("config: http.max_results must not be negative")
	}
	return nil
}

func (c *Config) exportDir() string {
	return orDefault(c.HTTP.ExportDir, filepath.Join(c.DataDir, "exports"))
}

func init() { registerService("http", startHTTP) }

type httpService struct {
	api      *httpapi.Server
	metrics  *httpapi.Metrics
	accounts interface{ Close() error }
	srv      *http.Server
	ln       net.Listener
	tls      bool
}

// started returns the service of that name once cairn serve has started
// it (the HTTP API starts before some of the others: it looks them up at
// each request).
func (d *deps) service(name string) (service, bool) {
	v, ok := d.started.Load(name)
	if !ok {
		return nil, false
	}
	return v.(service), true
}

func startHTTP(ctx context.Context, d *deps) (service, error) {
	c := d.cfg.HTTP
	if !c.Enabled {
		return nil, nil
	}
	accounts, err := openAccounts(d.cfg)
	if err != nil {
		return nil, err
	}
	s := &httpService{accounts: accounts, tls: c.tls()}
	fail := func(err error) (service, error) {
		if s.ln != nil {
			s.ln.Close()
		}
		if s.api != nil {
			s.api.Close()
		}
		accounts.Close()
		return nil, err
	}
	s.metrics = httpapi.NewMetrics(httpapi.MetricsSources{
		Archive: d.archive,
		Audit:   d.audit,
		SMTP: func() (smtp.Stats, bool) {
			if v, ok := d.service("smtp"); ok {
				return v.(*smtpService).srv.Stats(), true
			}
			return smtp.Stats{}, false
		},
		IMAPConnections: func() (int, bool) {
			if v, ok := d.service("imap"); ok {
				return v.(*imapService).srv.Connections(), true
			}
			return 0, false
		},
		Harvest: func(ctx context.Context) ([]harvest.SourceStatus, bool, error) {
			if v, ok := d.service("harvest"); ok {
				st, err := v.(*harvestService).Status(ctx)
				return st, true, err
			}
			return nil, false, nil
		},
		Verify: func() (*httpapi.VerifyStatus, error) { return readVerifyStatus(d.cfg) },
	})
	s.api, err = httpapi.New(httpapi.Options{
		Archive:   d.archive,
		Accounts:  accounts,
		Audit:     d.audit,
		SearchKey: d.keys.ring.SearchKey(),
		Retention: func() *retention.Manager {
			if v, ok := d.service("retention"); ok {
				return v.(*retentionService).m
			}
			return nil
		},
		Export:        httpExport(d),
		ExportDir:     d.cfg.exportDir(),
		Metrics:       s.metrics,
		MetricsPublic: c.MetricsPublic,
		MaxResults:    c.MaxResults,
		ConfirmLimit:  d.cfg.IMAP.ConfirmLimit,
		Logger:        logger,
		Ready: []httpapi.Check{
			httpapi.ArchiveCheck(d.archive),
			httpapi.IndexCheck(d.archive),
			httpapi.ObjectStoreCheck(d.objects),
			{Name: "services", Check: func(context.Context) error {
				if !d.allStarted.Load() {
					return errors.New("cairn serve is still starting its services")
				}
				return nil
			}},
		},
	})
	if err != nil {
		return fail(err)
	}
	var tc *tls.Config
	if s.tls {
		// The configured certificate, or the self-signed one under
		// <data_dir>/tls that SMTP and IMAP share.
		if tc, err = tlsConfig(d.cfg, c.TLSCert, c.TLSKey); err != nil {
			return fail(err)
		}
	}
	if err := httpapi.CheckListen(c.Listen, tc != nil); err != nil {
		return fail(err)
	}
	s.srv = &http.Server{
		Handler:           s.api.Handler(),
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if s.ln, err = net.Listen("tcp", c.Listen); err != nil {
		return fail(fmt.Errorf("listen %s: %w", c.Listen, err))
	}
	logger.Info("http listening", "addr", s.ln.Addr().String(), "tls", tc != nil)
	return s, nil
}

func (s *httpService) Run(ctx context.Context) error {
	mctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.metrics.Run(mctx)
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- s.srv.ServeTLS(s.ln, "", "")
		} else {
			errc <- s.srv.Serve(s.ln)
		}
	}()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if serr := s.srv.Shutdown(sctx); serr != nil {
			s.srv.Close()
		}
		cancel()
	}
	s.api.Close()
	s.accounts.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// httpExport is the API's export: export.Run on the archive serve holds,
// with the holds of the running retention service.
func httpExport(d *deps) httpapi.ExportFunc {
	return func(ctx context.Context, actor audit.Actor, source audit.Source, req httpapi.ExportRequest, out string) (*export.Result, error) {
		var holds export.HoldSource
		if req.Case != "" {
			v, ok := d.service("retention")
			if !ok {
				return nil, errors.New("retention is not running yet; retry")
			}
			holds = v.(*retentionService).m
		}
		return export.Run(ctx, d.archive, export.Options{Case: req.Case, Holds: holds, Query: req.Query, Out: out,
			Format: req.Format, Actor: actor, Source: source, Audit: d.audit})
	}
}
