package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/retention"
)

func holdCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hold",
		Short: "Litigation holds: place, release, list, show",
		Long: `A litigation hold keeps every message it covers from disposal and erasure,
whatever the retention policy says, until it is released: messages of the
case's custodians (received, sent, or in their mailbox), in a date range,
matching a search, or all of these at once. It covers messages archived
after it was placed too. Every change is audited and recorded in the
ledger; on a bucket with S3 Object Lock, covered message objects also get
an S3 legal hold.

While cairn serve runs, holds placed here take effect at once; their
ledger events are recorded by serve within seconds.`,
	}
	var spec retention.HoldSpec
	var from, to string
	place := &cobra.Command{
		Use:   "place --case ID --reason TEXT [--custodian ADDR]... [--from DATE] [--to DATE] [--query SEARCH]",
		Short: "Place a hold",
		Long: `place puts a hold on every message that matches all the criteria given:

  --custodian ADDR   a custodian of a delivery, its envelope sender, or its From
                     address (repeat, or separate with commas)
  --from, --to DATE  the message date (Date field; archive time without one),
                     YYYY-MM-DD, both days included
  --query SEARCH     cairn search's language (IMAP SEARCH keys); BODY and TEXT
                     match by words; use ALL to hold everything

  cairn hold place --case C-2026-17 --reason "Acme v. Corp" --custodian alice@example.com --from 2025-01-01
  cairn hold place --case C-2026-18 --reason "regulator inquiry" --query 'OR FROM acme.example BODY merger'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if from != "" {
				if spec.From, err = time.Parse(time.DateOnly, from); err != nil {
					return fmt.Errorf("--from %q: want YYYY-MM-DD", from)
				}
			}
			if to != "" {
				if spec.To, err = time.Parse(time.DateOnly, to); err != nil {
					return fmt.Errorf("--to %q: want YYYY-MM-DD", to)
				}
			}
			if err := spec.Validate(); err != nil {
				return err
			}
			env, err := openRetention(cmd, retentionChange)
			if err != nil {
				return err
			}
			defer env.close()
			r, err := env.m.PlaceHold(cmd.Context(), env.caller, spec)
			if err != nil {
				return err
			}
			printHold(r, true)
			if env.busy {
				fmt.Println("in force now; cairn serve records it in the ledger within seconds")
			}
			return nil
		},
	}
	place.Flags().StringVar(&spec.Case, "case", "", "the case (legal matter) id")
	place.Flags().StringVar(&spec.Reason, "reason", "", "why: recorded in the ledger and the audit log")
	place.Flags().StringSliceVar(&spec.Custodians, "custodian", nil, "a custodian's address (repeatable)")
	place.Flags().StringVar(&from, "from", "", "first message date held, YYYY-MM-DD")
	place.Flags().StringVar(&to, "to", "", "last message date held, YYYY-MM-DD")
	place.Flags().StringVar(&spec.Query, "query", "", "a search (IMAP SEARCH keys, as cairn search)")
	place.MarkFlagRequired("case")
	place.MarkFlagRequired("reason")

	var relCase, relReason string
	release := &cobra.Command{
		Use:   "release --case ID --reason TEXT",
		Short: "Release every active hold of a case (or one hold, by its id)",
		Long: `release ends the holds of a case: the messages they covered go back under
the retention policy (and any other hold), and their S3 legal holds are
cleared unless another hold covers them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openRetention(cmd, retentionChange)
			if err != nil {
				return err
			}
			defer env.close()
			rs, err := env.m.ReleaseHold(cmd.Context(), env.caller, relCase, relReason)
			if err != nil {
				return err
			}
			for _, r := range rs {
				printHold(r, false)
			}
			return nil
		},
	}
	release.Flags().StringVar(&relCase, "case", "", "the case id (or a hold id)")
	release.Flags().StringVar(&relReason, "reason", "", "why: recorded in the ledger and the audit log")
	release.MarkFlagRequired("case")
	release.MarkFlagRequired("reason")

	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the active holds (--all: released ones too), with how many messages each covers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openRetention(cmd, retentionRead)
			if err != nil {
				return err
			}
			defer env.close()
			rs, err := env.m.ListHolds(cmd.Context(), all)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "CASE\tHOLD\tPLACED\tBY\tMESSAGES\tSTATE\tCRITERIA")
			for _, r := range rs {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Case, r.ID, r.PlacedAt.Format(time.DateOnly), r.PlacedBy, r.Messages, holdState(r), r.Describe())
			}
			w.Flush()
			fmt.Fprintf(os.Stderr, "%d holds\n", len(rs))
			return nil
		},
	}
	list.Flags().BoolVar(&all, "all", false, "released holds too")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show the holds of a case (or one hold): criteria, how many messages, which custodians",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openRetention(cmd, retentionRead)
			if err != nil {
				return err
			}
			defer env.close()
			rs, err := env.m.ShowHold(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for i, r := range rs {
				if i > 0 {
					fmt.Println()
				}
				printHold(r, true)
			}
			return nil
		},
	}
	cmd.AddCommand(place, release, list, show)
	return cmd
}

func holdState(r *retention.HoldReport) string {
	s := "active"
	if r.Released {
		s = "released " + r.ReleasedAt.Format(time.DateOnly)
	}
	if r.Pending {
		s += " (ledger event pending)"
	}
	return s
}

func printHold(r *retention.HoldReport, custodians bool) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()
	fmt.Fprintf(w, "case\t%s\n", r.Case)
	fmt.Fprintf(w, "hold\t%s\n", r.ID)
	fmt.Fprintf(w, "state\t%s\n", holdState(r))
	fmt.Fprintf(w, "placed\t%s by %s: %s\n", r.PlacedAt.Format(time.RFC3339), r.PlacedBy, r.Reason)
	if r.Released {
		fmt.Fprintf(w, "released\t%s by %s: %s\n", r.ReleasedAt.Format(time.RFC3339), r.ReleasedBy, r.ReleaseReason)
	}
	fmt.Fprintf(w, "criteria\t%s\n", r.Describe())
	if r.Released {
		return
	}
	fmt.Fprintf(w, "messages\t%d\n", r.Messages)
	if custodians && len(r.HeldCustodians) > 0 {
		var cs []string
		for i, c := range r.HeldCustodians {
			if i == 50 {
				cs = append(cs, fmt.Sprintf("... %d more", len(r.HeldCustodians)-50))
				break
			}
			cs = append(cs, fmt.Sprintf("%s (%d)", c.Addr, c.Messages))
		}
		fmt.Fprintf(w, "custodians\t%s\n", strings.Join(cs, ", "))
	}
}
