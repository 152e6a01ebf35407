package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/archive/export/manifest"
	"github.com/cairn-archive/cairn/crypto"
)

func verifyExportCmd() *cobra.Command {
	var key string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "verify-export PATH [--key PUBKEY]",
		Short: "Check an export anywhere, with the archive's public key alone",
		Long: `verify-export checks an export folder made by cairn export, without the
archive: the manifest's signature and SHA-256, the checkpoint's signature,
every message's SHA-256 and the ledger's content commitment to it (with its
salt), every envelope commitment, every entry's Merkle inclusion proof
against the checkpoint's root, the custodians, manifest.csv, README.txt,
and that the folder holds nothing the manifest does not list. Each problem
is named (kind, message, file).

--key is the archive's public key: its keys/ledger.key.pub file, or the
key itself (origin+hash+base64). Get it from the archive's operator, never
from the export. On the archive's own machine it defaults to that key.

Exit status: 0 when the export is intact, 1 when a problem was found, 2
when it could not be checked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := verifyExportKey(key)
			if err != nil {
				return err
			}
			v, err := crypto.LoadVerifier(k)
			if err != nil {
				return err
			}
			bar := newProgress("messages")
			start := time.Now()
			opts := manifest.Options{}
			if !quiet {
				opts.Progress = func(m, tm, b, tb int64) {
					if time.Since(start) > time.Second {
						bar.updateBytes(m, tm, b, tb)
					}
				}
			}
			rep, err := manifest.Verify(cmd.Context(), args[0], v, opts)
			bar.done()
			if err != nil {
				return err
			}
			for _, p := range rep.Problems {
				fmt.Printf("PROBLEM %s\n", p)
			}
			if h := rep.Header; h != nil {
				what := "query " + h.Selection.Query
				if h.Selection.Case != "" {
					what = "case " + h.Selection.Case
				}
				fmt.Printf("export %s of %s, made %s by %s: %d messages, %d ledger entries, %d bytes (%s)\n",
					h.ID, what, h.Created.Format("2006-01-02 15:04:05 MST"), h.CreatedBy.User, rep.Messages, rep.Entries, rep.Bytes, h.Layout)
			}
			if rep.Size > 0 || rep.Origin != "" {
				fmt.Printf("checkpoint of %s: %d entries, root %x, signed by %s\n", rep.Origin, rep.Size, rep.Root[:], v.Name())
			}
			if !rep.OK() {
				return &exitError{1, fmt.Errorf("export verification FAILED: %d problems", len(rep.Problems))}
			}
			fmt.Println("export verification passed")
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the archive's public key: a keys/ledger.key.pub file or the key string")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress display")
	return cmd
}

// verifyExportKey finds the key for verify-export: --key, else the
// archive's own public key when this machine has it.
func verifyExportKey(key string) (string, error) {
	if key != "" {
		return key, nil
	}
	cfg, err := loadConfig(configFile)
	if err == nil {
		if p := cfg.signingKeyPath() + ".pub"; fileExists(p) {
			fmt.Fprintf(os.Stderr, "using this archive's public key %s\n", p)
			return p, nil
		}
	}
	return "", errors.New("--key is required: the archive's public key (its keys/ledger.key.pub, or the key itself), obtained from the archive's operator, not from the export")
}
