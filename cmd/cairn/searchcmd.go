package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/imapview/search"
)

func searchCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "search QUERY",
		Short: "Search the archive with IMAP SEARCH keys; prints the matches (audited)",
		Long: `search runs an IMAP-SEARCH-like query over every message of the archive,
with the IMAP view's engine, and prints one line per match: the ledger
sequence number (for cairn cat), INTERNALDATE, sender and subject.

Keys (RFC 9051 §6.4.4), case-insensitive, space-separated (all must hold):
FROM, TO, CC, BCC, SUBJECT, HEADER field string, BODY, TEXT, SINCE, BEFORE,
ON, SENTSINCE, SENTBEFORE, SENTON (1-Feb-2024 or 2024-02-01), LARGER,
SMALLER, UID n:m (ledger seq + 1), NOT key, OR key key, (key key), ALL.
BODY and TEXT match whole words (the index holds keyed hashes of words);
with few matches the phrase itself is checked.

  cairn search 'FROM alice@example.com SUBJECT "q3 budget" SINCE 1-Jan-2024'
  cairn search 'OR BODY merger BODY acquisition NOT FROM newsletter'

The query is recorded in the audit log (as a keyed hash unless
audit.keep_queries) before any result is printed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := setup(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			query := strings.Join(args, " ")
			node, err := search.Parse(query)
			if err != nil {
				return err
			}
			st, alog, done, err := openAuditedReader(ctx, cfg, "every search is audited, so none ran")
			if err != nil {
				return err
			}
			defer done()
			comp, err := search.Compile(node, search.Options{SearchKey: st.Keys().SearchKey()})
			if err != nil {
				return err
			}
			if comp.FullText {
				// Tokens committed but not yet in the full-text index (the
				// writer indexes them in the background).
				if err := st.FlushSearch(ctx); err != nil {
					logger.Warn("full-text index not brought up to date; recent messages may be missing", "err", err)
				}
			}
			db, err := search.OpenReader(filepath.Join(cfg.DataDir, "index.db"), "", 2)
			if err != nil {
				return err
			}
			defer db.Close()
			rows, err := db.QueryContext(ctx, `SELECT m.seq, d.received_at, m.from_addr, m.subject FROM messages m
				JOIN deliveries d ON d.seq = m.seq WHERE m.state = 0 AND (`+comp.Where+`) ORDER BY m.seq`, comp.Args...)
			if err != nil {
				return fmt.Errorf("search: %w", err)
			}
			type hit struct {
				seq           uint64
				at            int64
				from, subject string
			}
			var hits []hit
			for rows.Next() {
				var h hit
				if err := rows.Scan(&h.seq, &h.at, &h.from, &h.subject); err != nil {
					rows.Close()
					return err
				}
				hits = append(hits, h)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if len(comp.Phrases) > 0 && len(hits) <= 200 {
				kept := hits[:0]
				for _, h := range hits {
					if search.ConfirmStored(ctx, st, h.seq, comp.Phrases) {
						kept = append(kept, h)
					}
				}
				hits = kept
			}
			actor, source := cliActor()
			if _, err := alog.Record(ctx, audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess, Actor: actor, Source: source,
				Details: audit.Details{Query: node.String(), Count: int64(len(hits))}}); err != nil {
				return fmt.Errorf("audit log: %w (every search is audited, so nothing is printed)", err)
			}
			w := bufio.NewWriter(os.Stdout)
			for i, h := range hits {
				if limit > 0 && i == limit {
					fmt.Fprintf(w, "... %d more (--limit 0 prints all)\n", len(hits)-limit)
					break
				}
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", h.seq, time.Unix(0, h.at).UTC().Format(time.RFC3339), h.from, h.subject)
			}
			fmt.Fprintf(os.Stderr, "%d matches\n", len(hits))
			return w.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 1000, "print at most this many matches (0: all)")
	return cmd
}
