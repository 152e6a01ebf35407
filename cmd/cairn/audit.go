package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/audit"
)

// AuditConfig configures the audit log and its sinks.
type AuditConfig struct {
	DB              string            `mapstructure:"db"`
	JSONLFile       string            `mapstructure:"jsonl_file"`
	KeepQueries     bool              `mapstructure:"keep_queries"`
	SegmentEvents   int               `mapstructure:"segment_events"`
	SegmentInterval time.Duration     `mapstructure:"segment_interval"`
	Delivery        audit.Delivery    `mapstructure:"delivery"`
	Sinks           audit.SinksConfig `mapstructure:"sinks"`
}

// Validate checks the audit section.
func (c *AuditConfig) Validate() error {
	if c.SegmentEvents < 0 {
		return fmt.Errorf("config: audit.segment_events must not be negative")
	}
	if err := c.Sinks.Validate(); err != nil {
		return fmt.Errorf("config: audit.sinks: %w", err)
	}
	return nil
}

func (c *Config) auditDB() string { return orDefault(c.Audit.DB, filepath.Join(c.DataDir, "audit.db")) }

func auditOrigin(k *keys) string { return k.signing.Origin() + "/audit" }

type auditMode int

const (
	auditServe    auditMode = iota // sealing into the store and every sink
	auditRecord                    // a CLI command recording its own events only
	auditReadOnly                  // tail, export
)

// openAudit opens the audit log. Several processes may record at once (the
// chain head is read inside each write transaction); only serve seals and
// delivers to sinks.
func openAudit(cfg *Config, objs objstore.Store, k *keys, mode auditMode) (*audit.Log, error) {
	opts := audit.Options{
		Path:            cfg.auditDB(),
		Origin:          auditOrigin(k),
		QueryKey:        k.ring.AuditKey(),
		KeepQueries:     cfg.Audit.KeepQueries,
		SegmentEvents:   cfg.Audit.SegmentEvents,
		SegmentInterval: cfg.Audit.SegmentInterval,
		Delivery:        cfg.Audit.Delivery,
		Logger:          logger,
		ReadOnly:        mode == auditReadOnly,
	}
	if mode == auditRecord && objs != nil {
		// Not sealing, but catching up: a database restored from a backup
		// must not record events under seqs the store has sealed.
		opts.Store, opts.Signer, opts.NoSealing = objs, k.signing.Signer, true
	}
	if mode == auditServe {
		opts.Store, opts.Signer = objs, k.signing.Signer
		sc := cfg.Audit.Sinks
		if f := cfg.Audit.JSONLFile; f != "off" {
			sc.Files = append([]audit.FileConfig{{Name: "jsonl", Path: orDefault(f, filepath.Join(cfg.DataDir, "audit.jsonl")), Format: audit.FormatJSONL}}, sc.Files...)
		}
		sinks, err := sc.Build()
		if err != nil {
			return nil, err
		}
		opts.Sinks = sinks
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return audit.Open(opts)
}

// cliActor is the operator running a command: the OS user, with the admin
// role (whoever can read the key files is the archive's administrator).
func cliActor() (audit.Actor, audit.Source) {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.Actor{User: name, Role: "admin", AuthMech: "cli", Session: fmt.Sprintf("cli-%d", os.Getpid())},
		audit.Source{Service: "cli"}
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The audit log: tail, export, verify"}
	var follow bool
	var n int
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the latest audit events (-f to follow)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAuditRO(cmd, func(ctx context.Context, l *audit.Log) error {
				from := l.Head() - audit.Seq(min(n, int(l.Head()))) + 1
				r, err := audit.NewRenderer(audit.FormatJSONL, audit.RenderOptions{})
				if err != nil {
					return err
				}
				_, err = l.Export(ctx, os.Stdout, audit.Query{From: from, Follow: follow}, r)
				if follow && ctx.Err() != nil {
					return nil
				}
				return err
			})
		},
	}
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	tail.Flags().IntVarP(&n, "lines", "n", 20, "how many of the latest events to print first")

	var since, until, format string
	export := &cobra.Command{
		Use:   "export",
		Short: "Write audit events in a time range as jsonl, cef, leef or syslog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			q := audit.Query{}
			var err error
			if since != "" {
				if q.Since, err = parseTimeFlag(since); err != nil {
					return fmt.Errorf("--since: %w", err)
				}
			}
			if until != "" {
				if q.Until, err = parseTimeFlag(until); err != nil {
					return fmt.Errorf("--until: %w", err)
				}
			}
			r, err := audit.NewRenderer(audit.Format(format), audit.RenderOptions{})
			if err != nil {
				return err
			}
			return withAuditRO(cmd, func(ctx context.Context, l *audit.Log) error {
				count, err := l.Export(ctx, os.Stdout, q, r)
				fmt.Fprintf(os.Stderr, "%d events\n", count)
				return err
			})
		},
	}
	export.Flags().StringVar(&since, "since", "", "first time included (RFC 3339 or YYYY-MM-DD)")
	export.Flags().StringVar(&until, "until", "", "first time excluded (RFC 3339 or YYYY-MM-DD)")
	export.Flags().StringVar(&format, "format", "jsonl", "jsonl, cef, leef or syslog")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit chain, its segments and checkpoints",
		Long: `verify checks every audit event's hash and link in the database, the sealed
segments and the signed checkpoints in the object store, and names each
edited, removed, reordered or inserted event. Exit status 1 on damage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			objs, k, err := openParts(ctx, cfg)
			if err != nil {
				return err
			}
			defer closeObjects(objs)
			if !fileExists(cfg.auditDB()) {
				return fmt.Errorf("%s does not exist: nothing has been audited yet", cfg.auditDB())
			}
			rep, err := audit.Verify(ctx, audit.VerifyOptions{Path: cfg.auditDB(), Origin: auditOrigin(k), Store: objs, Verifiers: []noteVerifier{k.signing.Verifier}})
			if err != nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Printf("PROBLEM %s\n", p)
			}
			fmt.Printf("%d events, %d sealed in %d segments, %d checkpoints (latest covers %d)\n",
				rep.Entries, rep.Sealed, rep.Segments, rep.Checkpoints, rep.Checkpoint)
			if !rep.OK() {
				return &exitError{1, fmt.Errorf("audit verification FAILED: %d problems", len(rep.Problems))}
			}
			fmt.Println("audit verification passed")
			return nil
		},
	}
	cmd.AddCommand(tail, export, verify)
	return cmd
}

func withAuditRO(cmd *cobra.Command, fn func(context.Context, *audit.Log) error) error {
	cfg, err := setup(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if !fileExists(cfg.auditDB()) {
		return fmt.Errorf("%s does not exist: nothing has been audited yet", cfg.auditDB())
	}
	objs, k, err := openParts(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeObjects(objs)
	l, err := openAudit(cfg, objs, k, auditReadOnly)
	if err != nil {
		return err
	}
	defer l.Close()
	return fn(ctx, l)
}

func parseTimeFlag(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-26T10:00:00Z) or YYYY-MM-DD", s)
}
