package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/audit"
)

// ErasureRequest is a data subject's request to erase their mail (GDPR
// Art. 17).
type ErasureRequest struct {
	// Subject is the data subject's address: every message in which it
	// appears as sender (From field, envelope sender), recipient (To, Cc,
	// envelope recipients including Bcc) or custodian is erased, unless
	// something keeps it.
	Subject string `json:"subject,omitempty"`
	// Reason is recorded in the ledger's tombstones and in the audit log,
	// for ever: a reference such as "GDPR request 2026-113", never the
	// address or other personal data (a reason containing the address is
	// refused).
	Reason string `json:"reason,omitempty"`
	// DryRun reports what would be erased and kept, and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ErasureReport is the outcome of an erasure request.
type ErasureReport struct {
	ID     string    `json:"id,omitempty"` // the request id, in each tombstone ("request")
	DryRun bool      `json:"dry_run,omitempty"`
	Erased []Erased  `json:"erased,omitempty"`
	Kept   []Kept    `json:"kept,omitempty"`
	Failed []Failure `json:"failed,omitempty"`
}

// MessageInfo identifies a message in a report (read before erasure: the
// index forgets it afterwards).
type MessageInfo struct {
	Seq     uint64    `json:"seq"`
	Date    time.Time `json:"date,omitzero"` // Date field; zero when missing
	From    string    `json:"from,omitempty"`
	Subject string    `json:"subject,omitempty"`
}

// Erased is a message erased (or, in a dry run, that would be).
type Erased struct {
	MessageInfo
	Tombstone uint64 `json:"tombstone"` // the erase entry's seq (zero in a dry run)
	// How says how: the key object destroyed and the message object
	// deleted, or the object kept by an S3 Object Lock, unreadable.
	How string `json:"how,omitempty"`
}

// Kept is a message an erasure request does not erase, and why.
type Kept struct {
	MessageInfo
	// Why, in words, with the GDPR article: a hold (Art. 17(3)(e)) or a
	// retention obligation (Art. 17(3)(b)).
	Why string `json:"why,omitempty"`
	// Hold is the covering hold's case, or Rule the obligation's rule,
	// and Until when the obligation ends (zero: for ever).
	Hold  string    `json:"hold,omitempty"`
	Rule  string    `json:"rule,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// keeps says whether something keeps a message from erasure, and why.
func (m *Manager) keeps(e *evaluator, st *status, now time.Time) (Kept, bool) {
	k := Kept{MessageInfo: MessageInfo{Seq: st.Seq}}
	if st.Hold >= 0 {
		h := e.holds[st.Hold]
		k.Hold = h.Case
		k.Why = fmt.Sprintf("litigation hold of case %s (hold %s): kept while the hold is active (GDPR Art. 17(3)(e))", h.Case, h.ID)
		return k, true
	}
	r := st.rule(&m.opts.Policy)
	if r.Erasable {
		return k, false
	}
	exp, ok := st.expiry(&m.opts.Policy)
	if ok && !now.Before(exp) {
		return k, false
	}
	k.Rule, k.Until = r.Name, exp
	basis := ""
	if r.Basis != "" {
		basis = " (" + r.Basis + ")"
	}
	if ok {
		k.Why = fmt.Sprintf("retention obligation of rule %s%s until %s (GDPR Art. 17(3)(b))", r.Name, basis, exp.Format(time.DateOnly))
	} else {
		k.Why = fmt.Sprintf("retention obligation of rule %s%s, for ever (GDPR Art. 17(3)(b))", r.Name, basis)
	}
	return k, true
}

// Erase executes (or, with DryRun, plans) an erasure request. Each message
// is audited before it is erased (fail closed); holds are asked again at
// the last moment (archive.Dispose). Kept messages are remembered: a later
// run erases them once nothing keeps them.
func (m *Manager) Erase(ctx context.Context, c Caller, req ErasureRequest) (*ErasureReport, error) {
	subject := strings.ToLower(strings.TrimSpace(req.Subject))
	if err := CheckAddress(subject); err != nil {
		return nil, err
	}
	reason := strings.TrimSpace(req.Reason)
	if reason == "" {
		return nil, errors.New("retention: an erasure needs a reason (a request reference; never personal data)")
	}
	if err := checkText("reason", reason, 500); err != nil {
		return nil, err
	}
	if strings.Contains(strings.ToLower(reason), subject) {
		return nil, errors.New("retention: the reason holds the subject's address, and the ledger keeps it for ever: give a request reference instead")
	}
	if !req.DryRun && m.opts.Archive == nil {
		return nil, ErrNoArchive
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	rep := &ErasureReport{ID: id.String(), DryRun: req.DryRun}
	if err := m.syncLedger(ctx); err != nil {
		return nil, err
	}
	e, err := m.evaluator(ctx)
	if err != nil {
		return nil, err
	}
	if e.fullText && m.opts.Archive != nil {
		if err := m.opts.Archive.FlushSearch(ctx); err != nil {
			return nil, fmt.Errorf("retention: full-text index: %w", err)
		}
	}
	now := m.now()
	var targets []status
	err = e.each(ctx, m.ix, subjectCond(subject), 0, func(st *status) error {
		if k, keep := m.keeps(e, st, now); keep {
			info, err := m.info(ctx, st.Seq)
			if err != nil {
				return err
			}
			k.MessageInfo = info
			rep.Kept = append(rep.Kept, k)
			return nil
		}
		targets = append(targets, *st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if req.DryRun {
		for _, st := range targets {
			info, err := m.info(ctx, st.Seq)
			if err != nil {
				return nil, err
			}
			rep.Erased = append(rep.Erased, Erased{MessageInfo: info, How: "would be erased: key object destroyed, message object deleted"})
		}
		// A dry run shows which messages involve the address: audited
		// as the search it is.
		if _, err := m.opts.Audit.Record(ctx, audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess, Actor: c.Actor, Source: c.Source,
			Details: audit.Details{Query: subject, Count: int64(len(rep.Erased) + len(rep.Kept)),
				Note: fmt.Sprintf("erasure dry run %s: %d would be erased, %d kept", rep.ID, len(rep.Erased), len(rep.Kept))}}); err != nil {
			return nil, fmt.Errorf("retention: audit log: %w (nothing is reported)", err)
		}
		return rep, nil
	}
	// The request and what it must leave, then the messages, a batch
	// at a time (a hold change waits at most one batch).
	tx, end, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer end()
	if _, err := tx.ExecContext(ctx, `INSERT INTO erasures(id, reason, requested_at, requested_by) VALUES(?, ?, ?, ?)`,
		rep.ID, reason, now.UnixNano(), c.Actor.User); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	for _, k := range rep.Kept {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO deferred(request, seq) VALUES(?, ?)`, rep.ID, int64(k.Seq)); err != nil {
			return nil, fmt.Errorf("retention: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	end()
	for len(targets) > 0 {
		n := min(len(targets), batchSize)
		erased, failed, err := m.eraseBatch(ctx, c, targets[:n], rep.ID, reason, subject)
		rep.Erased = append(rep.Erased, erased...)
		rep.Failed = append(rep.Failed, failed...)
		if err != nil {
			return rep, err
		}
		if targets = targets[n:]; len(targets) > 0 {
			if err := sleepCtx(ctx, batchGap); err != nil {
				return rep, err
			}
		}
	}
	if len(rep.Erased) > 0 {
		// The erased messages' blind tokens out of the full-text index's
		// older segments, once per request.
		if err := m.opts.Archive.Index().PurgeText(ctx); err != nil {
			return rep, err
		}
	}
	if _, err := m.opts.Audit.Record(ctx, audit.Event{Action: audit.ActionErase, Outcome: audit.OutcomeSuccess, Actor: c.Actor, Source: c.Source,
		Details: audit.Details{Query: subject, Count: int64(len(rep.Erased)),
			Note: fmt.Sprintf("erasure request %s: %d erased, %d kept, %d failed; reason: %s", rep.ID, len(rep.Erased), len(rep.Kept), len(rep.Failed), reason)}}); err != nil {
		return rep, fmt.Errorf("retention: audit log: %w (the erasure is done; its summary is not audited)", err)
	}
	return rep, nil
}

// eraseBatch erases a batch of one request's messages under the write
// lock, and updates the request's counts.
func (m *Manager) eraseBatch(ctx context.Context, c Caller, targets []status, request, reason, subject string) ([]Erased, []Failure, error) {
	tx, end, err := m.begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer end()
	erased, failed, err := m.eraseAll(ctx, tx, c, targets, request, reason, subject)
	for _, x := range erased {
		if _, err := tx.ExecContext(ctx, `DELETE FROM deferred WHERE seq = ? AND request = ?`, int64(x.Seq), request); err != nil {
			return erased, failed, fmt.Errorf("retention: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE erasures SET erased = erased + ? WHERE id = ?`, len(erased), request); err != nil {
		return erased, failed, fmt.Errorf("retention: %w", err)
	}
	if cerr := tx.Commit(); cerr != nil && err == nil {
		err = fmt.Errorf("retention: %w", cerr)
	}
	return erased, failed, err
}

// eraseAll erases targets under the write lock tx holds. A message a hold
// now covers (placed meanwhile) is left for the deferred list's next run.
func (m *Manager) eraseAll(ctx context.Context, tx *sql.Tx, c Caller, targets []status, request, reason, subject string) ([]Erased, []Failure, error) {
	out := make([]*Erased, len(targets))
	errs := make([]error, len(targets))
	var auditErr error
	var mu sync.Mutex
	infos := make([]MessageInfo, len(targets))
	for i := range targets {
		info, err := m.info(ctx, targets[i].Seq)
		if err != nil {
			return nil, nil, err
		}
		infos[i] = info
	}
	m.parallel(len(targets), func(i int) {
		seq := targets[i].Seq
		ev := audit.Event{Action: audit.ActionErase, Outcome: audit.OutcomeSuccess, Actor: c.Actor, Source: c.Source,
			Target:  audit.Target{Ledger: fmt.Sprint(seq)},
			Details: audit.Details{Count: 1, Query: subject, Note: "erasure request " + request}}
		if _, err := m.opts.Audit.Record(ctx, ev); err != nil {
			mu.Lock()
			auditErr = err
			mu.Unlock()
			errs[i] = errSkipped
			return
		}
		res, err := m.opts.Archive.Dispose(ctx, seq, ledger.KindErase, map[string]string{"request": request, "reason": reason})
		if err != nil {
			m.auditFailure(ctx, ev, err)
			errs[i] = err
			return
		}
		how := "key object destroyed, message object deleted"
		if res.ObjectKept {
			how = "key object destroyed; the message object stays, unreadable, until its S3 Object Lock ends"
		}
		out[i] = &Erased{MessageInfo: infos[i], Tombstone: res.Tombstone, How: how}
	})
	var erased []Erased
	var failed []Failure
	for i, e := range out {
		seq := targets[i].Seq
		switch err := errs[i]; {
		case e != nil:
			erased = append(erased, *e)
			if strings.HasPrefix(e.How, "key object destroyed;") {
				if err := m.recordKept(ctx, tx, seq); err != nil {
					return erased, failed, err
				}
			}
		case errors.Is(err, archive.ErrHeld), errors.Is(err, errSkipped):
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO deferred(request, seq) VALUES(?, ?)`, request, int64(seq)); err != nil {
				return erased, failed, fmt.Errorf("retention: %w", err)
			}
		case errors.Is(err, archive.ErrGone):
		default:
			failed = append(failed, Failure{Seq: seq, Err: err})
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO deferred(request, seq) VALUES(?, ?)`, request, int64(seq)); err != nil {
				return erased, failed, fmt.Errorf("retention: %w", err)
			}
		}
	}
	if auditErr != nil {
		return erased, failed, fmt.Errorf("retention: audit log: %w (erasure stopped; the rest is erased by the next run)", auditErr)
	}
	return erased, failed, nil
}

// info reads what identifies a message in a report.
func (m *Manager) info(ctx context.Context, seq uint64) (MessageInfo, error) {
	i := MessageInfo{Seq: seq}
	var date sql.NullInt64
	err := m.ix.QueryRowContext(ctx, `SELECT date, from_addr, subject FROM messages WHERE seq = ?`, int64(seq)).Scan(&date, &i.From, &i.Subject)
	if err != nil {
		return i, fmt.Errorf("retention: message %d: %w", seq, err)
	}
	if date.Valid {
		i.Date = time.Unix(date.Int64, 0).UTC()
	}
	return i, nil
}

// deferredErasures erases the messages earlier requests had to keep,
// once nothing keeps them any more.
func (m *Manager) deferredErasures(ctx context.Context, c Caller, e *evaluator, now time.Time, dryRun bool, rep *RunReport) error {
	rows, err := m.db.QueryContext(ctx, `SELECT d.request, d.seq, r.reason FROM deferred d JOIN erasures r ON r.id = d.request ORDER BY d.request, d.seq`)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	type def struct {
		request, reason string
		seq             uint64
	}
	var ds []def
	for rows.Next() {
		var d def
		var seq int64
		if err := rows.Scan(&d.request, &seq, &d.reason); err != nil {
			rows.Close()
			return fmt.Errorf("retention: %w", err)
		}
		d.seq = uint64(seq)
		ds = append(ds, d)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if len(ds) == 0 {
		return nil
	}
	// Evaluate the deferred messages together (a few statements, not one
	// per message), then group those nothing keeps any more by request.
	stats := map[uint64]*status{}
	for i := 0; i < len(ds); i += 500 {
		var args []any
		for _, d := range ds[i:min(i+500, len(ds))] {
			args = append(args, int64(d.seq))
		}
		err := e.each(ctx, m.ix, cond{`m.seq IN (` + placeholders(len(args)) + `)`, args}, 0, func(st *status) error {
			x := *st
			stats[st.Seq] = &x
			return nil
		})
		if err != nil {
			return err
		}
	}
	free := map[string][]status{}
	var order []string
	taken := map[uint64]bool{} // a message two requests named is erased once, for the first
	for _, d := range ds {
		if taken[d.seq] {
			continue
		}
		taken[d.seq] = true
		st := stats[d.seq]
		if st == nil {
			// Gone already (disposed, or erased by another request).
			if !dryRun {
				if _, err := m.db.ExecContext(ctx, `DELETE FROM deferred WHERE seq = ?`, int64(d.seq)); err != nil {
					return fmt.Errorf("retention: %w", err)
				}
			}
			continue
		}
		if _, keep := m.keeps(e, st, now); keep {
			continue
		}
		if len(free[d.request]) == 0 {
			order = append(order, d.request)
		}
		free[d.request] = append(free[d.request], *st)
	}
	reasons := map[string]string{}
	for _, d := range ds {
		reasons[d.request] = d.reason
	}
	for _, req := range order {
		sts := free[req]
		if dryRun {
			for _, st := range sts {
				info, err := m.info(ctx, st.Seq)
				if err != nil {
					return err
				}
				rep.Erased = append(rep.Erased, Erased{MessageInfo: info, How: "would be erased (request " + req + ")"})
			}
			continue
		}
		for len(sts) > 0 {
			n := min(len(sts), batchSize)
			erased, failed, err := m.eraseBatch(ctx, c, sts[:n], req, reasons[req], "")
			rep.Erased = append(rep.Erased, erased...)
			rep.Failed = append(rep.Failed, failed...)
			if err != nil {
				return err
			}
			sts = sts[n:]
		}
	}
	return nil
}
