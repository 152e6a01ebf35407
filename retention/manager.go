package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/imapview/search"
)

// Ledger event types of hold changes (ledger.KindEvent entries).
const (
	EventHoldPlace   = "hold.place"
	EventHoldRelease = "hold.release"
)

// Options configure a Manager.
type Options struct {
	// Path is retention.db (created if missing); IndexPath the archive's
	// index database (archive.Store.Index().Path()), read only.
	Path, IndexPath string
	// Archive disposes and erases, and records hold events in the ledger.
	// Nil when another process (cairn serve) holds the archive: holds can
	// still be placed and released, and take effect at once (every
	// disposal asks retention.db); their ledger events wait in
	// retention.db until a process with the archive records them.
	// Disposal and erasure need it.
	Archive *archive.Store
	// Objects is the object store: Object Lock (objstore.Locker), and
	// deleting objects a lock kept after disposal.
	Objects objstore.Store
	// SearchKey is the archive's search key (hold queries with BODY/TEXT).
	SearchKey []byte
	// Audit records every hold change, disposal and erasure, before it is
	// made (fail closed). Nil opens the Manager for reading only (lists,
	// explain, lock verification): every change then fails.
	Audit audit.Recorder
	// Policy is the retention policy.
	Policy Policy
	// LockMode is the S3 Object Lock retention mode set on message
	// objects; empty sets no retention dates (legal holds still follow
	// holds). Used only when Objects is an objstore.Locker on a bucket
	// with Object Lock enabled.
	LockMode objstore.LockMode
	// Now is the clock (tests advance a fake one); default time.Now.
	Now func() time.Time
	// Workers is how many disposals, and lock changes, run at once
	// (default 4): concurrent disposals share the archive's group commits.
	Workers int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Caller is who asks for an operation: recorded in its audit event. The
// CLI passes the operator, the HTTP API the authenticated user.
type Caller struct {
	Actor  audit.Actor
	Source audit.Source
}

// SystemCaller is the retention schedule of cairn serve.
var SystemCaller = Caller{Actor: audit.Actor{User: "cairn", Role: "system"}, Source: audit.Source{Service: "retention"}}

// Manager applies the retention policy and the holds to an archive: it is
// the only caller of archive.Store.Dispose. Its methods are safe for
// concurrent use; it is what the CLI and the HTTP API call.
type Manager struct {
	opts   Options
	db     *sql.DB // retention.db
	ix     *sql.DB // the index, read only (search.OpenReader)
	locker objstore.Locker
	lg     *slog.Logger

	heldCache heldCache

	runMu   sync.Mutex // one run (or lock sync) at a time in this process
	writeMu sync.Mutex // in this process, write transactions queue fairly
}

// begin starts a write transaction on retention.db. Its lock orders hold
// changes against disposals: across processes by SQLite's write lock
// (BEGIN IMMEDIATE), fairly within this one by writeMu. end rolls back
// unless committed, and releases writeMu; call it when done (again is
// harmless).
func (m *Manager) begin(ctx context.Context) (tx *sql.Tx, end func(), err error) {
	m.writeMu.Lock()
	tx, err = m.db.BeginTx(ctx, nil)
	if err != nil {
		m.writeMu.Unlock()
		return nil, nil, fmt.Errorf("retention: %w", err)
	}
	var once sync.Once
	return tx, func() {
		once.Do(func() {
			tx.Rollback()
			m.writeMu.Unlock()
		})
	}, nil
}

// batchGap is the pause between two disposal batches: a hold change
// waiting in another process (SQLite's busy handler retries every 100 ms
// at most) gets the write lock in between.
const batchGap = 100 * time.Millisecond

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// noAudit refuses every event: a Manager opened without an audit log makes
// no change.
type noAudit struct{}

func (noAudit) Record(context.Context, audit.Event) (audit.Seq, error) {
	return 0, errors.New("retention: opened without an audit log, for reading only")
}

// ErrNoArchive is returned by operations that need the archive when the
// Manager was opened without it.
var ErrNoArchive = errors.New("retention: the archive is held by another cairn process (cairn serve): run this there (its HTTP API), or stop it")

// Open opens retention.db, rebuilds from the ledger any hold it lacks,
// and records in the ledger any hold change still waiting.
func Open(ctx context.Context, opts Options) (*Manager, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Audit == nil {
		opts.Audit = noAudit{}
	}
	if err := opts.Policy.Validate(); err != nil {
		return nil, err
	}
	switch opts.LockMode {
	case "", objstore.Governance, objstore.Compliance:
	default:
		return nil, fmt.Errorf("retention: lock mode %q: want GOVERNANCE or COMPLIANCE", opts.LockMode)
	}
	db, _, err := openDB(opts.Path)
	if err != nil {
		return nil, err
	}
	ix, err := search.OpenReader(opts.IndexPath, "", 4)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("retention: %w", err)
	}
	m := &Manager{opts: opts, db: db, ix: ix, lg: opts.Logger}
	if l, ok := opts.Objects.(objstore.Locker); ok {
		on, err := l.LockEnabled(ctx)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("retention: %w", err)
		}
		if on {
			m.locker = l
		}
	}
	if err := m.syncLedger(ctx); err != nil {
		m.Close()
		return nil, err
	}
	if err := m.RecordPending(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close closes the databases.
func (m *Manager) Close() error {
	err := m.ix.Close()
	if e := m.db.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

// Locking reports whether message objects get S3 Object Locks.
func (m *Manager) Locking() bool { return m.locker != nil }

// Policy returns the policy in force.
func (m *Manager) Policy() *Policy { return &m.opts.Policy }

func (m *Manager) now() time.Time { return m.opts.Now().UTC() }

// evaluator loads the active holds and builds an evaluator.
func (m *Manager) evaluator(ctx context.Context) (*evaluator, error) {
	holds, err := loadHolds(ctx, m.db, false)
	if err != nil {
		return nil, err
	}
	return newEvaluator(&m.opts.Policy, holds, m.opts.SearchKey)
}

// Held implements archive.HoldChecker: whether an active hold covers
// message seq. It fails (and so refuses the disposal) when it cannot be
// sure: a hold with BODY or TEXT keys and a message whose words are not
// yet in the full-text index.
func (m *Manager) Held(ctx context.Context, seq uint64) (bool, string, error) {
	return m.heldCache.held(ctx, m.db, m.ix, m.opts.SearchKey, seq)
}

var _ archive.HoldChecker = (*Manager)(nil)

// heldCache answers Held for many messages in a row (a disposal run asks
// for each) without evaluating every hold over the whole index each time:
// the search conditions a hold may use are set-based SQL, as costly for
// one message as for all of them. It keeps, per active hold, the set of
// messages it covered when built, and trusts it for a message only while
// nothing that decides the answer can have changed: the same active holds,
// no delivery of that message since (a delivery adds custodians and
// recipients), and, for a hold with BODY or TEXT keys, the message's words
// already in the full-text index then. Otherwise it evaluates that message
// alone.
type heldCache struct {
	mu       sync.Mutex
	key      string  // the active holds' ids, in order
	delivery int64   // the last delivery seq when built
	ftsMark  int64   // the full-text index's mark when built
	sets     []*bits // per hold, the messages it covered
}

func (c *heldCache) held(ctx context.Context, db, ix *sql.DB, searchKey []byte, seq uint64) (bool, string, error) {
	holds, err := loadHolds(ctx, db, false)
	if err != nil || len(holds) == 0 {
		return false, "", err
	}
	e, err := newEvaluator(&Policy{}, holds, searchKey)
	if err != nil {
		return false, "", err
	}
	if e.fullText {
		ok, err := fullTextCurrent(ctx, ix, seq)
		if err != nil {
			return false, "", err
		}
		if !ok {
			return false, "", fmt.Errorf("retention: message %d is not yet in the full-text index, which a hold's query uses; retry shortly", seq)
		}
	}
	var key strings.Builder
	for _, h := range holds {
		key.WriteString(h.ID + " ")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.key != key.String() {
		if err := c.build(ctx, ix, e); err != nil {
			c.key = ""
			return false, "", err
		}
		c.key = key.String()
	}
	fresh := int64(seq) <= c.delivery && (!e.fullText || int64(seq) <= c.ftsMark)
	if fresh {
		var n int
		if err := ix.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE message = ? AND seq > ?`, int64(seq), c.delivery).Scan(&n); err != nil {
			return false, "", fmt.Errorf("retention: %w", err)
		}
		fresh = n == 0
	}
	if !fresh {
		hs, err := e.holdsOf(ctx, ix, seq)
		if err != nil || len(hs) == 0 {
			return false, "", err
		}
		return true, holdName(hs[0]), nil
	}
	for i, set := range c.sets {
		if set.has(seq) {
			return true, holdName(holds[i]), nil
		}
	}
	return false, "", nil
}

func (c *heldCache) build(ctx context.Context, ix *sql.DB, e *evaluator) error {
	// The marks first: whatever is committed after them is re-checked.
	var last sql.NullInt64
	if err := ix.QueryRowContext(ctx, `SELECT MAX(seq) FROM deliveries`).Scan(&last); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	c.delivery = -1
	if last.Valid {
		c.delivery = last.Int64
	}
	c.ftsMark = -1
	var v []byte
	if err := ix.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'fts_indexed'`).Scan(&v); err == nil {
		fmt.Sscan(string(v), &c.ftsMark)
	}
	c.sets = c.sets[:0]
	for i, hc := range e.holdConds {
		set := &bits{}
		rows, err := ix.QueryContext(ctx, `SELECT m.seq FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq
			WHERE m.state = 0 AND `+hc.sql, hc.args...)
		if err != nil {
			return fmt.Errorf("retention: hold %s: %w", e.holds[i].ID, err)
		}
		for rows.Next() {
			var seq int64
			if err := rows.Scan(&seq); err != nil {
				rows.Close()
				return fmt.Errorf("retention: hold %s: %w", e.holds[i].ID, err)
			}
			set.set(uint64(seq))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("retention: hold %s: %w", e.holds[i].ID, err)
		}
		c.sets = append(c.sets, set)
	}
	return nil
}

// bits is a set of message seqs.
type bits struct{ w []uint64 }

func (b *bits) set(i uint64) {
	for uint64(len(b.w)) <= i/64 {
		b.w = append(b.w, 0)
	}
	b.w[i/64] |= 1 << (i % 64)
}

func (b *bits) has(i uint64) bool { return i/64 < uint64(len(b.w)) && b.w[i/64]&(1<<(i%64)) != 0 }

func holdName(h *Hold) string { return fmt.Sprintf("case %s (hold %s)", h.Case, h.ID) }

// Checker is the archive.HoldChecker that cmd/cairn gives archive.Open,
// before any Manager exists: it reads retention.db and the index on first
// use. A missing retention.db is an error, not "no holds": a disposal
// refused is better than one that ignores a lost hold.
type Checker struct {
	path, indexPath string
	searchKey       []byte

	mu    sync.Mutex
	db    *sql.DB
	ix    *sql.DB
	cache heldCache
}

// NewChecker returns a Checker for retention.db at path and the index.
func NewChecker(path, indexPath string, searchKey []byte) *Checker {
	return &Checker{path: path, indexPath: indexPath, searchKey: searchKey}
}

var _ archive.HoldChecker = (*Checker)(nil)

// Held implements archive.HoldChecker.
func (c *Checker) Held(ctx context.Context, seq uint64) (bool, string, error) {
	c.mu.Lock()
	if c.db == nil {
		db, err := openDBReader(c.path)
		if err != nil {
			c.mu.Unlock()
			return false, "", fmt.Errorf("%w (holds unknown: open the retention manager first)", err)
		}
		ix, err := search.OpenReader(c.indexPath, "", 2)
		if err != nil {
			db.Close()
			c.mu.Unlock()
			return false, "", fmt.Errorf("retention: %w", err)
		}
		c.db, c.ix = db, ix
	}
	db, ix := c.db, c.ix
	c.mu.Unlock()
	return c.cache.held(ctx, db, ix, c.searchKey, seq)
}

// Close closes the databases, if opened.
func (c *Checker) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil {
		return nil
	}
	err := c.ix.Close()
	if e := c.db.Close(); e != nil && err == nil {
		err = e
	}
	c.db, c.ix = nil, nil
	return err
}

// syncLedger reads the hold events the ledger gained since the last sync
// (from the index's copy of the ledger) and applies any that retention.db
// lacks: a lost or restored-from-backup retention.db gets its holds back
// before anything is disposed (invariant 3: the object store alone is
// enough).
func (m *Manager) syncLedger(ctx context.Context) error {
	cur, err := getMeta(ctx, m.db, "ledger_synced")
	if err != nil {
		return err
	}
	after := int64(-1)
	if cur != "" {
		after, _ = strconv.ParseInt(cur, 10, 64)
	}
	rows, err := m.ix.QueryContext(ctx, `SELECT seq, line FROM entries WHERE seq > ? AND kind = ? ORDER BY seq`, after, ledger.KindEvent)
	if err != nil {
		return fmt.Errorf("retention: read hold events: %w", err)
	}
	type ev struct {
		seq int64
		e   *ledger.Entry
	}
	var evs []ev
	last := after
	for rows.Next() {
		var seq int64
		var line []byte
		if err := rows.Scan(&seq, &line); err != nil {
			rows.Close()
			return fmt.Errorf("retention: read hold events: %w", err)
		}
		last = seq
		e, err := ledger.ParseEntry(line)
		if err != nil {
			rows.Close()
			return fmt.Errorf("retention: ledger entry %d: %w", seq, err)
		}
		if e.Event != nil && (e.Event.Type == EventHoldPlace || e.Event.Type == EventHoldRelease) {
			evs = append(evs, ev{seq, e})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("retention: read hold events: %w", err)
	}
	if last == after {
		return nil
	}
	tx, end, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	restored := 0
	for _, x := range evs {
		n, err := applyHoldEvent(ctx, tx, x.seq, x.e.Event)
		if err != nil {
			return fmt.Errorf("retention: ledger entry %d: %w", x.seq, err)
		}
		restored += n
	}
	if err := setMeta(ctx, tx, "ledger_synced", strconv.FormatInt(last, 10)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	if restored > 0 {
		m.lg.Warn("retention: hold changes restored from the ledger into retention.db", "changes", restored)
	}
	return nil
}

// applyHoldEvent applies one hold event of the ledger; it returns 1 when
// retention.db lacked it.
func applyHoldEvent(ctx context.Context, tx *sql.Tx, seq int64, ev *ledger.Event) (int, error) {
	f := ev.Fields
	id := f["id"]
	if id == "" {
		return 0, errors.New("hold event without an id")
	}
	var placeEntry, releaseEntry sql.NullInt64
	var released sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT place_entry, released_at, release_entry FROM holds WHERE id = ?`, id).Scan(&placeEntry, &released, &releaseEntry)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	switch ev.Type {
	case EventHoldPlace:
		if exists {
			if !placeEntry.Valid {
				_, err := tx.ExecContext(ctx, `UPDATE holds SET place_entry = ? WHERE id = ?`, seq, id)
				return 0, err
			}
			return 0, nil
		}
		h, err := holdFromEvent(f)
		if err != nil {
			return 0, err
		}
		h.PlaceEntry, h.ReleaseEntry = seq, -1
		return 1, insertHold(ctx, tx, h)
	case EventHoldRelease:
		if !exists {
			return 0, fmt.Errorf("release of hold %s, which the ledger never placed", id)
		}
		if released.Valid {
			if !releaseEntry.Valid {
				_, err := tx.ExecContext(ctx, `UPDATE holds SET release_entry = ? WHERE id = ?`, seq, id)
				return 0, err
			}
			return 0, nil
		}
		at, _ := time.Parse(time.RFC3339Nano, f["at"])
		_, err := tx.ExecContext(ctx, `UPDATE holds SET released_at = ?, released_by = ?, release_reason = ?, release_entry = ? WHERE id = ?`,
			at.UnixNano(), f["by"], f["reason"], seq, id)
		return 1, err
	}
	return 0, nil
}

// placeFields and releaseFields are a hold change as ledger event fields:
// everything needed to rebuild retention.db's holds from the ledger.
func placeFields(h *Hold) map[string]string {
	f := map[string]string{
		"id": h.ID, "case": h.Case, "reason": h.Reason, "by": h.PlacedBy,
		"at": h.PlacedAt.UTC().Format(time.RFC3339Nano),
	}
	if len(h.Custodians) > 0 {
		f["custodians"] = strings.Join(h.Custodians, ",")
	}
	if !h.From.IsZero() {
		f["from"] = h.From.Format(time.DateOnly)
	}
	if !h.To.IsZero() {
		f["to"] = h.To.Format(time.DateOnly)
	}
	if h.Query != "" {
		f["query"] = h.Query
	}
	return f
}

func releaseFields(h *Hold) map[string]string {
	return map[string]string{"id": h.ID, "case": h.Case, "reason": h.ReleaseReason, "by": h.ReleasedBy,
		"at": h.ReleasedAt.UTC().Format(time.RFC3339Nano)}
}

func holdFromEvent(f map[string]string) (*Hold, error) {
	h := &Hold{ID: f["id"], PlacedBy: f["by"]}
	h.Case, h.Reason, h.Query = f["case"], f["reason"], f["query"]
	if c := f["custodians"]; c != "" {
		h.Custodians = strings.Split(c, ",")
	}
	var err error
	if s := f["from"]; s != "" {
		if h.From, err = time.Parse(time.DateOnly, s); err != nil {
			return nil, fmt.Errorf("hold %s: from: %w", h.ID, err)
		}
	}
	if s := f["to"]; s != "" {
		if h.To, err = time.Parse(time.DateOnly, s); err != nil {
			return nil, fmt.Errorf("hold %s: to: %w", h.ID, err)
		}
	}
	if h.PlacedAt, err = time.Parse(time.RFC3339Nano, f["at"]); err != nil {
		return nil, fmt.Errorf("hold %s: at: %w", h.ID, err)
	}
	return h, nil
}

// RecordPending records in the ledger the hold changes that wait for it
// (made while another process held the archive). Without the archive it
// does nothing.
func (m *Manager) RecordPending(ctx context.Context) error {
	if m.opts.Archive == nil {
		return nil
	}
	all, err := loadHolds(ctx, m.db, true)
	if err != nil {
		return err
	}
	for _, h := range all {
		if h.PlaceEntry < 0 {
			seq, err := m.opts.Archive.AppendEvent(ctx, ledger.Event{Type: EventHoldPlace, Fields: placeFields(h)})
			if err != nil {
				return fmt.Errorf("retention: record hold %s in the ledger: %w", h.ID, err)
			}
			if _, err := m.db.ExecContext(ctx, `UPDATE holds SET place_entry = ? WHERE id = ?`, int64(seq), h.ID); err != nil {
				return fmt.Errorf("retention: %w", err)
			}
		}
		if h.Released && h.ReleaseEntry < 0 {
			seq, err := m.opts.Archive.AppendEvent(ctx, ledger.Event{Type: EventHoldRelease, Fields: releaseFields(h)})
			if err != nil {
				return fmt.Errorf("retention: record release of hold %s in the ledger: %w", h.ID, err)
			}
			if _, err := m.db.ExecContext(ctx, `UPDATE holds SET release_entry = ? WHERE id = ?`, int64(seq), h.ID); err != nil {
				return fmt.Errorf("retention: %w", err)
			}
		}
	}
	return nil
}
