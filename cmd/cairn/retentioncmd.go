package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/retention"
)

// RetentionConfig configures retention: the policy, the disposal schedule
// of cairn serve, and the S3 Object Lock mode.
type RetentionConfig struct {
	Schedule time.Duration `mapstructure:"schedule"`
	LockMode string        `mapstructure:"lock_mode"`
	Default  RuleConfig    `mapstructure:"default"`
	Rules    []RuleConfig  `mapstructure:"rules"`
}

// RuleConfig is one retention rule.
type RuleConfig struct {
	Name     string      `mapstructure:"name"`
	Keep     string      `mapstructure:"keep"`
	From     string      `mapstructure:"from"`
	Basis    string      `mapstructure:"basis"`
	Erasable bool        `mapstructure:"erasable"`
	Match    MatchConfig `mapstructure:"match"`
}

// MatchConfig selects the messages of a rule.
type MatchConfig struct {
	Custodians []string `mapstructure:"custodians"`
	Addresses  []string `mapstructure:"addresses"`
	Domains    []string `mapstructure:"domains"`
	Sources    []string `mapstructure:"sources"`
	Folders    []string `mapstructure:"folders"`
	Headers    []string `mapstructure:"headers"`
}

// Validate checks the retention section.
func (c *RetentionConfig) Validate() error {
	if c.Schedule < 0 || (c.Schedule > 0 && c.Schedule < time.Minute) {
		return fmt.Errorf("config: retention.schedule %v: 0 (off) or at least 1m", c.Schedule)
	}
	if _, err := c.lockMode(); err != nil {
		return err
	}
	if _, err := c.policy(); err != nil {
		return err
	}
	return nil
}

func (c *RetentionConfig) lockMode() (objstore.LockMode, error) {
	switch strings.ToLower(c.LockMode) {
	case "governance":
		return objstore.Governance, nil
	case "compliance":
		return objstore.Compliance, nil
	case "off", "":
		return "", nil
	}
	return "", fmt.Errorf("config: retention.lock_mode %q: want governance, compliance or off", c.LockMode)
}

// policy converts the rules. Addresses and domains are lower-cased.
func (c *RetentionConfig) policy() (retention.Policy, error) {
	var p retention.Policy
	conv := func(rc RuleConfig, where string) (retention.Rule, error) {
		keep, err := retention.ParsePeriod(rc.Keep)
		if err != nil {
			return retention.Rule{}, fmt.Errorf("config: %s.keep: %w", where, err)
		}
		r := retention.Rule{Name: rc.Name, Keep: keep, From: retention.Base(rc.From), Basis: rc.Basis, Erasable: rc.Erasable,
			Match: retention.Match{
				Custodians: lowerList(rc.Match.Custodians),
				Addresses:  lowerList(rc.Match.Addresses),
				Domains:    lowerList(rc.Match.Domains),
				Sources:    rc.Match.Sources,
				Folders:    rc.Match.Folders,
			}}
		for _, h := range rc.Match.Headers {
			hm, err := retention.ParseHeaderMatch(h)
			if err != nil {
				return r, fmt.Errorf("config: %s.match.headers: %w", where, err)
			}
			r.Match.Headers = append(r.Match.Headers, hm)
		}
		return r, nil
	}
	var err error
	if p.Default, err = conv(c.Default, "retention.default"); err != nil {
		return p, err
	}
	for i, rc := range c.Rules {
		r, err := conv(rc, fmt.Sprintf("retention.rules[%d] (%s)", i, rc.Name))
		if err != nil {
			return p, err
		}
		p.Rules = append(p.Rules, r)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("config: %w", err)
	}
	return p, nil
}

func lowerList(xs []string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, strings.ToLower(strings.TrimSpace(x)))
	}
	return out
}

func (c *Config) retentionDB() string { return filepath.Join(c.DataDir, "retention.db") }
func (c *Config) indexDB() string     { return filepath.Join(c.DataDir, "index.db") }

// retentionMode says what a command needs of the archive.
type retentionMode int

const (
	retentionRead   retentionMode = iota // reads only: the archive opened read-only
	retentionChange                      // hold changes: the archive if free, else its ledger events wait
	retentionWrite                       // disposal, erasure: the archive, or an error
)

// retentionEnv is what a retention command works with.
type retentionEnv struct {
	cfg     *Config
	archive *archive.Store
	m       *retention.Manager
	alog    *audit.Log
	caller  retention.Caller
	busy    bool           // cairn serve holds the archive
	objs    objstore.Store // opened for this command: closed last
}

func (e *retentionEnv) close() {
	if e.m != nil {
		e.m.Close()
	}
	if e.alog != nil {
		e.alog.Close()
	}
	if e.archive != nil {
		if e.busy {
			e.archive.CloseWithoutCheckpoint()
		} else if err := e.archive.Close(); err != nil {
			logger.Warn("archive not closed cleanly", "err", err)
		}
	}
	if e.objs != nil {
		closeObjects(e.objs)
	}
}

// errServeHoldsArchive: a disposal or erasure needs the archive's writer,
// which a running cairn serve holds. Each command adds how to do it then.
var errServeHoldsArchive = errors.New("cairn serve holds the archive")

// openRetention opens the archive, the audit log and the retention manager
// for a command.
func openRetention(cmd *cobra.Command, mode retentionMode) (*retentionEnv, error) {
	cfg, err := setup(cmd)
	if err != nil {
		return nil, err
	}
	ctx := cmd.Context()
	pol, err := cfg.Retention.policy()
	if err != nil {
		return nil, err
	}
	lm, _ := cfg.Retention.lockMode()
	objs, k, err := openParts(ctx, cfg)
	if err != nil {
		return nil, err
	}
	env := &retentionEnv{cfg: cfg, objs: objs}
	env.caller.Actor, env.caller.Source = cliActor()
	if mode == retentionRead {
		env.archive, err = openArchiveWith(ctx, cfg, objs, k, readOnly, nil)
		env.busy = true
	} else {
		env.archive, err = openArchiveWith(ctx, cfg, objs, k, readWrite, nil)
		if errors.Is(err, archive.ErrLocked) {
			if mode == retentionWrite {
				env.close()
				return nil, errServeHoldsArchive
			}
			env.busy = true
			env.archive, err = openArchiveWith(ctx, cfg, objs, k, readOnly, nil)
		}
	}
	if err != nil {
		env.close()
		return nil, err
	}
	env.alog, err = openAudit(cfg, objs, k, auditRecord)
	if err != nil {
		env.close()
		return nil, fmt.Errorf("audit log: %w (every hold change, disposal and erasure is audited, so none is made)", err)
	}
	opts := retention.Options{
		Path:      cfg.retentionDB(),
		IndexPath: cfg.indexDB(),
		Objects:   objs,
		SearchKey: k.ring.SearchKey(),
		Audit:     env.alog,
		Policy:    pol,
		LockMode:  lm,
		Logger:    logger,
	}
	if !env.busy {
		opts.Archive = env.archive
	}
	env.m, err = retention.Open(ctx, opts)
	if err != nil {
		env.close()
		return nil, err
	}
	return env, nil
}

func retentionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "retention", Short: "Disposal under the retention policy: run, explain, verify locks"}
	var dryRun bool
	run := &cobra.Command{
		Use:   "run",
		Short: "Dispose of every message whose retention has ended and that no hold covers",
		Long: `run disposes of every message whose retention period (retention.rules, in
order, else retention.default) has ended and that no active hold covers:
its key object is destroyed, its objects deleted (an S3 Object Lock may keep
the now unreadable object until the lock ends), its index rows wiped, and a
dispose entry naming the rule is appended to the ledger. It also finishes
erasures a hold or an obligation deferred, deletes objects whose lock has
ended, and brings S3 Object Locks in line. Each disposal is audited first.

--dry-run lists exactly what a run now would dispose and erase, and changes
nothing. cairn serve runs this every retention.schedule.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mode := retentionWrite
			if dryRun {
				mode = retentionRead
			}
			env, err := openRetention(cmd, mode)
			if errors.Is(err, errServeHoldsArchive) {
				return fmt.Errorf("%w: it runs this itself every retention.schedule; to run it now, POST /api/v1/retention/run to serve's HTTP API (role legal or admin; docs/API.md), or stop serve first (--dry-run works while it runs)", err)
			}
			if err != nil {
				return err
			}
			defer env.close()
			rep, err := env.m.Run(cmd.Context(), env.caller, dryRun)
			if rep != nil {
				printRun(rep)
			}
			return err
		},
	}
	run.Flags().BoolVar(&dryRun, "dry-run", false, "list what a run would dispose and erase; change nothing")

	explain := &cobra.Command{
		Use:   "explain ID",
		Short: "Show which rule applies to a message, its expiry, and the holds covering it",
		Long: `explain shows how the retention policy and the holds treat one message: the
rule that applies and the criteria it matched by, the date its period counts
from, its expiry, the active holds covering it, whether the next run
disposes it, what an erasure request would do, and its S3 Object Lock. ID is
a ledger sequence number (of the message or any delivery of it) or the
SHA-256 of the message in hex.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openRetention(cmd, retentionRead)
			if err != nil {
				return err
			}
			defer env.close()
			seq, err := env.archive.Resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			x, err := env.m.Explain(cmd.Context(), seq)
			if err != nil {
				return err
			}
			printExplanation(x)
			return nil
		},
	}

	var repair bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check that every message object's S3 Object Lock agrees with the policy and the holds",
		Long: `verify reads the Object Lock of every active message object and reports each
one whose retention date is missing, earlier than its policy expiry or in
another mode, whose legal hold is missing while a hold covers it, or set
while none does. --repair sets what is missing and clears stray legal holds.
Without S3 Object Lock there is nothing to check. Exit status 1 on a problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openRetention(cmd, retentionRead)
			if err != nil {
				return err
			}
			defer env.close()
			return verifyLocks(cmd.Context(), env.m, repair)
		},
	}
	verify.Flags().BoolVar(&repair, "repair", false, "also set missing locks and clear stray legal holds")
	cmd.AddCommand(run, explain, verify)
	return cmd
}

// verifyLocks runs retention's lock check and prints it; cairn verify
// calls it too.
func verifyLocks(ctx context.Context, m *retention.Manager, repair bool) error {
	if !m.Locking() {
		fmt.Println("object locks: the store has no S3 Object Lock; nothing to check")
		return nil
	}
	rep, err := m.VerifyLocks(ctx, repair)
	if err != nil {
		return err
	}
	for _, p := range rep.Problems {
		fmt.Printf("PROBLEM lock %s\n", p)
	}
	if repair {
		r := rep.Repaired
		fmt.Printf("repaired: %d retention dates, %d legal holds set, %d cleared, %d failed\n", r.Retention, r.HoldsOn, r.HoldsOff, r.Errors)
	}
	fmt.Printf("object locks: %d message objects checked, %d problems\n", rep.Checked, len(rep.Problems))
	if len(rep.Problems) > 0 && !repair {
		return &exitError{1, fmt.Errorf("object locks disagree with the policy or the holds (cairn retention verify --repair sets them)")}
	}
	return nil
}

func printRun(rep *retention.RunReport) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	verb := "disposed"
	if rep.DryRun {
		verb = "would dispose"
	}
	for _, d := range rep.Disposed {
		kept := ""
		if d.ObjectKept {
			kept = "\tobject kept, unreadable, until its S3 Object Lock ends"
		}
		fmt.Fprintf(w, "%s\t%d\trule %s\texpired %s%s\n", verb, d.Seq, d.Rule, d.Expired.Format(time.DateOnly), kept)
	}
	for _, e := range rep.Erased {
		fmt.Fprintf(w, "erased\t%d\t%s\t%s\n", e.Seq, e.Date.Format(time.DateOnly), e.How)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(w, "FAILED\t%d\t%v\n", f.Seq, f.Err)
	}
	w.Flush()
	fmt.Printf("%d messages checked at %s: %d %s, %d erased (deferred requests), %d expired but held, %d failed",
		rep.Checked, rep.Now.Format(time.RFC3339), len(rep.Disposed), verb, len(rep.Erased), rep.Held, len(rep.Failed))
	if !rep.DryRun {
		fmt.Printf("; %d locked objects deleted; locks: %d retention dates, %d legal holds set, %d cleared",
			rep.ObjectsDeleted, rep.Locks.Retention, rep.Locks.HoldsOn, rep.Locks.HoldsOff)
	}
	fmt.Println()
}

func printExplanation(x *retention.Explanation) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "message\t%d\n", x.Seq)
	fmt.Fprintf(w, "state\t%s\n", x.State)
	if x.State != "active" {
		if x.Tombstone != 0 {
			fmt.Fprintf(w, "by\tledger entry %d\n", x.Tombstone)
		}
		for _, k := range []string{"policy", "expired", "basis", "request", "reason", "at"} {
			if v := x.TombstoneFields[k]; v != "" {
				fmt.Fprintf(w, "%s\t%s\n", k, v)
			}
		}
		return
	}
	date := "none (no readable Date field)"
	if !x.Date.IsZero() {
		date = x.Date.Format(time.RFC3339)
	}
	fmt.Fprintf(w, "date\t%s\n", date)
	fmt.Fprintf(w, "archived\t%s\n", x.Archived.Format(time.RFC3339))
	which := "the default rule"
	if x.RuleIndex >= 0 {
		which = fmt.Sprintf("rule %d of retention.rules, matched by %s", x.RuleIndex+1, strings.Join(x.Matched, "; "))
	}
	fmt.Fprintf(w, "rule\t%s (%s)\n", x.Rule.Name, which)
	basis := ""
	if x.Rule.Basis != "" {
		basis = "; basis: " + x.Rule.Basis
	}
	from := string(x.Rule.From)
	if x.StartFallback {
		from += " (no Date field: the archive time)"
	}
	fmt.Fprintf(w, "keeps\t%s from %s%s\n", x.Rule.Keep, from, basis)
	switch {
	case x.Forever:
		fmt.Fprintf(w, "expires\tnever\n")
	case x.Expired:
		fmt.Fprintf(w, "expires\t%s (expired)\n", x.Expiry.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "expires\t%s\n", x.Expiry.Format(time.RFC3339))
	}
	if len(x.Holds) == 0 {
		fmt.Fprintf(w, "holds\tnone\n")
	}
	for _, h := range x.Holds {
		fmt.Fprintf(w, "hold\tcase %s (hold %s): %s\n", h.Case, h.ID, h.Describe())
	}
	switch {
	case x.Disposable:
		fmt.Fprintf(w, "disposal\tat the next run\n")
	case len(x.Holds) > 0:
		fmt.Fprintf(w, "disposal\tnot while a hold covers it\n")
	case x.Forever:
		fmt.Fprintf(w, "disposal\tnever\n")
	default:
		fmt.Fprintf(w, "disposal\tat the first run after %s\n", x.Expiry.Format(time.RFC3339))
	}
	if x.Erasure == "" {
		fmt.Fprintf(w, "erasure\ta request naming one of its addresses erases it\n")
	} else {
		fmt.Fprintf(w, "erasure\tkept: %s\n", x.Erasure)
	}
	if x.LockWanted != nil {
		fmt.Fprintf(w, "lock wanted\t%s\n", lockString(x.LockWanted))
		if x.Lock != nil {
			fmt.Fprintf(w, "lock\t%s\n", lockString(x.Lock))
		}
	}
}

func lockString(l *objstore.Lock) string {
	s := "no retention date"
	if !l.RetainUntil.IsZero() {
		s = fmt.Sprintf("%s until %s", l.Mode, l.RetainUntil.UTC().Format(time.RFC3339))
	}
	if l.LegalHold {
		s += ", legal hold on"
	}
	return s
}

// verifyStoreLocks is cairn verify's lock step: on a store with S3 Object
// Lock, every active message object's lock must agree with the policy and
// the holds. It prints each problem and returns how many there were.
func verifyStoreLocks(ctx context.Context, cfg *Config, st *archive.Store) (int, error) {
	l, ok := st.Objects().(objstore.Locker)
	if !ok {
		return 0, nil
	}
	if on, err := l.LockEnabled(ctx); err != nil || !on {
		return 0, err
	}
	pol, err := cfg.Retention.policy()
	if err != nil {
		return 0, err
	}
	lm, _ := cfg.Retention.lockMode()
	m, err := retention.Open(ctx, retention.Options{Path: cfg.retentionDB(), IndexPath: cfg.indexDB(), Objects: st.Objects(),
		SearchKey: st.Keys().SearchKey(), Policy: pol, LockMode: lm, Logger: logger})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	rep, err := m.VerifyLocks(ctx, false)
	if err != nil {
		return 0, err
	}
	for _, p := range rep.Problems {
		fmt.Printf("PROBLEM lock %s\n", p)
	}
	fmt.Printf("object locks: %d message objects checked against the retention policy and the holds, %d problems\n", rep.Checked, len(rep.Problems))
	if len(rep.Problems) > 0 {
		fmt.Println("(cairn serve sets the locks of new messages as they arrive; `cairn retention run` or `cairn retention verify --repair` sets missing ones now)")
	}
	return len(rep.Problems), nil
}
