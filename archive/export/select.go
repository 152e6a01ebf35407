package export

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/export/manifest"
	"github.com/cairn-archive/cairn/imapview/search"
	"github.com/cairn-archive/cairn/retention"
)

// HoldSource lists the holds of a case: *retention.Manager is one.
type HoldSource interface {
	// ShowHold returns the holds (active or released) of a case, or the
	// hold with that id; retention.ErrNoHold when there is none.
	ShowHold(ctx context.Context, caseOrID string) ([]*retention.HoldReport, error)
}

// ErrNoActiveHold is returned (wrapped) for a case whose holds are all
// released: it holds nothing to export.
var ErrNoActiveHold = errors.New("export: the case has no active hold")

// selected is one message to export.
type selected struct {
	seq  uint64
	size int64
}

// selectMessages returns the messages to export, in ledger order, and the
// selection as the manifest records it.
func selectMessages(ctx context.Context, st *archive.Store, opts *Options) ([]selected, manifest.Selection, error) {
	var sel manifest.Selection
	var where string
	var args []any
	var fullText bool
	var phrases []search.Phrase
	join := "LEFT JOIN"
	if opts.Case != "" {
		sel.Case = opts.Case
		reports, err := opts.Holds.ShowHold(ctx, opts.Case)
		if err != nil {
			return nil, sel, fmt.Errorf("export: case %s: %w", opts.Case, err)
		}
		var conds []string
		for _, r := range reports {
			h := r.Hold
			if !h.Active() {
				continue
			}
			c, a, ft, err := holdCond(&h.HoldSpec, st.Keys().SearchKey())
			if err != nil {
				return nil, sel, fmt.Errorf("export: hold %s: %w", h.ID, err)
			}
			conds = append(conds, "("+c+")")
			args = append(args, a...)
			fullText = fullText || ft
			sel.Holds = append(sel.Holds, manifestHold(h))
		}
		if len(conds) == 0 {
			return nil, sel, fmt.Errorf("%w: every hold of case %s was released", ErrNoActiveHold, opts.Case)
		}
		where = strings.Join(conds, " OR ")
	} else {
		sel.Query = opts.Query
		node, err := search.Parse(opts.Query)
		if err != nil {
			return nil, sel, fmt.Errorf("export: query: %w", err)
		}
		comp, err := search.Compile(node, search.Options{SearchKey: st.Keys().SearchKey()})
		if err != nil {
			return nil, sel, fmt.Errorf("export: query: %w", err)
		}
		where, args, fullText, phrases = comp.Where, comp.Args, comp.FullText, comp.Phrases
		join = "JOIN" // as cairn search
	}
	if fullText {
		// Tokens committed but not yet in the full-text index.
		if err := st.FlushSearch(ctx); err != nil && !st.ReadOnly() {
			return nil, sel, fmt.Errorf("export: bring the full-text index up to date: %w", err)
		}
	}
	db, err := search.OpenReader(st.Index().Path(), "", 2)
	if err != nil {
		return nil, sel, fmt.Errorf("export: %w", err)
	}
	defer db.Close()
	out, err := queryMessages(ctx, db, `SELECT m.seq, m.size FROM messages m `+join+` deliveries d ON d.seq = m.seq
		WHERE m.state = 0 AND (`+where+`) ORDER BY m.seq`, args)
	if err != nil {
		return nil, sel, err
	}
	if len(phrases) > 0 {
		// A query's BODY and TEXT phrases are confirmed on every match
		// (cairn search does so for up to a few hundred): an export holds
		// exactly what the phrase says. A hold's query keeps its word rule,
		// since that is what the hold covers.
		kept := out[:0]
		for _, m := range out {
			if search.ConfirmStored(ctx, st, m.seq, phrases) {
				kept = append(kept, m)
			}
		}
		out = kept
	}
	return out, sel, nil
}

func queryMessages(ctx context.Context, db *sql.DB, q string, args []any) ([]selected, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("export: select: %w", err)
	}
	defer rows.Close()
	var out []selected
	for rows.Next() {
		var s selected
		var seq int64
		if err := rows.Scan(&seq, &s.size); err != nil {
			return nil, fmt.Errorf("export: select: %w", err)
		}
		s.seq = uint64(seq)
		out = append(out, s)
	}
	return out, rows.Err()
}

// holdCond is a hold's criteria as SQL over the index (m: messages, d: the
// first delivery). It states what retention evaluates for a hold (the
// retention package's HoldSpec.cond): a custodian's messages are those of
// which they are a custodian, the envelope sender or in the From field;
// the dates bound the Date field, else the archive time, as UTC days, both
// included; the query is cairn search's, by words. TestCaseMatchesHold
// keeps the two in step.
func holdCond(s *retention.HoldSpec, searchKey []byte) (string, []any, bool, error) {
	var conds []string
	var args []any
	if len(s.Custodians) > 0 {
		var addrs []any
		for _, a := range s.Custodians {
			addrs = append(addrs, strings.ToLower(strings.TrimSpace(a)))
		}
		ph := strings.TrimSuffix(strings.Repeat("?,", len(addrs)), ",")
		parts := []string{
			`m.seq IN (SELECT message FROM custodians WHERE addr IN (` + ph + `))`,
			`m.seq IN (SELECT message FROM deliveries WHERE lower(sender) IN (` + ph + `))`,
		}
		args = append(args, addrs...)
		args = append(args, addrs...)
		for _, a := range addrs {
			parts = append(parts, `instr(',' || m.from_addr || ',', ',' || ? || ',') > 0`)
			args = append(args, a)
		}
		conds = append(conds, "("+strings.Join(parts, " OR ")+")")
	}
	const date = `COALESCE(m.date, m.archived_at / 1000000000)`
	if !s.From.IsZero() {
		conds = append(conds, date+` >= ?`)
		args = append(args, utcDay(s.From).Unix())
	}
	if !s.To.IsZero() {
		conds = append(conds, date+` < ?`)
		args = append(args, utcDay(s.To).AddDate(0, 0, 1).Unix())
	}
	fullText := false
	if s.Query != "" {
		n, err := search.Parse(s.Query)
		if err != nil {
			return "", nil, false, err
		}
		comp, err := search.Compile(n, search.Options{SearchKey: searchKey})
		if err != nil {
			return "", nil, false, err
		}
		conds = append(conds, "("+comp.Where+")")
		args = append(args, comp.Args...)
		fullText = comp.FullText
	}
	if len(conds) == 0 {
		return "0", nil, false, nil // a hold without criteria holds nothing (Validate refuses it)
	}
	return "(" + strings.Join(conds, ") AND (") + ")", args, fullText, nil
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func manifestHold(h *retention.Hold) manifest.Hold {
	mh := manifest.Hold{
		ID: h.ID, Reason: h.Reason, PlacedAt: h.PlacedAt.UTC(), PlacedBy: h.PlacedBy, PlaceEntry: h.PlaceEntry,
		Custodians: h.Custodians, Query: h.Query,
	}
	if !h.From.IsZero() {
		mh.From = h.From.UTC().Format(time.DateOnly)
	}
	if !h.To.IsZero() {
		mh.To = h.To.UTC().Format(time.DateOnly)
	}
	return mh
}
