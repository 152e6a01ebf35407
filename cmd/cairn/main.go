// Command cairn is the tamper-evident compliance mail archive: one binary
// for the services (`cairn serve`) and every administrative command.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

var (
	configFile string
	logger     = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
)

// exitError carries an exit status: 1 for problems found (verify), 2 for
// usage and runtime errors.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "Cairn, the tamper-evident compliance mail archive",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&configFile, "config", "", "configuration file (YAML); default $CAIRN_CONFIG, else <data_dir>/cairn.yaml when it exists, else the embedded default")
	root.AddCommand(
		initCmd(),
		serveCmd(),
		importCmd(),
		verifyCmd(),
		reindexCmd(),
		catCmd(),
		configCmd(),
		keyCmd(),
		auditCmd(),
		userCmd(),
		searchCmd(),
		harvestCmd(),
		holdCmd(),
		retentionCmd(),
		eraseCmd(),
		exportCmd(),
		verifyExportCmd(),
	)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cairn:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(2)
	}
}

// setup loads the configuration and sets up the logger.
func setup(cmd *cobra.Command) (*Config, error) {
	cfg, err := loadConfig(configFile)
	if err != nil {
		return nil, err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	} else {
		logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	slog.SetDefault(logger)
	return cfg, nil
}
