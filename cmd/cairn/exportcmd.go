package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/export"
	"github.com/cairn-archive/cairn/retention"
)

func exportCmd() *cobra.Command {
	var (
		caseID, query, out, format string
		quiet                      bool
	)
	cmd := &cobra.Command{
		Use:   "export (--case ID | --query SEARCH) --out PATH [--format eml|mbox]",
		Short: "eDiscovery export: original messages with a signed, verifiable manifest (audited)",
		Long: `export writes, into a new folder, the original messages of a case (every
message its active holds cover now) or of a search (cairn search's
language; BODY and TEXT phrases are confirmed on every match), byte for
byte, with:

  manifest.json  per message: ledger seq, SHA-256, the salt that opens the
                 ledger's commitments, custodians, each delivery's envelope,
                 the ledger entry lines and their Merkle inclusion proofs
                 against one signed checkpoint; for the export: the case or
                 query, who ran it, when, counts, the signed checkpoint
  manifest.csv   the same list for spreadsheets
  manifest.sig   the archive's signature over manifest.json (ledger key)
  README.txt     what the folder is and how to check it
  messages/      <seq>-<sha256>.eml per message (--format eml, the default),
                 or messages.mbox (--format mbox: mboxrd)

Anyone can then check the export without the archive, with the archive's
public key (keys/ledger.key.pub): cairn verify-export PATH --key KEY.
docs/FORMAT.md §11 specifies every file.

The export is recorded in the audit log (export.create: case, query as a
keyed hash, ledger seqs, count, bytes) before any message is written. While
cairn serve holds the archive, the export proves messages against the
newest checkpoint serve published, waiting up to two checkpoint intervals
for one that covers every selected message.

  cairn export --case C-2026-17 --out /srv/exports/c-2026-17
  cairn export --query 'FROM ceo@example.com SINCE 1-Jan-2026' --out q1 --format mbox`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			if (caseID == "") == (query == "") {
				return errors.New("give --case ID or --query SEARCH (one of them)")
			}
			ctx := cmd.Context()
			objs, err := openObjects(ctx, cfg)
			if err != nil {
				return err
			}
			defer closeObjects(objs)
			k, err := loadKeys(ctx, cfg, objs)
			if err != nil {
				return err
			}
			busy := false
			st, err := openArchiveWith(ctx, cfg, objs, k, readWrite, nil)
			if errors.Is(err, archive.ErrLocked) {
				busy = true
				st, err = openArchiveWith(ctx, cfg, objs, k, readOnly, nil)
			}
			if err != nil {
				return err
			}
			defer st.CloseWithoutCheckpoint()
			alog, err := openAudit(cfg, objs, k, auditRecord)
			if err != nil {
				return fmt.Errorf("audit log: %w (every export is audited, so none was made)", err)
			}
			defer alog.Close()
			actor, source := cliActor()
			opts := export.Options{Case: caseID, Query: query, Out: out, Format: format, Actor: actor, Source: source, Audit: alog}
			if busy {
				opts.CheckpointWait = 2*cfg.Ledger.CheckpointInterval + 5*time.Second
			}
			if caseID != "" {
				pol, err := cfg.Retention.policy()
				if err != nil {
					return err
				}
				// Read only: the export changes no hold.
				m, err := retention.Open(ctx, retention.Options{Path: cfg.retentionDB(), IndexPath: cfg.indexDB(), Objects: objs,
					SearchKey: k.ring.SearchKey(), Policy: pol, Logger: logger})
				if err != nil {
					return err
				}
				defer m.Close()
				opts.Holds = m
			}
			if !quiet {
				opts.Progress = exportProgress()
			}
			res, err := export.Run(ctx, st, opts)
			if opts.Progress != nil {
				opts.Progress(export.Progress{Phase: "done"})
			}
			if err != nil {
				return err
			}
			fmt.Printf("exported %d messages (%d bytes, %d ledger entries) to %s\n", res.Messages, res.Bytes, res.Entries, res.Dir)
			fmt.Printf("export %s, manifest SHA-256 %s, audit event %s\n", res.ID, hex.EncodeToString(res.ManifestSHA256[:]), res.AuditEvent)
			fmt.Printf("proven against the signed checkpoint of %d entries of %s\n", res.Checkpoint.Size, res.Checkpoint.Origin)
			fmt.Printf("check it anywhere: cairn verify-export %s --key %s.pub\n", res.Dir, cfg.signingKeyPath())
			return nil
		},
	}
	cmd.Flags().StringVar(&caseID, "case", "", "export the messages the case's active holds cover")
	cmd.Flags().StringVar(&query, "query", "", "export the messages a search matches (IMAP SEARCH keys, as cairn search)")
	cmd.Flags().StringVar(&out, "out", "", "the export folder to create (must not exist, or be empty)")
	cmd.Flags().StringVar(&format, "format", "eml", "eml (one file per message) or mbox (one mboxrd file)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display")
	cmd.MarkFlagRequired("out")
	return cmd
}

// exportProgress shows each phase of an export with its own bar, from one
// second into the phase (a short export prints none).
func exportProgress() func(export.Progress) {
	var bar *progress
	var start time.Time
	phase := ""
	units := map[string]string{"proofs": "entries", "write": "messages", "check": "messages"}
	labels := map[string]string{"proofs": "reading the ledger's leaf hashes for the proofs", "write": "writing the messages", "check": "verifying the export as written"}
	return func(p export.Progress) {
		if p.Phase != phase {
			if bar != nil {
				bar.done()
			}
			phase, bar, start = p.Phase, nil, time.Now()
		}
		unit, ok := units[p.Phase]
		if !ok || time.Since(start) < time.Second {
			return
		}
		if bar == nil {
			fmt.Fprintf(os.Stderr, "%s\n", labels[p.Phase])
			bar = newProgress(unit)
		}
		bar.updateBytes(p.Done, p.Total, p.Bytes, p.TotalBytes)
	}
}
