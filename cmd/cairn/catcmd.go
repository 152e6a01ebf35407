package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/audit"
)

func catCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cat ID",
		Short: "Print the exact original bytes of one message",
		Long: `cat prints a message exactly as it was received. ID is a ledger sequence
number (of the message or of any delivery of it) or the SHA-256 of the
message in hex.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, alog, done, err := openAuditedReader(ctx, cfg, "every read is audited, so nothing is printed")
			if err != nil {
				return err
			}
			defer done()
			actor, source := cliActor()
			seq, err := st.Resolve(ctx, args[0])
			if err != nil {
				alog.Record(ctx, audit.Event{Action: audit.ActionFetch, Outcome: audit.OutcomeFailure, Reason: err.Error(), Actor: actor, Source: source,
					Details: audit.Details{Parts: []string{"BODY[]"}, Query: args[0]}})
				return err
			}
			m, err := st.OpenMessage(ctx, seq)
			if err != nil {
				return err
			}
			defer m.Close()
			// Recorded before a byte is printed: no audit, no read.
			if _, err := alog.Record(ctx, audit.Event{Action: audit.ActionFetch, Outcome: audit.OutcomeSuccess, Actor: actor, Source: source,
				Target:  audit.Target{Ledger: fmt.Sprint(seq)},
				Details: audit.Details{Parts: []string{"BODY[]"}, Bytes: m.Size(), Count: 1}}); err != nil {
				return fmt.Errorf("audit log: %w (every read is audited, so nothing is printed)", err)
			}
			w := bufio.NewWriterSize(os.Stdout, 256<<10)
			if _, err := m.WriteTo(w); err != nil {
				return err
			}
			return w.Flush()
		},
	}
}
