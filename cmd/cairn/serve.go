package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run every configured service",
		Long: `serve runs the archive and every configured service. With no configuration
at all it runs the embedded default: data in ./cairn-data, keys generated on
first start, listeners on 127.0.0.1 only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !fileExists(cfg.archiveKeyPath()) {
				res, err := initArchive(ctx, cfg, "")
				if err != nil {
					return err
				}
				fmt.Fprintf(os.Stderr, "first start: initialised %s (ledger %s); back up %s\n", cfg.DataDir, res.origin, cfg.archiveKeyPath())
			}
			st, _, err := openArchive(ctx, cfg, readWrite)
			if err != nil {
				return err
			}
			logger.Info("archive open", "data_dir", cfg.DataDir, "ledger", st.LogID())
			<-ctx.Done()
			logger.Info("shutting down")
			if err := st.Close(); err != nil && !errors.Is(err, ctx.Err()) {
				return err
			}
			return nil
		},
	}
}
