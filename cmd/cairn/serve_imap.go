package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/imapview"
	"github.com/cairn-archive/cairn/retention"
)

// IMAPConfig is the read-only IMAP view's section.
type IMAPConfig struct {
	Enabled             bool          `mapstructure:"enabled"`
	Listen              string        `mapstructure:"listen"`
	TLSListen           string        `mapstructure:"tls_listen"`
	TLSCert             string        `mapstructure:"tls_cert"`
	TLSKey              string        `mapstructure:"tls_key"`
	MaxConnections      int           `mapstructure:"max_connections"`
	MaxConnectionsPerIP int           `mapstructure:"max_connections_per_ip"`
	PollInterval        time.Duration `mapstructure:"poll_interval"`
	ConfirmLimit        int           `mapstructure:"confirm_limit"`
	BootstrapAuditor    bool          `mapstructure:"bootstrap_auditor"`
}

// Validate checks the imap section.
func (c *IMAPConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.Listen == "" && c.TLSListen == "" {
		return fmt.Errorf("config: imap.enabled is true but neither imap.listen nor imap.tls_listen is set")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("config: imap.tls_cert and imap.tls_key must be set together")
	}
	if c.MaxConnections < 0 || c.MaxConnectionsPerIP < 0 || c.ConfirmLimit < 0 {
		return fmt.Errorf("config: imap limits must not be negative")
	}
	if c.PollInterval < 0 || c.PollInterval > time.Minute {
		return fmt.Errorf("config: imap.poll_interval %v: want 0 (1s) up to 1m", c.PollInterval)
	}
	return nil
}

// AccountsConfig is the accounts database (auth): the IMAP view's logins
// now, the HTTP API's later.
type AccountsConfig struct {
	DB    string             `mapstructure:"db"`
	Login AccountLoginConfig `mapstructure:"login"`
}

// AccountLoginConfig tunes the login throttle (auth.LimitOptions).
type AccountLoginConfig struct {
	FreeFailures int           `mapstructure:"free_failures"`
	BaseDelay    time.Duration `mapstructure:"base_delay"`
	MaxDelay     time.Duration `mapstructure:"max_delay"`
	MaxWait      time.Duration `mapstructure:"max_wait"`
	HalfLife     time.Duration `mapstructure:"half_life"`
}

// Validate checks the accounts section.
func (c *AccountsConfig) Validate() error {
	l := c.Login
	if l.FreeFailures < 0 || l.BaseDelay < 0 || l.MaxDelay < 0 || l.MaxWait < 0 || l.HalfLife < 0 {
		return fmt.Errorf("config: accounts.login values must not be negative")
	}
	return nil
}

func (c *Config) accountsDB() string {
	return orDefault(c.Accounts.DB, filepath.Join(c.DataDir, "access.db"))
}

// openAccounts opens the accounts database.
func openAccounts(cfg *Config) (*auth.DB, error) {
	l := cfg.Accounts.Login
	return auth.Open(cfg.accountsDB(), auth.Options{Limits: auth.LimitOptions{
		FreeFailures: l.FreeFailures, BaseDelay: l.BaseDelay, MaxDelay: l.MaxDelay, MaxWait: l.MaxWait, HalfLife: l.HalfLife,
	}})
}

func init() { registerService("imap", startIMAP) }

type imapService struct {
	srv      *imapview.Server
	accounts *auth.DB
	ln, tlsL net.Listener
}

func startIMAP(ctx context.Context, d *deps) (service, error) {
	c := d.cfg.IMAP
	if !c.Enabled {
		return nil, nil
	}
	accounts, err := openAccounts(d.cfg)
	if err != nil {
		return nil, err
	}
	if c.BootstrapAuditor {
		if err := bootstrapAuditor(ctx, accounts, d.audit); err != nil {
			accounts.Close()
			return nil, err
		}
	}
	tc, err := tlsConfig(d.cfg, c.TLSCert, c.TLSKey)
	if err != nil {
		accounts.Close()
		return nil, err
	}
	srv, err := imapview.New(imapview.Options{
		Store:               d.archive,
		Accounts:            accounts,
		Audit:               d.audit,
		TLS:                 tc,
		Logger:              logger,
		PollInterval:        c.PollInterval,
		MaxConnections:      c.MaxConnections,
		MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		ConfirmLimit:        c.ConfirmLimit,
		Cases:               liveCases{d},
	})
	if err != nil {
		accounts.Close()
		return nil, err
	}
	s := &imapService{srv: srv, accounts: accounts}
	fail := func(err error) (service, error) {
		for _, l := range []net.Listener{s.ln, s.tlsL} {
			if l != nil {
				l.Close()
			}
		}
		srv.Close()
		accounts.Close()
		return nil, err
	}
	if c.Listen != "" {
		if s.ln, err = net.Listen("tcp", c.Listen); err != nil {
			return fail(fmt.Errorf("listen %s: %w", c.Listen, err))
		}
		logger.Info("imap listening", "addr", s.ln.Addr().String(), "starttls", true)
	}
	if c.TLSListen != "" {
		if s.tlsL, err = net.Listen("tcp", c.TLSListen); err != nil {
			return fail(fmt.Errorf("listen %s: %w", c.TLSListen, err))
		}
		logger.Info("imaps listening", "addr", s.tlsL.Addr().String())
	}
	return s, nil
}

func (s *imapService) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	if s.ln != nil {
		go func() { errc <- s.srv.Serve(s.ln) }()
	}
	if s.tlsL != nil {
		go func() { errc <- s.srv.ServeTLS(s.tlsL) }()
	}
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	s.srv.Close()
	s.accounts.Close()
	return err
}

// bootstrapAuditor gives the embedded default its first account: when no
// account exists, "auditor" (scope all) with a generated password, printed
// once on stderr. The creation is audited.
func bootstrapAuditor(ctx context.Context, accounts *auth.DB, rec audit.Recorder) error {
	n, err := accounts.Count(ctx)
	if err != nil || n > 0 {
		return err
	}
	pw := auth.GeneratePassword()
	ev := audit.Event{Action: audit.ActionUserChange, Outcome: audit.OutcomeSuccess,
		Actor:   audit.Actor{User: "cairn", Role: "system", AuthMech: "bootstrap"},
		Source:  audit.Source{Service: "imap"},
		Target:  audit.Target{User: "auditor"},
		Details: audit.Details{Note: "add role=auditor scope=all (first start, no account existed)"}}
	if _, err := rec.Record(ctx, ev); err != nil {
		return fmt.Errorf("audit log: %w (the first account is not created unaudited)", err)
	}
	if _, err := accounts.Add(ctx, "auditor", auth.RoleAuditor, auth.ScopeAll, pw); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "first start: created the IMAP account \"auditor\" (sees everything, changes nothing)\n"+
		"  password: %s\n  shown once; change it with `cairn user passwd auditor`\n", pw)
	return nil
}

// liveCases is the IMAP view's CaseSource: the holds of the running
// retention service (the Cases/ folders, accounts scoped to cases). Until
// that service runs there is no case: a case-scoped account sees nothing.
type liveCases struct{ d *deps }

func (c liveCases) manager() *retention.Manager {
	if v, ok := c.d.service("retention"); ok {
		return v.(*retentionService).m
	}
	return nil
}

func (c liveCases) Cases(ctx context.Context) ([]string, error) {
	if m := c.manager(); m != nil {
		return m.Cases(ctx)
	}
	return nil, nil
}

func (c liveCases) Members(ctx context.Context, id string) (string, []any, error) {
	if m := c.manager(); m != nil {
		return m.Members(ctx, id)
	}
	return `SELECT 0 AS k, 0 AS msg WHERE 0`, nil, nil
}

func (c liveCases) Epoch(ctx context.Context, id string) (uint32, error) {
	if m := c.manager(); m != nil {
		return m.Epoch(ctx, id)
	}
	return 0, nil // no case yet: the service's start makes it grow
}
