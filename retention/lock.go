package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// S3 Object Lock mapping. Each active message's object carries:
//   - a retention date (Options.LockMode) equal to its policy expiry,
//     rounded up to the second, when that is in the future: until then S3
//     refuses to delete it, whoever asks;
//   - a legal hold while an active hold covers it: S3 refuses to delete it
//     until the hold is released.
//
// Only message objects are locked, never key objects: destroying a key
// object is what erases a message, and must stay possible under any lock
// (DESIGN.md invariant 4). S3 never shortens a retention date; when a
// policy change shortens one, the message is disposed at its new expiry by
// destroying its key, and its object is deleted when the lock ends.
//
// retention.db's locks table records what was set, so runs only send the
// changes; VerifyLocks compares with what the store reports.

// LockChanges counts what a lock sync changed.
type LockChanges struct {
	Retention  int   `json:"retention"` // retention dates set or extended
	HoldsOn    int   `json:"holds_on"`  // legal holds set
	HoldsOff   int   `json:"holds_off"` // legal holds cleared
	Errors     int   `json:"errors"`
	FirstError error `json:"-"`
}

func (c *LockChanges) add(o LockChanges) {
	c.Retention += o.Retention
	c.HoldsOn += o.HoldsOn
	c.HoldsOff += o.HoldsOff
	if c.FirstError == nil {
		c.FirstError = o.FirstError
	}
	c.Errors += o.Errors
}

// wantLock is the lock a message object should carry.
type wantLock struct {
	until time.Time // zero: no retention date
	legal bool
}

func (m *Manager) want(st *status, now time.Time) wantLock {
	var w wantLock
	if m.opts.LockMode != "" {
		if exp, ok := st.expiry(&m.opts.Policy); ok && exp.After(now) {
			w.until = ceilSecond(exp)
		}
	}
	w.legal = st.Hold >= 0
	return w
}

func ceilSecond(t time.Time) time.Time {
	if t2 := t.Truncate(time.Second); !t2.Equal(t) {
		return t2.Add(time.Second)
	}
	return t
}

type haveLock struct {
	mode  string
	until int64
	legal bool
	known bool
}

func (m *Manager) recorded(ctx context.Context, seqs []uint64) (map[uint64]haveLock, error) {
	out := make(map[uint64]haveLock, len(seqs))
	if len(seqs) == 0 {
		return out, nil
	}
	args := make([]any, len(seqs))
	for i, s := range seqs {
		args[i] = int64(s)
	}
	rows, err := m.db.QueryContext(ctx, `SELECT seq, mode, retain_until, legal_hold FROM locks WHERE seq IN (`+placeholders(len(seqs))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("retention: locks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var h haveLock
		if err := rows.Scan(&seq, &h.mode, &h.until, &h.legal); err != nil {
			return nil, fmt.Errorf("retention: locks: %w", err)
		}
		h.known = true
		out[uint64(seq)] = h
	}
	return out, rows.Err()
}

// applyLocks brings the objects of sts to their wanted locks, sending only
// what differs from what retention.db records.
func (m *Manager) applyLocks(ctx context.Context, sts []status) LockChanges {
	var ch LockChanges
	if m.locker == nil || len(sts) == 0 {
		return ch
	}
	seqs := make([]uint64, len(sts))
	for i := range sts {
		seqs[i] = sts[i].Seq
	}
	have, err := m.recorded(ctx, seqs)
	if err != nil {
		return LockChanges{Errors: 1, FirstError: err}
	}
	now := m.now()
	var mu sync.Mutex
	m.parallel(len(sts), func(i int) {
		st := &sts[i]
		w := m.want(st, now)
		h := have[st.Seq]
		var c LockChanges
		fail := func(err error) {
			c.Errors++
			if c.FirstError == nil {
				c.FirstError = fmt.Errorf("message %d: %w", st.Seq, err)
			}
		}
		until, mode, legal := h.until, h.mode, h.legal
		if !w.until.IsZero() && (w.until.Unix() > h.until || string(m.opts.LockMode) != h.mode) {
			err := m.locker.SetRetention(ctx, st.Object, m.opts.LockMode, w.until)
			switch {
			case err == nil:
				c.Retention++
				until, mode = w.until.Unix(), string(m.opts.LockMode)
			case errors.Is(err, objstore.ErrNotExist):
			default:
				fail(err)
			}
		}
		// A legal hold is sent when it should change, and, when nothing
		// was recorded, only to turn it on (an object never held has none).
		if w.legal != h.legal && (h.known || w.legal) {
			err := m.locker.SetLegalHold(ctx, st.Object, w.legal)
			switch {
			case err == nil:
				if w.legal {
					c.HoldsOn++
				} else {
					c.HoldsOff++
				}
				legal = w.legal
			case errors.Is(err, objstore.ErrNotExist):
			default:
				fail(err)
			}
		}
		if until != h.until || mode != h.mode || legal != h.legal || !h.known {
			if _, err := m.db.ExecContext(ctx, `INSERT INTO locks(seq, object, mode, retain_until, legal_hold) VALUES(?,?,?,?,?)
				ON CONFLICT(seq) DO UPDATE SET mode = excluded.mode, retain_until = excluded.retain_until, legal_hold = excluded.legal_hold`,
				int64(st.Seq), st.Object, mode, until, legal); err != nil {
				fail(err)
			}
		}
		mu.Lock()
		ch.add(c)
		mu.Unlock()
	})
	return ch
}

// eachLocked evaluates the active messages matching where, a page at a
// time, and applies their locks.
func (m *Manager) eachLocked(ctx context.Context, where cond) (LockChanges, error) {
	var ch LockChanges
	if m.locker == nil {
		return ch, nil
	}
	e, err := m.evaluator(ctx)
	if err != nil {
		return ch, err
	}
	var page []status
	err = e.each(ctx, m.ix, where, 0, func(st *status) error {
		page = append(page, *st)
		if len(page) == 1000 {
			ch.add(m.applyLocks(ctx, page))
			page = page[:0]
		}
		return nil
	})
	ch.add(m.applyLocks(ctx, page))
	if err == nil && ch.FirstError != nil {
		err = fmt.Errorf("retention: %d lock changes failed, first: %w", ch.Errors, ch.FirstError)
	}
	return ch, err
}

// applyHoldLocks sets (or, for a released hold, clears where no other hold
// covers) the legal hold of every message the hold covers.
func (m *Manager) applyHoldLocks(ctx context.Context, h *Hold) error {
	if m.locker == nil {
		return nil
	}
	c, _, err := h.cond(m.opts.SearchKey)
	if err != nil {
		return err
	}
	_, err = m.eachLocked(ctx, c)
	return err
}

// reconcileLocks brings every active message's lock in line.
func (m *Manager) reconcileLocks(ctx context.Context) (LockChanges, error) {
	if m.locker == nil {
		return LockChanges{}, nil
	}
	// Deliveries up to here are covered by this pass: LockNew can start
	// after them.
	var last sql.NullInt64
	if err := m.ix.QueryRowContext(ctx, `SELECT MAX(seq) FROM deliveries`).Scan(&last); err != nil {
		return LockChanges{}, fmt.Errorf("retention: %w", err)
	}
	ch, err := m.eachLocked(ctx, cond{sql: "1"})
	if err != nil || !last.Valid {
		return ch, err
	}
	cur, err := getMeta(ctx, m.db, "lock_cursor")
	if err != nil {
		return ch, err
	}
	if n, _ := strconv.ParseInt(cur, 10, 64); cur == "" || n < last.Int64 {
		return ch, setMeta(ctx, m.db, "lock_cursor", strconv.FormatInt(last.Int64, 10))
	}
	return ch, nil
}

// LockNew sets the locks of messages archived (or delivered again: a new
// delivery may change the rule) since the last call. cairn serve calls it
// after each commit (archive.Options.OnIndexed) and every few seconds.
// It returns whether more remain.
func (m *Manager) LockNew(ctx context.Context) (LockChanges, bool, error) {
	var ch LockChanges
	if m.locker == nil {
		return ch, false, nil
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	cur, err := getMeta(ctx, m.db, "lock_cursor")
	if err != nil {
		return ch, false, err
	}
	after := int64(-1)
	if cur != "" {
		after, _ = strconv.ParseInt(cur, 10, 64)
	}
	const page = 2000
	rows, err := m.ix.QueryContext(ctx, `SELECT seq, message FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?`, after, page)
	if err != nil {
		return ch, false, fmt.Errorf("retention: new deliveries: %w", err)
	}
	var msgs []any
	seen := map[int64]bool{}
	last, n := after, 0
	for rows.Next() {
		var seq, msg int64
		if err := rows.Scan(&seq, &msg); err != nil {
			rows.Close()
			return ch, false, fmt.Errorf("retention: new deliveries: %w", err)
		}
		last, n = seq, n+1
		if !seen[msg] {
			seen[msg] = true
			msgs = append(msgs, msg)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return ch, false, fmt.Errorf("retention: new deliveries: %w", err)
	}
	if n == 0 {
		return ch, false, nil
	}
	e, err := m.evaluator(ctx)
	if err != nil {
		return ch, false, err
	}
	var sts []status
	err = e.each(ctx, m.ix, cond{`m.seq IN (` + placeholders(len(msgs)) + `)`, msgs}, 0, func(st *status) error {
		sts = append(sts, *st)
		return nil
	})
	if err != nil {
		return ch, false, err
	}
	ch = m.applyLocks(ctx, sts)
	if ch.FirstError != nil {
		// The cursor stays: the next call tries these again.
		return ch, false, fmt.Errorf("retention: %d lock changes failed, first: %w", ch.Errors, ch.FirstError)
	}
	if err := setMeta(ctx, m.db, "lock_cursor", strconv.FormatInt(last, 10)); err != nil {
		return ch, false, err
	}
	return ch, n == page, nil
}

// LockProblem is a message object whose lock disagrees with the policy or
// the holds.
type LockProblem struct {
	Seq    uint64 `json:"seq"`
	Object string `json:"object,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func (p LockProblem) String() string {
	return fmt.Sprintf("message %d (%s): %s", p.Seq, p.Object, p.Detail)
}

// LockReport is the outcome of VerifyLocks.
type LockReport struct {
	Checked  int64         `json:"checked"`
	Problems []LockProblem `json:"problems,omitempty"`
	Repaired LockChanges   `json:"repaired"`
}

// VerifyLocks reads the lock of every active message object from the store
// and reports each that disagrees with the policy and the holds: a
// retention date missing, earlier than the policy expiry or in another
// mode; a legal hold missing on a held message, or left on a message no
// hold covers. A retention date later than the expiry is not a problem (S3
// never shortens one). With repair it also sets what is missing, and
// clears legal holds no hold explains. Without Object Lock it checks
// nothing.
func (m *Manager) VerifyLocks(ctx context.Context, repair bool) (*LockReport, error) {
	rep := &LockReport{}
	if m.locker == nil {
		return rep, nil
	}
	e, err := m.evaluator(ctx)
	if err != nil {
		return rep, err
	}
	now := m.now()
	var mu sync.Mutex
	var page []status
	check := func() {
		m.parallel(len(page), func(i int) {
			st := &page[i]
			w := m.want(st, now)
			lk, err := m.locker.GetLock(ctx, st.Object)
			var probs []string
			switch {
			case errors.Is(err, objstore.ErrNotExist):
				return // verify reports a missing object
			case err != nil:
				probs = append(probs, "lock not readable: "+err.Error())
			default:
				if !w.until.IsZero() {
					switch {
					case lk.RetainUntil.IsZero():
						probs = append(probs, fmt.Sprintf("no retention date; the policy keeps it until %s", w.until.Format(time.RFC3339)))
					case lk.RetainUntil.Before(w.until):
						probs = append(probs, fmt.Sprintf("retained until %s, before its policy expiry %s", lk.RetainUntil.UTC().Format(time.RFC3339), w.until.Format(time.RFC3339)))
					case lk.Mode != m.opts.LockMode:
						probs = append(probs, fmt.Sprintf("retention mode %s, the configuration says %s", lk.Mode, m.opts.LockMode))
					}
				}
				if w.legal && !lk.LegalHold {
					probs = append(probs, "held by "+holdName(e.holds[st.Hold])+" but has no S3 legal hold")
				}
				if !w.legal && lk.LegalHold {
					probs = append(probs, "has an S3 legal hold but no active hold covers it")
				}
			}
			mu.Lock()
			for _, p := range probs {
				rep.Problems = append(rep.Problems, LockProblem{Seq: st.Seq, Object: st.Object, Detail: p})
			}
			mu.Unlock()
			if repair && len(probs) > 0 && err == nil {
				// Start from the store's state, not the recorded one.
				m.db.ExecContext(ctx, `INSERT INTO locks(seq, object, mode, retain_until, legal_hold) VALUES(?,?,?,?,?)
					ON CONFLICT(seq) DO UPDATE SET mode = excluded.mode, retain_until = excluded.retain_until, legal_hold = excluded.legal_hold`,
					int64(st.Seq), st.Object, string(lk.Mode), lk.RetainUntil.Unix(), lk.LegalHold)
			}
		})
		if repair {
			var fix []status
			seen := map[uint64]bool{}
			for _, p := range rep.Problems {
				seen[p.Seq] = true
			}
			for _, st := range page {
				if seen[st.Seq] {
					fix = append(fix, st)
				}
			}
			rep.Repaired.add(m.applyLocks(ctx, fix))
		}
		rep.Checked += int64(len(page))
		page = page[:0]
	}
	err = e.each(ctx, m.ix, cond{sql: "1"}, 0, func(st *status) error {
		page = append(page, *st)
		if len(page) == 500 {
			check()
		}
		return nil
	})
	check()
	return rep, err
}
