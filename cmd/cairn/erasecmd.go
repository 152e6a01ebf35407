package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/retention"
)

func eraseCmd() *cobra.Command {
	var req retention.ErasureRequest
	cmd := &cobra.Command{
		Use:   "erase --subject ADDR --reason TEXT [--dry-run]",
		Short: "GDPR erasure: erase a person's mail, except what a hold or a retention obligation keeps",
		Long: `erase executes a data subject's erasure request (GDPR Art. 17): every message
in which the address appears as sender (From field, envelope sender),
recipient (To, Cc, envelope recipients including Bcc) or custodian is erased
by destroying its key object, deleting its objects and wiping its index
rows, and an erase entry is appended to the ledger. After it, nothing in
the archive can produce the message or confirm its content.

Kept, with the reason printed for each:
  - messages a litigation hold covers (Art. 17(3)(e));
  - messages inside the period of a retention rule that is a legal
    obligation (erasable: false, the default) (Art. 17(3)(b)).
They are erased by a later retention run once nothing keeps them.

--reason is recorded in the ledger for ever: give a request reference, never
the address. --dry-run lists what would be erased and kept, and changes
nothing. Each erasure is audited first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			mode := retentionWrite
			if req.DryRun {
				mode = retentionRead
			}
			env, err := openRetention(cmd, mode)
			if errors.Is(err, errServeHoldsArchive) {
				return fmt.Errorf("%w: while it runs, erase through its HTTP API (POST /api/v1/erasures with the same subject and reason, role legal or admin; docs/API.md), or stop serve first (--dry-run works while it runs)", err)
			}
			if err != nil {
				return err
			}
			defer env.close()
			rep, err := env.m.Erase(cmd.Context(), env.caller, req)
			if rep != nil {
				printErasure(rep)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&req.Subject, "subject", "", "the data subject's e-mail address")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "a request reference, recorded in the ledger (never personal data)")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "list what would be erased and kept; change nothing")
	cmd.MarkFlagRequired("subject")
	cmd.MarkFlagRequired("reason")
	return cmd
}

func printErasure(rep *retention.ErasureReport) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	verb := "erased"
	if rep.DryRun {
		verb = "would erase"
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return "(no date)"
		}
		return t.Format(time.DateOnly)
	}
	for _, e := range rep.Erased {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%q\t%s\n", verb, e.Seq, date(e.Date), e.From, e.Subject, e.How)
	}
	for _, k := range rep.Kept {
		fmt.Fprintf(w, "kept\t%d\t%s\t%s\t%q\t%s\n", k.Seq, date(k.Date), k.From, k.Subject, k.Why)
	}
	for _, f := range rep.Failed {
		fmt.Fprintf(w, "FAILED\t%d\t%v\n", f.Seq, f.Err)
	}
	w.Flush()
	fmt.Printf("erasure request %s: %d %s, %d kept, %d failed\n", rep.ID, len(rep.Erased), verb, len(rep.Kept), len(rep.Failed))
	if !rep.DryRun && len(rep.Kept) > 0 {
		fmt.Println("kept messages are erased by a later retention run once nothing keeps them")
	}
}
