package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Validate or print the configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration (file and CAIRN_* variables)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			src := "the embedded default"
			if cfg.file != "" {
				src = cfg.file
			}
			fmt.Printf("configuration OK (%s, data in %s, %s object store)\n", src, cfg.DataDir, cfg.Store.Type)
			return nil
		},
	}, &cobra.Command{
		Use:   "example",
		Short: "Print the annotated example configuration with every option",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := os.Stdout.Write(exampleYAML)
			return err
		},
	})
	return cmd
}
