package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/ingest/importer"
)

func importCmd() *cobra.Command {
	var (
		custodians []string
		workers    int
		quoting    string
		allFiles   bool
	)
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Archive mbox files, Maildir folders and .eml files",
		Long: `import archives every message found in the paths: mbox files (mboxrd or
mboxo quoting, LF or CRLF, optionally .gz), Maildir folders with their
subfolders, single .eml files and folders of them.

An import can be interrupted (even killed) and run again: messages already
archived from the same place are recognised and not recorded twice.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			q, err := importer.ParseQuoting(quoting)
			if err != nil {
				return err
			}
			st, _, err := openArchive(cmd.Context(), cfg, readWrite)
			if err != nil {
				return err
			}
			bar := newProgress("msgs")
			sum, runErr := importer.Run(cmd.Context(), st, args, importer.Options{
				Custodians:     custodians,
				Workers:        workers,
				MaxMessageSize: int64(cfg.Ingest.MaxMessageSize),
				Quoting:        q,
				AllFiles:       allFiles,
				Progress: func(p importer.Progress) {
					bar.updateBytes(p.Messages, 0, p.Bytes, p.TotalBytes)
				},
			})
			bar.done()
			closeErr := st.Close()
			printSummary(sum)
			if runErr != nil {
				return runErr
			}
			if closeErr != nil {
				return closeErr
			}
			if sum.Failed > 0 {
				return &exitError{1, fmt.Errorf("%d messages could not be archived; run the import again to retry them", sum.Failed)}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&custodians, "custodian", nil, "custodian mailbox the messages belong to (repeatable)")
	cmd.Flags().IntVar(&workers, "workers", importer.DefaultWorkers, "messages archived concurrently")
	cmd.Flags().StringVar(&quoting, "mbox-quoting", "mboxrd", "how mbox files quote From_ lines: mboxrd or mboxo")
	cmd.Flags().BoolVar(&allFiles, "all-files", false, "in folders, take every file that is not an mbox as one message (default: .eml, .raw and files that start like a message)")
	return cmd
}

func printSummary(s importer.Summary) {
	w := os.Stdout
	fmt.Fprintf(w, "archived %d, duplicates %d, already imported %d, parse warnings %d, refused %d, failed %d (%.1f MB)\n",
		s.Archived, s.Duplicates, s.Replayed, s.Warnings, s.Refused, s.Failed, float64(s.Bytes)/1e6)
	for _, is := range s.Issues {
		fmt.Fprintf(w, "  %s\n", is)
	}
}
