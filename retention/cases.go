package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Cases returns the ids of the cases with an active hold, sorted. With
// Members, the Manager is the IMAP view's CaseSource (imapview.CaseSource):
// the Cases/ folders and the accounts scoped to cases.
func (m *Manager) Cases(ctx context.Context) ([]string, error) {
	hs, err := loadHolds(ctx, m.db, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range hs {
		if h.Active() && h.Case != "" && !slices.Contains(out, h.Case) {
			out = append(out, h.Case)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Members returns one SQL SELECT over the index database yielding (k, msg)
// for the messages that the active holds of case id keep, by the same
// criteria the disposal run obeys (HoldSpec.cond), each once: msg is the
// message's ledger seq and k the same. The IMAP view numbers the case's
// folder itself, in the order messages join it; Epoch tells it when to
// compute the members anew. A case without an active hold yields no row. For a hold whose query has
// BODY or TEXT keys the full-text index is brought up to date first.
func (m *Manager) Members(ctx context.Context, id string) (string, []any, error) {
	hs, err := findHolds(ctx, m.db, id, false)
	if err != nil && !errors.Is(err, ErrNoHold) {
		return "", nil, err
	}
	var cs []cond
	for _, h := range hs {
		if h.Case != id || !h.Active() {
			continue // the hold whose id this is, not a case
		}
		c, fullText, err := h.cond(m.opts.SearchKey)
		if err != nil {
			return "", nil, fmt.Errorf("retention: hold %s: %w", h.ID, err)
		}
		if err := m.flushText(ctx, fullText); err != nil {
			return "", nil, fmt.Errorf("retention: hold %s: %w", h.ID, err)
		}
		cs = append(cs, c)
	}
	c := orConds(cs) // "0" without holds: no row
	return `SELECT m.seq AS k, m.seq AS msg FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq WHERE ` + c.sql, c.args, nil
}

// flushText brings the full-text index up to date before a hold with BODY
// or TEXT keys is evaluated over it (free when it is).
func (m *Manager) flushText(ctx context.Context, fullText bool) error {
	if !fullText || m.opts.Archive == nil || m.opts.Archive.ReadOnly() {
		return nil
	}
	if err := m.opts.Archive.FlushSearch(ctx); err != nil {
		return fmt.Errorf("bring the full-text index up to date: %w", err)
	}
	return nil
}

// Epoch counts the placements and releases of case id's holds: it grows
// whenever the set of holds that Members obeys changes, and never shrinks
// (hold records are kept forever). The IMAP view recomputes the case
// folder's members when it grows.
func (m *Manager) Epoch(ctx context.Context, id string) (uint32, error) {
	var n int64
	if err := m.db.QueryRowContext(ctx, `SELECT COUNT(*) + COUNT(released_at) FROM holds WHERE case_id = ?`, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("retention: case %s: %w", id, err)
	}
	return uint32(n), nil
}
