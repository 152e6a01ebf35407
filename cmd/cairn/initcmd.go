package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/crypto"
)

func initCmd() *cobra.Command {
	var origin string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a data folder, the archive keys and a configuration",
		Long: `init creates the data folder, the archive key (age X25519), the ledger
signing key (ed25519) and the first key-encryption key in the object store,
and writes <data_dir>/cairn.yaml unless a configuration file was given.

Back up the archive key: without it nothing in the archive can be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			res, err := initArchive(cmd.Context(), cfg, origin)
			if err != nil {
				return err
			}
			fmt.Printf("Initialised the archive in %s\n", cfg.DataDir)
			fmt.Printf("  archive key:   %s   (back it up; without it nothing can be read)\n", cfg.archiveKeyPath())
			fmt.Printf("  signing key:   %s\n", cfg.signingKeyPath())
			fmt.Printf("  public key:    %s\n", res.verifierKey)
			fmt.Printf("  ledger origin: %s\n", res.origin)
			if res.configWritten != "" {
				fmt.Printf("  configuration: %s\n", res.configWritten)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&origin, "origin", "", "checkpoint origin naming this node's ledger (default cairn/<hostname>/<random>)")
	return cmd
}

type initResult struct {
	origin        string
	verifierKey   string
	configWritten string
}

// initArchive creates the keys and the first KEK. It refuses to touch an
// archive that already has an archive key.
func initArchive(ctx context.Context, cfg *Config, origin string) (*initResult, error) {
	if fileExists(cfg.archiveKeyPath()) {
		return nil, fmt.Errorf("%s exists: this archive is already initialised", cfg.archiveKeyPath())
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if origin == "" {
		host, _ := os.Hostname()
		host = strings.ToLower(strings.Map(func(r rune) rune {
			if r == ' ' || r == '+' || r == '/' {
				return '-'
			}
			return r
		}, host))
		if host == "" {
			host = "localhost"
		}
		var b [4]byte
		rand.Read(b[:])
		origin = "cairn/" + host + "/" + hex.EncodeToString(b[:])
	}
	escrow, err := escrowRecipients(cfg)
	if err != nil {
		return nil, err
	}
	objs, err := openObjects(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer closeObjects(objs)
	if fileExists(cfg.signingKeyPath()) {
		return nil, fmt.Errorf("%s exists but %s does not: restore the archive key from its backup rather than re-initialising", cfg.signingKeyPath(), cfg.archiveKeyPath())
	}
	sk, err := crypto.CreateSigningKey(cfg.signingKeyPath(), origin)
	if err != nil {
		return nil, err
	}
	ids, err := crypto.CreateIdentities(cfg.archiveKeyPath())
	if err != nil {
		return nil, err
	}
	if _, err := crypto.CreateKeyring(ctx, objs, ids, escrow); err != nil {
		return nil, err
	}
	res := &initResult{origin: origin, verifierKey: sk.VerifierKey}
	if cfg.file == "" {
		p := filepath.Join(cfg.DataDir, "cairn.yaml")
		abs, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		text := strings.Replace(string(exampleYAML), "data_dir: ./cairn-data", "data_dir: "+abs, 1)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			return nil, err
		}
		res.configWritten = p
	}
	return res, nil
}
