package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
)

// ErrNoMessage is returned (wrapped) by Explain for a seq that is no message.
var ErrNoMessage = errors.New("retention: no such message")

// Explanation says how the policy and the holds treat one message.
type Explanation struct {
	Seq   uint64 `json:"seq"`
	State string `json:"state,omitempty"` // active, disposed or erased
	// Tombstone is the ledger entry that disposed or erased it, with its
	// fields (policy, reason, request, at).
	Tombstone       uint64            `json:"tombstone"`
	TombstoneFields map[string]string `json:"tombstone_fields,omitempty"`

	Date     time.Time `json:"date,omitzero"` // the Date field; zero when missing
	Archived time.Time `json:"archived,omitzero"`

	// Rule is the rule that applies (RuleIndex -1: the default), and
	// Matched the criteria by which it matched.
	Rule      Rule     `json:"rule"`
	RuleIndex int      `json:"rule_index"`
	Matched   []string `json:"matched,omitempty"`
	// Start is where the period counts from (StartFallback: the Date
	// field is missing, so the archive time), Expiry where it ends
	// (Forever: never).
	Start         time.Time `json:"start,omitzero"`
	StartFallback bool      `json:"start_fallback,omitempty"`
	Expiry        time.Time `json:"expiry,omitzero"`
	Forever       bool      `json:"forever,omitempty"`
	Expired       bool      `json:"expired,omitempty"`
	// Holds are the active holds covering it.
	Holds []*Hold `json:"holds,omitempty"`
	// Disposable: expired and unheld, the next run disposes it.
	Disposable bool `json:"disposable,omitempty"`
	// Erasure is what an erasure request naming one of its addresses
	// would do now: empty (erase), or why it would be kept.
	Erasure string `json:"erasure,omitempty"`
	// Lock is the S3 Object Lock its object carries now (when the store
	// has Object Lock), and LockWanted what it should carry.
	Lock       *objstore.Lock `json:"lock,omitempty"`
	LockWanted *objstore.Lock `json:"lock_wanted,omitempty"`
}

// Explain says which rule applies to message seq, why, when it expires,
// which holds cover it, and what a run or an erasure would do with it.
func (m *Manager) Explain(ctx context.Context, seq uint64) (*Explanation, error) {
	x := &Explanation{Seq: seq, RuleIndex: -1}
	var state int
	var object string
	var date sql.NullInt64
	var archived int64
	err := m.ix.QueryRowContext(ctx, `SELECT state, object, date, archived_at FROM messages WHERE seq = ?`, int64(seq)).Scan(&state, &object, &date, &archived)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %d", ErrNoMessage, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("retention: message %d: %w", seq, err)
	}
	x.Archived = time.Unix(0, archived).UTC()
	if state != 0 {
		x.State = map[int]string{1: "disposed", 2: "erased"}[state]
		var line []byte
		err := m.ix.QueryRowContext(ctx, `SELECT line FROM entries WHERE ref = ? AND kind IN (?, ?) ORDER BY seq LIMIT 1`,
			int64(seq), ledger.KindDispose, ledger.KindErase).Scan(&line)
		if err == nil {
			if e, err := ledger.ParseEntry(line); err == nil {
				x.Tombstone = e.Seq
				if e.Event != nil {
					x.TombstoneFields = e.Event.Fields
				}
			}
		}
		return x, nil
	}
	x.State = "active"
	e, err := m.evaluator(ctx)
	if err != nil {
		return nil, err
	}
	st, ok, err := e.one(ctx, m.ix, seq)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrNoMessage, seq)
	}
	x.Date = st.Date
	x.RuleIndex = st.Rule
	r := st.rule(&m.opts.Policy)
	x.Rule = *r
	if st.Rule >= 0 {
		for _, c := range r.Match.criteria() {
			var n int
			if err := m.ix.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq WHERE m.seq = ? AND `+c.c.sql,
				append([]any{int64(seq)}, c.c.args...)...).Scan(&n); err != nil {
				return nil, fmt.Errorf("retention: explain: %w", err)
			}
			if n > 0 {
				x.Matched = append(x.Matched, c.what)
			}
		}
	}
	now := m.now()
	x.Start, x.StartFallback = r.Start(st.Date, st.Archived)
	exp, ok := r.Expiry(st.Date, st.Archived)
	x.Expiry, x.Forever = exp, !ok
	x.Expired = ok && !now.Before(exp)
	if x.Holds, err = e.holdsOf(ctx, m.ix, seq); err != nil {
		return nil, err
	}
	x.Disposable = x.Expired && len(x.Holds) == 0
	if k, keep := m.keeps(e, st, now); keep {
		x.Erasure = k.Why
	}
	if m.locker != nil {
		w := m.want(st, now)
		x.LockWanted = &objstore.Lock{LegalHold: w.legal}
		if !w.until.IsZero() {
			x.LockWanted.Mode, x.LockWanted.RetainUntil = m.opts.LockMode, w.until
		}
		if lk, err := m.locker.GetLock(ctx, object); err == nil {
			x.Lock = &lk
		}
	}
	return x, nil
}
