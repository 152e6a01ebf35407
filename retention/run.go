package retention

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/audit"
)

// Disposal is one message a run disposed, or would dispose.
type Disposal struct {
	Seq     uint64    `json:"seq"`
	Rule    string    `json:"rule,omitempty"`   // the rule whose period ended
	Expired time.Time `json:"expired,omitzero"` // when it ended
	// Set by a real run:
	Tombstone  uint64 `json:"tombstone"`             // the dispose entry's seq
	ObjectKept bool   `json:"object_kept,omitempty"` // an Object Lock kept the (now unreadable) object
}

// RunReport is the outcome of a run.
type RunReport struct {
	DryRun bool      `json:"dry_run,omitempty"`
	Now    time.Time `json:"now,omitzero"`
	// Checked is how many active messages were evaluated.
	Checked int64 `json:"checked"`
	// Disposed lists what was disposed (what would be, in a dry run), in
	// seq order.
	Disposed []Disposal `json:"disposed,omitempty"`
	// Held counts expired messages an active hold keeps.
	Held int64 `json:"held"`
	// Erased lists messages of earlier erasure requests that nothing
	// keeps any more (erased by this run; would be, in a dry run).
	Erased []Erased `json:"erased,omitempty"`
	// Failed lists messages a real run could not dispose or erase, and why
	// (they are tried again by the next run).
	Failed []Failure `json:"failed,omitempty"`
	// ObjectsDeleted counts objects kept by a lock after their message
	// was disposed, deleted now that the lock has expired.
	ObjectsDeleted int `json:"objects_deleted"`
	// Locks is what the run changed in S3 Object Locks.
	Locks LockChanges `json:"locks"`
}

// Failure is a message a run could not dispose or erase.
type Failure struct {
	Seq uint64
	Err error
}

// MarshalJSON writes {"seq": n, "error": "..."}.
func (f Failure) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Seq uint64 `json:"seq"`
		Err string `json:"error"`
	}{f.Seq, f.Err.Error()})
}

// batchSize bounds the disposals made under one write lock of
// retention.db (so a hold placed meanwhile waits at most one batch).
const batchSize = 256

// Run applies the policy: it disposes every active message whose retention
// has ended and that no active hold covers, finishes erasures that a hold
// or an obligation had deferred, deletes objects whose lock has expired
// since their message was disposed, and brings every message object's
// S3 Object Lock in line with the policy and the holds.
//
// A dry run changes nothing and lists exactly what a real run at the same
// instant would dispose and erase: both take their decisions from the
// same evaluation. Each disposal is audited before it is made (fail
// closed) and asks the holds again at the last moment (archive.Dispose).
func (m *Manager) Run(ctx context.Context, c Caller, dryRun bool) (*RunReport, error) {
	if !dryRun && m.opts.Archive == nil {
		return nil, ErrNoArchive
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	now := m.now()
	rep := &RunReport{DryRun: dryRun, Now: now}
	if err := m.syncLedger(ctx); err != nil {
		return rep, err
	}
	if !dryRun {
		if err := m.RecordPending(ctx); err != nil {
			return rep, err
		}
	}
	e, err := m.evaluator(ctx)
	if err != nil {
		return rep, err
	}
	if e.fullText && m.opts.Archive != nil {
		if err := m.opts.Archive.FlushSearch(ctx); err != nil {
			return rep, fmt.Errorf("retention: full-text index: %w", err)
		}
	}

	// Erasures deferred by a hold or an obligation, first: what they
	// erase, they erase as the request asked (kind erase).
	if err := m.deferredErasures(ctx, c, e, now, dryRun, rep); err != nil {
		return rep, err
	}

	var batch []Disposal
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := m.disposeBatch(ctx, c, batch, rep)
		batch = batch[:0]
		if err != nil {
			return err
		}
		return sleepCtx(ctx, batchGap)
	}
	// In a dry run, the deferred erasures above did not happen: what they
	// would erase is not disposed as well.
	erasing := map[uint64]bool{}
	for _, x := range rep.Erased {
		erasing[x.Seq] = true
	}
	err = e.each(ctx, m.ix, cond{sql: "1"}, 0, func(st *status) error {
		if erasing[st.Seq] {
			return nil
		}
		rep.Checked++
		exp, ok := st.expiry(&m.opts.Policy)
		if !ok || now.Before(exp) {
			return nil
		}
		if st.Hold >= 0 {
			rep.Held++
			return nil
		}
		d := Disposal{Seq: st.Seq, Rule: st.rule(&m.opts.Policy).Name, Expired: exp}
		if dryRun {
			rep.Disposed = append(rep.Disposed, d)
			return nil
		}
		if batch = append(batch, d); len(batch) == batchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil || dryRun {
		return rep, err
	}
	if len(rep.Disposed) > 0 || len(rep.Erased) > 0 || m.opts.Archive.Index().ScrubPending() {
		// What disposed messages leave must not linger: their full-text
		// entries (FTS4 keeps them until segments merge), the index's
		// write-ahead log and old page images (archive.Dispose scrubs
		// after erasures only). Once per run, and again in the next run
		// while a scrub that readers blocked is pending.
		if err := m.opts.Archive.Index().PurgeText(ctx); err != nil {
			return rep, err
		}
	}
	n, err := m.sweepKept(ctx)
	rep.ObjectsDeleted = n
	if err != nil {
		return rep, err
	}
	lc, err := m.reconcileLocks(ctx)
	rep.Locks = lc
	return rep, err
}

// disposeBatch disposes a batch under the write lock of retention.db: no
// hold can be placed between the evaluation's last check (archive.Dispose
// asks Held) and the tombstone's commit.
func (m *Manager) disposeBatch(ctx context.Context, c Caller, batch []Disposal, rep *RunReport) error {
	tx, end, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	results := make([]error, len(batch))
	var auditErr error
	var mu sync.Mutex
	m.parallel(len(batch), func(i int) {
		d := &batch[i]
		ev := audit.Event{Action: audit.ActionDispose, Outcome: audit.OutcomeSuccess, Actor: c.Actor, Source: c.Source,
			Target:  audit.Target{Ledger: fmt.Sprint(d.Seq), Policy: d.Rule},
			Details: audit.Details{Count: 1, Note: "retention ended " + d.Expired.Format(time.RFC3339)}}
		if _, err := m.opts.Audit.Record(ctx, ev); err != nil {
			mu.Lock()
			auditErr = err
			mu.Unlock()
			results[i] = errSkipped
			return
		}
		fields := map[string]string{"policy": d.Rule, "expired": d.Expired.Format(time.RFC3339)}
		if b := m.opts.Policy.ruleNamed(d.Rule).Basis; b != "" {
			fields["basis"] = b
		}
		res, err := m.opts.Archive.Dispose(ctx, d.Seq, ledger.KindDispose, fields)
		if err != nil {
			m.auditFailure(ctx, ev, err)
			results[i] = err
			return
		}
		d.Tombstone, d.ObjectKept = res.Tombstone, res.ObjectKept
	})
	for i := range batch {
		err := results[i]
		switch {
		case err == nil:
			rep.Disposed = append(rep.Disposed, batch[i])
			if batch[i].ObjectKept {
				if err := m.recordKept(ctx, tx, batch[i].Seq); err != nil {
					return err
				}
			}
		case errors.Is(err, errSkipped):
		case errors.Is(err, archive.ErrHeld):
			rep.Held++ // a hold placed after the evaluation
		case errors.Is(err, archive.ErrGone):
		default:
			rep.Failed = append(rep.Failed, Failure{Seq: batch[i].Seq, Err: err})
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if auditErr != nil {
		return fmt.Errorf("retention: audit log: %w (disposal stopped)", auditErr)
	}
	return nil
}

var errSkipped = errors.New("skipped")

func (p *Policy) ruleNamed(name string) *Rule {
	for i := range p.Rules {
		if p.Rules[i].Name == name {
			return &p.Rules[i]
		}
	}
	return &p.Default
}

// parallel runs fn(0..n-1) on the Manager's workers.
func (m *Manager) parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(m.opts.Workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// recordKept notes a message object an Object Lock kept after its message
// was disposed or erased, with when the lock ends.
func (m *Manager) recordKept(ctx context.Context, q querier, seq uint64) error {
	var object string
	var until int64
	err := q.QueryRowContext(ctx, `SELECT object, retain_until FROM locks WHERE seq = ?`, int64(seq)).Scan(&object, &until)
	if errors.Is(err, sql.ErrNoRows) {
		row, err := m.messageObject(ctx, seq)
		if err != nil {
			return err
		}
		object = row
	} else if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if m.locker != nil {
		if lk, err := m.locker.GetLock(ctx, object); err == nil && lk.RetainUntil.Unix() > until {
			until = lk.RetainUntil.Unix()
		}
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO kept(seq, object, until) VALUES(?, ?, ?) ON CONFLICT(seq) DO UPDATE SET until = excluded.until`,
		int64(seq), object, until); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	return nil
}

func (m *Manager) messageObject(ctx context.Context, seq uint64) (string, error) {
	var object string
	if err := m.ix.QueryRowContext(ctx, `SELECT object FROM messages WHERE seq = ?`, int64(seq)).Scan(&object); err != nil {
		return "", fmt.Errorf("retention: message %d: %w", seq, err)
	}
	return object, nil
}

// sweepKept deletes the objects kept by a lock whose lock has ended.
func (m *Manager) sweepKept(ctx context.Context) (int, error) {
	rows, err := m.db.QueryContext(ctx, `SELECT seq, object FROM kept WHERE until <= ? ORDER BY seq`, m.now().Unix())
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	type k struct {
		seq    int64
		object string
	}
	var ks []k
	for rows.Next() {
		var x k
		if err := rows.Scan(&x.seq, &x.object); err != nil {
			rows.Close()
			return 0, fmt.Errorf("retention: %w", err)
		}
		ks = append(ks, x)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	n := 0
	for _, x := range ks {
		err := m.opts.Objects.Delete(ctx, x.object)
		switch {
		case err == nil || errors.Is(err, objstore.ErrNotExist):
			if err == nil {
				n++
			}
			if _, err := m.db.ExecContext(ctx, `DELETE FROM kept WHERE seq = ?`, x.seq); err != nil {
				return n, fmt.Errorf("retention: %w", err)
			}
		case errors.Is(err, objstore.ErrLocked):
			// Still locked (a clock ahead of the store's, or a lock
			// extended by hand): look again at its end.
			until := m.now().Add(24 * time.Hour).Unix()
			if m.locker != nil {
				if lk, err := m.locker.GetLock(ctx, x.object); err == nil && lk.RetainUntil.After(m.now()) {
					until = lk.RetainUntil.Unix()
				}
			}
			if _, err := m.db.ExecContext(ctx, `UPDATE kept SET until = ? WHERE seq = ?`, until, x.seq); err != nil {
				return n, fmt.Errorf("retention: %w", err)
			}
		default:
			m.lg.Warn("retention: object kept by an expired lock not deleted; retried by the next run", "object", x.object, "err", err)
		}
	}
	return n, nil
}
