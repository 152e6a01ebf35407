package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/internal/cpusched"
)

// deps is what the services of `cairn serve` share.
type deps struct {
	cfg     *Config
	objects objstore.Store
	archive *archive.Store
	keys    *keys
	audit   *audit.Log // every service records its accesses here (fail closed)

	// started holds each service by name once it has started, and
	// allStarted is set when every one has: the HTTP API reads the
	// others' status (metrics, retention) and its readiness from them.
	started    sync.Map
	allStarted atomic.Bool
}

// service is one long-running part of `cairn serve` (SMTP receiver, IMAP
// view, HTTP API, harvester, retention schedule, audit sinks).
type service interface {
	// Run serves until ctx ends, then shuts down gracefully and returns.
	Run(ctx context.Context) error
}

// serviceStarter builds a service from the configuration; it returns nil
// when the service is disabled. Each service registers one in its own
// serve_<name>.go file, in the order they should start.
type serviceStarter struct {
	name  string
	start func(ctx context.Context, d *deps) (service, error)
}

var serviceStarters []serviceStarter

func registerService(name string, start func(ctx context.Context, d *deps) (service, error)) {
	serviceStarters = append(serviceStarters, serviceStarter{name, start})
}

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run every configured service",
		Long: `serve runs the archive and every configured service. With no configuration
at all it runs the embedded default: data in ./cairn-data, keys generated on
first start, listeners on 127.0.0.1 only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			logs := newLineBatcher(os.Stderr, logBatchDelay)
			setLogger(cfg, logs)
			defer logs.Flush()
			ctx := cmd.Context()
			// First, while the process has few threads: every thread made
			// later inherits the policy.
			if cfg.Scheduler == "batch" {
				if err := cpusched.Batch(); err != nil && !errors.Is(err, cpusched.ErrUnsupported) {
					logger.Warn("threads left under the policy serve started with", "scheduler", cfg.Scheduler, "err", err)
				}
			}
			// Serving bodies allocates a lot of short-lived memory (age reads
			// in 64 KiB chunks): measured, GOGC=400 cut the IMAP view's
			// body-read time by 40% against a live heap of tens of MB. An
			// explicit GOGC wins.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(400)
			}
			if !fileExists(cfg.archiveKeyPath()) {
				res, err := initArchive(ctx, cfg, "")
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "first start: initialised %s (ledger %s); back up %s\n", cfg.DataDir, res.origin, cfg.archiveKeyPath())
			}
			objs, k, err := openParts(ctx, cfg)
			if err != nil {
				return err
			}
			alog, err := openAudit(cfg, objs, k, auditServe)
			if err != nil {
				return fmt.Errorf("audit log: %w", err)
			}
			// Every ledger checkpoint also goes into the audit log, so each
			// SIEM holds a copy of the archive's chain heads.
			onCkpt := func(c ledger.Checkpoint, signed []byte) {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if _, err := audit.PublishCheckpoint(ctx, alog, signed); err != nil {
					logger.Error("checkpoint not recorded in the audit log", "size", c.Size, "err", err)
				}
			}
			st, err := openArchiveWith(ctx, cfg, objs, k, readWrite, onCkpt)
			if err != nil {
				alog.Close()
				return err
			}
			d := &deps{cfg: cfg, objects: objs, archive: st, keys: k, audit: alog}
			policy, _ := cpusched.Policy(0)
			logger.Info("archive open", "data_dir", cfg.DataDir, "ledger", st.LogID(), "scheduler", policy)
			err = runServices(ctx, d)
			logger.Info("shutting down")
			if cerr := st.Close(); cerr != nil && err == nil {
				err = cerr
			}
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if _, serr := alog.Seal(sctx); serr != nil {
				logger.Warn("audit log not sealed at shutdown; the next start seals it", "err", serr)
			}
			cancel()
			if cerr := alog.Close(); cerr != nil && err == nil {
				err = cerr
			}
			// Last: the archive and the audit log both wrote to it.
			if c, ok := objs.(interface{ Close() error }); ok {
				if cerr := c.Close(); cerr != nil && err == nil {
					err = cerr
				}
			}
			return err
		},
	}
}

// runServices starts every enabled service and runs them until ctx ends or
// one fails; then every service is stopped.
func runServices(ctx context.Context, d *deps) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range serviceStarters {
		svc, err := s.start(ctx, d)
		if err != nil {
			cancel(err)
			wg.Wait()
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if svc == nil {
			continue
		}
		d.started.Store(s.name, svc)
		wg.Add(1)
		go func(name string, svc service) {
			defer wg.Done()
			if err := svc.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				logger.Error("service failed", "service", name, "err", err)
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}(s.name, svc)
	}
	d.allStarted.Store(true)
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
