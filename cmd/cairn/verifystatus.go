package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/httpapi"
)

// The outcome of the last `cairn verify`, kept beside the index so that
// cairn serve's /metrics can report it (cairn_verify_last_*): verify is a
// separate command, often run from a timer.

func (c *Config) verifyStatusPath() string { return filepath.Join(c.DataDir, "verify-status.json") }

// recordVerify writes the outcome of a verify run. Failing to write it
// only costs the metric, so it is logged, not returned.
func recordVerify(cfg *Config, full bool, rep *archive.VerifyReport, lockProblems int, took time.Duration) {
	st := httpapi.VerifyStatus{
		Time:     time.Now().UTC(),
		Full:     full,
		OK:       rep.OK() && lockProblems == 0,
		Problems: len(rep.Problems) + lockProblems,
		Entries:  uint64(rep.Entries),
		Messages: uint64(rep.Messages),
		Disposed: len(rep.Disposed),
		Seconds:  took.Seconds(),
	}
	b, _ := json.Marshal(st)
	p := cfg.verifyStatusPath()
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		logger.Warn("verify outcome not recorded for metrics", "err", err)
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		logger.Warn("verify outcome not recorded for metrics", "err", err)
	}
}

// readVerifyStatus returns the last verify outcome, or nil when verify
// has not run on this archive.
func readVerifyStatus(cfg *Config) (*httpapi.VerifyStatus, error) {
	b, err := os.ReadFile(cfg.verifyStatusPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st httpapi.VerifyStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.verifyStatusPath(), err)
	}
	return &st, nil
}
