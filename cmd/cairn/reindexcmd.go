package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
)

func reindexCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild the index from the object store",
		Long: `reindex rebuilds the SQLite index from the ledger segments and the objects
in the object store, with the archive key. The old index is kept as
index.db.old until the new one is complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			dbPath := filepath.Join(cfg.DataDir, "index.db")
			old := dbPath + ".old"
			// Take the writer lock first: nobody may write while the
			// index is rebuilt.
			lock, err := lockDataDir(cfg.DataDir)
			if err != nil {
				return err
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(old + suffix)
				if err := os.Rename(dbPath+suffix, old+suffix); err != nil && !os.IsNotExist(err) {
					lock.Close()
					return err
				}
			}
			lock.Close()
			start := time.Now()
			st, _, err := openArchive(ctx, cfg, readWrite)
			if err != nil {
				return fmt.Errorf("%w (the previous index is kept as %s)", err, old)
			}
			entries, messages, deliveries, _ := st.Index().Counts(ctx)
			if err := st.CloseWithoutCheckpoint(); err != nil {
				return err
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(old + suffix)
			}
			fmt.Printf("index rebuilt from the object store: %d entries, %d messages, %d deliveries in %s\n",
				entries, messages, deliveries, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
}
