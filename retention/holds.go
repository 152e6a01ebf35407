package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-archive/cairn/audit"
)

// ErrNoHold is returned (wrapped) when no active hold has the case or id.
var ErrNoHold = errors.New("retention: no such active hold")

// HoldReport is a hold with what it covers now.
type HoldReport struct {
	*Hold
	// Messages is how many archived messages the hold covers now (zero
	// for a released hold).
	Messages int64 `json:"messages"`
	// HeldCustodians are the custodians of those messages with how many
	// of the messages each has, most first (ShowHold and PlaceHold only).
	HeldCustodians []CustodianCount `json:"held_custodians,omitempty"`
	// Pending is true while the change waits to be recorded in the ledger.
	Pending bool `json:"pending,omitempty"`
}

// CustodianCount is one custodian of a hold's messages.
type CustodianCount struct {
	Addr     string `json:"addr,omitempty"`
	Messages int64  `json:"messages"`
}

// PlaceHold places a hold: from the moment it returns, no message it
// covers is disposed or erased, including messages archived later. The
// change is audited first (fail closed), committed to retention.db,
// recorded in the ledger as a hold.place event (at once when the Manager
// has the archive, else by the next process that does), and each covered
// message object gets an S3 legal hold.
func (m *Manager) PlaceHold(ctx context.Context, c Caller, spec HoldSpec) (*HoldReport, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("retention: hold id: %w", err)
	}
	h := &Hold{ID: id.String(), HoldSpec: spec, PlacedAt: m.now(), PlacedBy: c.Actor.User, PlaceEntry: -1, ReleaseEntry: -1}
	if _, _, err := h.cond(m.opts.SearchKey); err != nil {
		return nil, err
	}
	ev := audit.Event{Action: audit.ActionHoldPlace, Outcome: audit.OutcomeSuccess, Actor: c.Actor, Source: c.Source,
		Target: audit.Target{Case: h.Case, Hold: h.ID},
		// The query goes in Query, which the audit log keeps as a keyed
		// hash unless audit.keep_queries: it may name people.
		Details: audit.Details{Query: h.Query, Note: "reason: " + h.Reason + "; " + h.describeCriteria(false)}}
	// The write lock of retention.db is taken first: a disposal in flight
	// (which holds it) finishes before the hold exists, and none starts
	// until it is committed.
	tx, end, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if err := insertHold(ctx, tx, h); err != nil {
		return nil, err
	}
	if _, err := m.opts.Audit.Record(ctx, ev); err != nil {
		return nil, fmt.Errorf("retention: audit log: %w (the hold was not placed)", err)
	}
	if err := tx.Commit(); err != nil {
		m.auditFailure(ctx, ev, err)
		return nil, fmt.Errorf("retention: place hold: %w", err)
	}
	if err := m.RecordPending(ctx); err != nil {
		m.lg.Error("retention: hold placed, but not yet recorded in the ledger; retried later", "hold", h.ID, "err", err)
	}
	if err := m.applyHoldLocks(ctx, h); err != nil {
		m.lg.Error("retention: hold placed, but not every S3 legal hold is set; the next run sets them", "hold", h.ID, "err", err)
	}
	return m.report(ctx, h.ID)
}

// auditFailure records that an audited change failed after its event was
// recorded.
func (m *Manager) auditFailure(ctx context.Context, ev audit.Event, err error) {
	ev.ID, ev.Time = "", time.Time{}
	ev.Outcome, ev.Reason = audit.OutcomeFailure, err.Error()
	if _, aerr := m.opts.Audit.Record(context.WithoutCancel(ctx), ev); aerr != nil {
		m.lg.Error("retention: failure not audited", "action", ev.Action, "err", aerr)
	}
}

// ReleaseHold releases every active hold of a case (or the one hold with
// that id). Messages it covered go back under the policy (and any other
// hold); their S3 legal holds are cleared unless another hold covers them.
func (m *Manager) ReleaseHold(ctx context.Context, c Caller, caseOrID, reason string) ([]*HoldReport, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, errors.New("retention: a release needs a reason")
	}
	if err := checkText("reason", reason, 1000); err != nil {
		return nil, err
	}
	tx, end, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	hs, err := findHolds(ctx, tx, caseOrID, false)
	if err != nil {
		return nil, err
	}
	now := m.now()
	var evs []audit.Event
	for _, h := range hs {
		h.Released, h.ReleasedAt, h.ReleasedBy, h.ReleaseReason = true, now, c.Actor.User, reason
		if _, err := tx.ExecContext(ctx, `UPDATE holds SET released_at = ?, released_by = ?, release_reason = ? WHERE id = ?`,
			now.UnixNano(), h.ReleasedBy, reason, h.ID); err != nil {
			return nil, fmt.Errorf("retention: release hold %s: %w", h.ID, err)
		}
		ev := audit.Event{Action: audit.ActionHoldRelease, Outcome: audit.OutcomeSuccess, Actor: c.Actor, Source: c.Source,
			Target: audit.Target{Case: h.Case, Hold: h.ID}, Details: audit.Details{Note: "reason: " + reason}}
		if _, err := m.opts.Audit.Record(ctx, ev); err != nil {
			return nil, fmt.Errorf("retention: audit log: %w (nothing was released)", err)
		}
		evs = append(evs, ev)
	}
	if err := tx.Commit(); err != nil {
		for _, ev := range evs {
			m.auditFailure(ctx, ev, err)
		}
		return nil, fmt.Errorf("retention: release hold: %w", err)
	}
	if err := m.RecordPending(ctx); err != nil {
		m.lg.Error("retention: hold released, but not yet recorded in the ledger; retried later", "err", err)
	}
	var out []*HoldReport
	for _, h := range hs {
		if err := m.applyHoldLocks(ctx, h); err != nil {
			m.lg.Error("retention: hold released, but not every S3 legal hold is cleared; the next run clears them", "hold", h.ID, "err", err)
		}
		r, err := m.report(ctx, h.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// findHolds returns the holds of a case, or the hold with that id; active
// ones only unless all.
func findHolds(ctx context.Context, q querier, caseOrID string, all bool) ([]*Hold, error) {
	where := ` AND released_at IS NULL`
	if all {
		where = ""
	}
	out, err := queryHolds(ctx, q, ` WHERE (case_id = ? OR id = ?)`+where, caseOrID, caseOrID)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		what := "active "
		if all {
			what = ""
		}
		return nil, fmt.Errorf("%w: no %shold has case or id %q", ErrNoHold, what, caseOrID)
	}
	return out, nil
}

// ListHolds returns the holds with their message counts: the active ones,
// or every hold ever placed with all.
func (m *Manager) ListHolds(ctx context.Context, all bool) ([]*HoldReport, error) {
	hs, err := loadHolds(ctx, m.db, all)
	if err != nil {
		return nil, err
	}
	var out []*HoldReport
	for _, h := range hs {
		r, err := m.describe(ctx, h, false)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ShowHold returns the holds of a case (or the hold with that id), active
// or released, with how many messages each covers and their custodians.
func (m *Manager) ShowHold(ctx context.Context, caseOrID string) ([]*HoldReport, error) {
	hs, err := findHolds(ctx, m.db, caseOrID, true)
	if err != nil {
		return nil, err
	}
	var out []*HoldReport
	for _, h := range hs {
		r, err := m.describe(ctx, h, true)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (m *Manager) report(ctx context.Context, id string) (*HoldReport, error) {
	hs, err := findHolds(ctx, m.db, id, true)
	if err != nil {
		return nil, err
	}
	return m.describe(ctx, hs[0], true)
}

func (m *Manager) describe(ctx context.Context, h *Hold, custodians bool) (*HoldReport, error) {
	r := &HoldReport{Hold: h, Pending: h.PlaceEntry < 0 || (h.Released && h.ReleaseEntry < 0)}
	if h.Released {
		return r, nil
	}
	c, fullText, err := h.cond(m.opts.SearchKey)
	if err != nil {
		return nil, err
	}
	if err := m.flushText(ctx, fullText); err != nil {
		return nil, fmt.Errorf("retention: hold %s: %w", h.ID, err)
	}
	const held = `SELECT m.seq FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq WHERE m.state = 0 AND `
	if err := m.ix.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+held+c.sql+`)`, c.args...).Scan(&r.Messages); err != nil {
		return nil, fmt.Errorf("retention: hold %s: %w", h.ID, err)
	}
	if !custodians || r.Messages == 0 {
		return r, nil
	}
	rows, err := m.ix.QueryContext(ctx, `SELECT addr, COUNT(*) FROM custodians WHERE message IN (`+held+c.sql+`)
		GROUP BY addr ORDER BY COUNT(*) DESC, addr`, c.args...)
	if err != nil {
		return nil, fmt.Errorf("retention: hold %s: %w", h.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var cc CustodianCount
		if err := rows.Scan(&cc.Addr, &cc.Messages); err != nil {
			return nil, fmt.Errorf("retention: hold %s: %w", h.ID, err)
		}
		r.HeldCustodians = append(r.HeldCustodians, cc)
	}
	return r, rows.Err()
}
