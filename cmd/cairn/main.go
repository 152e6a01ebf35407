// Command cairn is the tamper-evident compliance mail archive: one binary
// for the services (`cairn serve`) and every administrative command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	setLogger(cfg, os.Stderr)
	return cfg, nil
}

// setLogger makes the logger cfg.Log describes, writing to w.
func setLogger(cfg *Config, w io.Writer) {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.Log.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	if b, ok := w.(*lineBatcher); ok {
		h = flushAtWarn{h, b}
	}
	logger = slog.New(h)
	slog.SetDefault(logger)
}

// logBatchDelay is how long serve's log lines wait to be written together.
const logBatchDelay = 20 * time.Millisecond
