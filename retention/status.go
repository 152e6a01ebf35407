package retention

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// evaluator decides, in one SQL statement over the index, which rule
// applies to each message and which active hold (if any) covers it. Every
// decision this package takes (disposal, erasure, locks, explain, Held)
// goes through it, so they cannot disagree.
type evaluator struct {
	policy    *Policy
	holds     []*Hold
	ruleConds []cond
	holdConds []cond
	fullText  bool // a hold uses BODY or TEXT: the full-text index must be current
}

func newEvaluator(p *Policy, holds []*Hold, searchKey []byte) (*evaluator, error) {
	e := &evaluator{policy: p, holds: holds}
	for i := range p.Rules {
		e.ruleConds = append(e.ruleConds, p.Rules[i].Match.cond())
	}
	for _, h := range holds {
		c, ft, err := h.cond(searchKey)
		if err != nil {
			return nil, fmt.Errorf("hold %s (case %s): %w", h.ID, h.Case, err)
		}
		e.holdConds = append(e.holdConds, c)
		e.fullText = e.fullText || ft
	}
	return e, nil
}

// status is one active message as the evaluator sees it.
type status struct {
	Seq      uint64
	Object   string
	Date     time.Time // the Date field; zero when missing
	Archived time.Time
	Rule     int // index in policy.Rules; -1: the default rule
	Hold     int // index of the first active hold covering it; -1: none
}

func (s *status) rule(p *Policy) *Rule { return p.rule(s.Rule) }

// expiry is when the message's retention ends; ok false: kept for ever.
func (s *status) expiry(p *Policy) (time.Time, bool) {
	return s.rule(p).Expiry(s.Date, s.Archived)
}

func caseOf(conds []cond) (string, []any) {
	if len(conds) == 0 {
		return "-1", nil
	}
	var b strings.Builder
	var args []any
	b.WriteString("CASE")
	for i, c := range conds {
		fmt.Fprintf(&b, " WHEN %s THEN %d", c.sql, i)
		args = append(args, c.args...)
	}
	b.WriteString(" ELSE -1 END")
	return b.String(), args
}

// statement is the SELECT of the statuses of active messages matching
// where, in seq order.
func (e *evaluator) statement(where cond) (string, []any) {
	rc, rargs := caseOf(e.ruleConds)
	hc, hargs := caseOf(e.holdConds)
	q := `SELECT m.seq, m.object, m.date, m.archived_at, ` + rc + `, ` + hc + `
		FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq
		WHERE m.state = 0 AND (` + where.sql + `) ORDER BY m.seq`
	args := append(append(append([]any{}, rargs...), hargs...), where.args...)
	return q, args
}

// each calls fn for the status of every active message matching where.
// The rows are read in pages (of the seq range), so fn may take its time
// (dispose, set locks) without holding a read transaction open on the
// index, and memory stays bounded by a page.
func (e *evaluator) each(ctx context.Context, ix *sql.DB, where cond, page int, fn func(*status) error) error {
	if page <= 0 {
		page = 20000
	}
	var after int64 = -1
	for {
		w := where.and(cond{`m.seq > ?`, []any{after}})
		q, args := e.statement(w)
		q += fmt.Sprintf(" LIMIT %d", page)
		batch, err := e.query(ctx, ix, q, args)
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		if len(batch) < page {
			return nil
		}
		after = int64(batch[len(batch)-1].Seq)
	}
}

func (e *evaluator) query(ctx context.Context, ix *sql.DB, q string, args []any) ([]status, error) {
	rows, err := ix.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("retention: evaluate: %w", err)
	}
	defer rows.Close()
	var out []status
	for rows.Next() {
		var s status
		var seq, archived int64
		var date sql.NullInt64
		if err := rows.Scan(&seq, &s.Object, &date, &archived, &s.Rule, &s.Hold); err != nil {
			return nil, fmt.Errorf("retention: evaluate: %w", err)
		}
		s.Seq = uint64(seq)
		s.Archived = time.Unix(0, archived).UTC()
		if date.Valid {
			s.Date = time.Unix(date.Int64, 0).UTC()
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retention: evaluate: %w", err)
	}
	return out, nil
}

// one returns the status of message seq; ok false when it is not active
// (disposed, erased, or no such message).
func (e *evaluator) one(ctx context.Context, ix *sql.DB, seq uint64) (*status, bool, error) {
	q, args := e.statement(cond{`m.seq = ?`, []any{int64(seq)}})
	ss, err := e.query(ctx, ix, q, args)
	if err != nil || len(ss) == 0 {
		return nil, false, err
	}
	return &ss[0], true, nil
}

// holdsOf returns every active hold covering message seq (explain).
func (e *evaluator) holdsOf(ctx context.Context, ix *sql.DB, seq uint64) ([]*Hold, error) {
	var out []*Hold
	for i, c := range e.holdConds {
		var n int
		err := ix.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq
			WHERE m.seq = ? AND m.state = 0 AND (`+c.sql+`)`, append([]any{int64(seq)}, c.args...)...).Scan(&n)
		if err != nil {
			return nil, fmt.Errorf("retention: hold %s: %w", e.holds[i].ID, err)
		}
		if n > 0 {
			out = append(out, e.holds[i])
		}
	}
	return out, nil
}

// fullTextCurrent reports whether the full-text index holds message seq's
// words (or it has none), so that BODY and TEXT hold keys can be trusted
// for it. Tokens reach the full-text index shortly after each commit.
func fullTextCurrent(ctx context.Context, ix *sql.DB, seq uint64) (bool, error) {
	var mark int64 = -1
	var v []byte
	switch err := ix.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'fts_indexed'`).Scan(&v); {
	case err == sql.ErrNoRows:
	case err != nil:
		return false, fmt.Errorf("retention: full-text state: %w", err)
	default:
		fmt.Sscan(string(v), &mark)
	}
	if int64(seq) <= mark {
		return true, nil
	}
	var n int
	if err := ix.QueryRowContext(ctx, `SELECT COUNT(*) FROM fts_docs WHERE docid = ?`, int64(seq)).Scan(&n); err != nil {
		return false, fmt.Errorf("retention: full-text state: %w", err)
	}
	return n == 0, nil
}
