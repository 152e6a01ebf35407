package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/archive"
)

func verifyCmd() *cobra.Command {
	var opts archive.VerifyOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the ledger, the checkpoints, every object and the index",
		Long: `verify checks the ledger's segment signatures, sequence and hash chain,
every signed checkpoint (signature and Merkle root), the presence and SHA-256
of every message, key and evidence object, and the index against the
ledger. --full also decrypts every message and checks its content
commitment. Each problem is named (entry, object, kind of damage).

Exit status: 0 when nothing is wrong, 1 when a problem was found, 2 when
verify could not run.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Open read-write when nobody else writes, so an index left
			// behind by a crash catches up first; otherwise read-only.
			st, _, err := openArchive(ctx, cfg, readWrite)
			if errors.Is(err, archive.ErrLocked) {
				st, _, err = openArchive(ctx, cfg, readOnly)
			} else if err != nil && !errors.Is(err, errNotInitialised) {
				fmt.Fprintf(os.Stderr, "note: %v\nverifying without catching up the index\n", err)
				st, _, err = openArchive(ctx, cfg, readOnly)
			}
			if err != nil {
				return err
			}
			defer st.CloseWithoutCheckpoint()
			bar := newProgress("messages")
			if !quiet {
				opts.Progress = func(done, total uint64) { bar.update(int64(done), int64(total), 0) }
			}
			t0 := time.Now()
			rep, err := st.Verify(ctx, opts)
			bar.done()
			if err != nil {
				return err
			}
			out := os.Stdout
			for _, p := range rep.Problems {
				fmt.Fprintf(out, "PROBLEM %s\n", p)
			}
			for _, p := range rep.Warnings {
				fmt.Fprintf(out, "warning %s\n", p)
			}
			for _, p := range rep.Disposed {
				fmt.Fprintf(out, "%s\n", p)
			}
			mode := "objects hashed"
			if opts.Full {
				mode = "messages decrypted and rehashed"
			}
			fmt.Fprintf(out, "%d entries, %d messages, %d deliveries, %d disposed or erased, %d checkpoints (latest covers %d), %.1f MB of objects; %s\n",
				rep.Entries, rep.Messages, rep.Deliveries, len(rep.Disposed), rep.Checkpoints, rep.Latest.Size, float64(rep.Bytes)/1e6, mode)
			// S3 Object Locks against the retention policy and the holds.
			lockProblems, err := verifyStoreLocks(ctx, cfg, st)
			if err != nil {
				return err
			}
			recordVerify(cfg, opts.Full, rep, lockProblems, time.Since(t0)) // for cairn serve's /metrics
			if !rep.OK() || lockProblems > 0 {
				return &exitError{1, fmt.Errorf("verification FAILED: %d problems", len(rep.Problems)+lockProblems)}
			}
			fmt.Fprintln(out, "verification passed")
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Full, "full", false, "also decrypt every message and check its content commitment")
	cmd.Flags().BoolVar(&opts.Orphans, "orphans", false, "also list objects that no entry references")
	cmd.Flags().IntVar(&opts.Workers, "workers", 4, "objects checked in parallel")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display")
	return cmd
}
