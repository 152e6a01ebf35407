package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/ingest/harvest"
)

func harvestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "harvest",
		Short: "Pull mail from IMAP mailboxes into the archive",
		Long: `harvest pulls mail from the IMAP sources configured under harvest.sources:
every folder the include/exclude patterns select, incrementally (a cursor of
UIDVALIDITY and the last archived UID per folder, advanced only after the
archive's receipt). cairn serve runs the harvester continuously; these
commands run it by hand and show its state.`,
	}
	cmd.AddCommand(harvestRunCmd(), harvestStatusCmd())
	return cmd
}

func harvestRunCmd() *cobra.Command {
	var (
		names []string
		once  bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Harvest the configured sources (until interrupted, or one pass with --once)",
		Long: `run harvests the configured sources (or those named with --source) until
interrupted: between passes it waits in IDLE where the server offers it, or
for each source's poll_interval. With --once it makes one pass over every
folder of each source and exits: 0 when every source and folder completed,
1 when something failed (a message summary says what), 2 on other errors.

run and cairn serve both write the archive, so only one of them runs at a
time. A run that is interrupted, even killed, resumes where its cursors
stand; a message read again is recognised and not recorded twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			if len(cfg.Harvest.Sources) == 0 {
				return errors.New("no harvest sources are configured (harvest.sources); see `cairn config example`")
			}
			ctx := cmd.Context()
			st, _, err := openArchive(ctx, cfg, readWrite)
			if err != nil {
				return err
			}
			h, err := harvest.New(ctx, cfg.Harvest.options(cfg, st))
			if err != nil {
				st.Close()
				return err
			}
			var runErr error
			failed := false
			if once {
				var res []harvest.PassResult
				res, runErr = h.RunOnce(ctx, names...)
				failed = printPassResults(res)
			} else {
				fmt.Fprintf(os.Stderr, "harvesting %s; interrupt to stop\n", sourceList(cfg, names))
				runErr = h.Run(ctx, names...)
			}
			if err := h.Close(); runErr == nil {
				runErr = err
			}
			if err := st.Close(); runErr == nil {
				runErr = err
			}
			if runErr != nil {
				return runErr
			}
			if failed {
				return &exitError{1, errors.New("harvest: some sources or folders failed; see above and `cairn harvest status`")}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&names, "source", nil, "harvest only this source (repeatable); default every enabled source")
	cmd.Flags().BoolVar(&once, "once", false, "one pass over every folder, then exit")
	return cmd
}

func sourceList(cfg *Config, names []string) string {
	if len(names) > 0 {
		return strings.Join(names, ", ")
	}
	var all []string
	for _, s := range cfg.Harvest.sources() {
		if !s.Disabled {
			all = append(all, s.Name)
		}
	}
	return strings.Join(all, ", ")
}

// printPassResults prints one line per source and reports whether any
// source or folder failed.
func printPassResults(res []harvest.PassResult) bool {
	failed := false
	for _, r := range res {
		state := "ok"
		if r.Err != nil {
			state = "FAILED"
			failed = true
		}
		fmt.Printf("%s: %s: archived %d, duplicates %d, already archived %d, skipped %d, malformed %d, removed %d (%.1f MB)\n",
			r.Source, state, r.Archived, r.Duplicates, r.Replayed, r.Skipped, r.Malformed, r.Removed, float64(r.Bytes)/1e6)
		if r.Err != nil {
			fmt.Printf("  error: %v\n", r.Err)
		}
		for _, f := range r.Folders {
			failed = true
			fmt.Printf("  folder %q: %v\n", f.Folder, f.Err)
		}
	}
	return failed
}

func harvestStatusCmd() *cobra.Command {
	var (
		names   []string
		asJSON  bool
		reports int
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each source's and folder's cursor, counts and last error",
		Long: `status shows, per source, the last pass, whether it is connected, the last
error and the consecutive failures, and per folder the cursor (UIDVALIDITY
and last archived UID), the counts (archived, already archived, skipped,
malformed, removed) and the last error. It reads the harvester's state
database and works while cairn serve or cairn harvest run is running.
--reports N also lists the N newest skipped or malformed messages.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var stat []harvest.SourceStatus
			var reps []harvest.Report
			st, err := harvest.OpenState(cfg.Harvest.statePath(cfg), true)
			switch {
			case errors.Is(err, harvest.ErrNoState):
				// Nothing harvested yet: list the configured sources.
				for _, s := range cfg.Harvest.sources() {
					stat = append(stat, harvest.SourceStatus{Name: s.Name, Host: s.Host, User: s.User, Configured: true, Disabled: s.Disabled})
				}
			case err != nil:
				return err
			default:
				defer st.Close()
				if stat, err = harvest.Status(ctx, st, cfg.Harvest.sources()); err != nil {
					return err
				}
				if reports > 0 {
					if reps, err = st.Reports(ctx, "", reports); err != nil {
						return err
					}
				}
			}
			if len(names) > 0 {
				var keep []harvest.SourceStatus
				for _, s := range stat {
					for _, n := range names {
						if s.Name == n {
							keep = append(keep, s)
						}
					}
				}
				stat = keep
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Sources []harvest.SourceStatus `json:"sources"`
					Reports []harvest.Report       `json:"reports,omitempty"`
				}{stat, reps})
			}
			printStatus(stat, reps)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&names, "source", nil, "show only this source (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&reports, "reports", 0, "also list the N newest skipped or malformed messages")
	return cmd
}

func printStatus(stat []harvest.SourceStatus, reps []harvest.Report) {
	if len(stat) == 0 {
		fmt.Println("no harvest sources")
		return
	}
	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', 0)
	for _, s := range stat {
		state := "idle"
		switch {
		case !s.Configured:
			state = "not configured"
		case s.Disabled:
			state = "disabled"
		case s.Connected:
			state = "connected"
		case s.Failures > 0:
			state = fmt.Sprintf("failing (%d in a row)", s.Failures)
		case s.LastEnd.IsZero():
			state = "never run"
		}
		fmt.Fprintf(w, "source %s\t%s@%s\t%s\tlast pass %s\tlast success %s\n",
			s.Name, s.User, s.Host, state, ago(s.LastEnd), ago(s.LastSuccess))
		if s.LastError != "" {
			fmt.Fprintf(w, "  last error %s:\t%s\n", ago(s.LastErrorAt), s.LastError)
		}
		if len(s.Folders) > 0 {
			fmt.Fprintln(w, "  FOLDER\tUIDVALIDITY\tLAST UID\tMESSAGES\tARCHIVED\tALREADY\tSKIPPED\tMALFORMED\tREMOVED\tLAST RUN\tLAST ERROR")
		}
		for _, f := range s.Folders {
			name := f.Name
			if !f.Present {
				name += " (gone)"
			}
			errText := ""
			if f.LastError != "" {
				errText = ago(f.LastErrorAt) + ": " + f.LastError
			}
			fmt.Fprintf(w, "  %s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", name, f.UIDValidity, f.LastUID, f.Messages,
				f.Archived, f.Replayed, f.Skipped, f.Malformed, f.Removed, ago(f.LastRun), errText)
		}
	}
	w.Flush()
	if len(reps) > 0 {
		fmt.Println("\nreports (newest first):")
		for _, r := range reps {
			seq := ""
			if r.Seq >= 0 {
				seq = fmt.Sprintf(" ledger %d", r.Seq)
			}
			fmt.Printf("  %s %s %s %q uid %d (uidvalidity %d)%s: %s\n", r.At.Format(time.RFC3339), r.Kind, r.Source, r.Folder, r.UID, r.UIDValidity, seq, r.Detail)
		}
	}
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
