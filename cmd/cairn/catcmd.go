package main

import (
	"bufio"
	"os"

	"github.com/spf13/cobra"
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
			st, _, err := openArchive(ctx, cfg, readOnly)
			if err != nil {
				return err
			}
			defer st.CloseWithoutCheckpoint()
			seq, err := st.Resolve(ctx, args[0])
			if err != nil {
				return err
			}
			m, err := st.OpenMessage(ctx, seq)
			if err != nil {
				return err
			}
			defer m.Close()
			w := bufio.NewWriterSize(os.Stdout, 256<<10)
			if _, err := m.WriteTo(w); err != nil {
				return err
			}
			return w.Flush()
		},
	}
}
