package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/harvest"
)

// HarvestConfig is the IMAP harvester's section.
type HarvestConfig struct {
	StateFile    string          `mapstructure:"state_file"`
	Workers      int             `mapstructure:"workers"`
	BatchSize    int             `mapstructure:"batch_size"`
	MemoryBudget ByteSize        `mapstructure:"memory_budget"`
	MaxAttempts  int             `mapstructure:"max_attempts"`
	MinBackoff   time.Duration   `mapstructure:"min_backoff"`
	MaxBackoff   time.Duration   `mapstructure:"max_backoff"`
	Timeout      time.Duration   `mapstructure:"timeout"`
	Sources      []HarvestSource `mapstructure:"sources"`
}

// HarvestSource is one item of harvest.sources (documented in example.yaml).
type HarvestSource struct {
	Name          string        `mapstructure:"name"`
	Enabled       *bool         `mapstructure:"enabled"`
	Host          string        `mapstructure:"host"`
	Port          int           `mapstructure:"port"`
	TLS           string        `mapstructure:"tls"`
	TLSSkipVerify bool          `mapstructure:"tls_skip_verify"`
	CAFile        string        `mapstructure:"ca_file"`
	TLSServerName string        `mapstructure:"tls_server_name"`
	User          string        `mapstructure:"user"`
	Auth          string        `mapstructure:"auth"`
	PasswordFile  string        `mapstructure:"password_file"`
	PasswordEnv   string        `mapstructure:"password_env"`
	TokenCommand  string        `mapstructure:"token_command"`
	TokenFile     string        `mapstructure:"token_file"`
	Include       []string      `mapstructure:"include"`
	Exclude       []string      `mapstructure:"exclude"`
	Custodian     string        `mapstructure:"custodian"`
	PollInterval  time.Duration `mapstructure:"poll_interval"`
	IDLE          *bool         `mapstructure:"idle"`
	IdleFolder    string        `mapstructure:"idle_folder"`
	Journal       string        `mapstructure:"journal"`
	MoveTo        string        `mapstructure:"move_to"`
}

func (s *HarvestSource) source() harvest.Source {
	return harvest.Source{
		Name:          s.Name,
		Host:          s.Host,
		Port:          s.Port,
		TLS:           harvest.TLSMode(s.TLS),
		TLSSkipVerify: s.TLSSkipVerify,
		CAFile:        s.CAFile,
		TLSServerName: s.TLSServerName,
		User:          s.User,
		Auth:          harvest.AuthMethod(s.Auth),
		PasswordFile:  s.PasswordFile,
		PasswordEnv:   s.PasswordEnv,
		TokenCommand:  s.TokenCommand,
		TokenFile:     s.TokenFile,
		Include:       s.Include,
		Exclude:       s.Exclude,
		Custodian:     s.Custodian,
		PollInterval:  s.PollInterval,
		NoIdle:        s.IDLE != nil && !*s.IDLE,
		IdleFolder:    s.IdleFolder,
		Journal:       harvest.JournalMode(s.Journal),
		MoveTo:        s.MoveTo,
		Disabled:      s.Enabled != nil && !*s.Enabled,
	}
}

// sources returns the configured sources as the harvester takes them.
func (c *HarvestConfig) sources() []harvest.Source {
	out := make([]harvest.Source, len(c.Sources))
	for i := range c.Sources {
		out[i] = c.Sources[i].source()
	}
	return out
}

// statePath is the harvester's state database.
func (c *HarvestConfig) statePath(cfg *Config) string {
	return orDefault(c.StateFile, filepath.Join(cfg.DataDir, "harvest.db"))
}

// Validate checks the harvest section: every source (names unique, a way
// to log in, patterns that parse) and the limits.
func (c *HarvestConfig) Validate() error {
	switch {
	case c.Workers < 0 || c.Workers > 1024:
		return fmt.Errorf("config: harvest.workers %d: want 0 (the default) to 1024", c.Workers)
	case c.BatchSize < 0 || c.BatchSize > 100000:
		return fmt.Errorf("config: harvest.batch_size %d: want 0 (the default) to 100000", c.BatchSize)
	case c.MemoryBudget < 0:
		return fmt.Errorf("config: harvest.memory_budget is negative")
	case c.MaxAttempts < 0:
		return fmt.Errorf("config: harvest.max_attempts is negative")
	case c.MinBackoff < 0 || c.MaxBackoff < 0 || c.Timeout < 0:
		return fmt.Errorf("config: harvest.min_backoff, max_backoff and timeout must not be negative")
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		s := c.Sources[i].source()
		if err := s.Validate(); err != nil {
			return fmt.Errorf("config: harvest.sources[%d]: %w", i, err)
		}
		if seen[s.Name] {
			return fmt.Errorf("config: harvest.sources[%d]: a second source is named %q", i, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// options builds the harvester's options.
func (c *HarvestConfig) options(cfg *Config, a ingest.Archiver) harvest.Options {
	return harvest.Options{
		Archiver:       a,
		StatePath:      c.statePath(cfg),
		Sources:        c.sources(),
		Workers:        c.Workers,
		BatchSize:      c.BatchSize,
		MaxMessageSize: int64(cfg.Ingest.MaxMessageSize),
		MemoryBudget:   int64(c.MemoryBudget),
		MinBackoff:     c.MinBackoff,
		MaxBackoff:     c.MaxBackoff,
		MaxAttempts:    c.MaxAttempts,
		Timeout:        c.Timeout,
		Logger:         logger,
	}
}

func init() { registerService("harvest", startHarvest) }

// harvestService runs every enabled source until serve stops.
type harvestService struct {
	h *harvest.Harvester
}

func startHarvest(ctx context.Context, d *deps) (service, error) {
	c := d.cfg.Harvest
	enabled := 0
	for _, s := range c.sources() {
		if !s.Disabled {
			enabled++
		}
	}
	if enabled == 0 {
		return nil, nil
	}
	h, err := harvest.New(ctx, c.options(d.cfg, d.archive))
	if err != nil {
		return nil, err
	}
	logger.Info("harvest: started", "sources", enabled, "state", c.statePath(d.cfg))
	return &harvestService{h: h}, nil
}

// Run harvests until ctx ends.
func (s *harvestService) Run(ctx context.Context) error {
	err := s.h.Run(ctx)
	if cerr := s.h.Close(); err == nil {
		err = cerr
	}
	return err
}

// Status is the harvester's per-source and per-folder status (for metrics
// and the HTTP API).
func (s *harvestService) Status(ctx context.Context) ([]harvest.SourceStatus, error) {
	return s.h.Status(ctx)
}
