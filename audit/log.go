package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver
	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// Recorder records audit events. The IMAP view, retention, export and the
// CLI each hold one.
type Recorder interface {
	// Record appends ev to the audit chain and returns its seq. It returns
	// only once the event is committed to the local chain (durable in the
	// audit database), so a nil error is a receipt. On error nothing was
	// committed and the caller must refuse the access it was about to grant
	// (fail closed). If ctx ends first, Record returns ctx.Err() and the
	// event may or may not have been committed. Safe for concurrent use;
	// concurrent calls share one transaction and one fsync (group commit).
	Record(ctx context.Context, ev Event) (Seq, error)
}

// Sentinel errors.
var (
	// ErrClosed: the Log was closed.
	ErrClosed = errors.New("audit: log closed")
	// ErrReadOnly: Record on a Log opened with ReadOnly.
	ErrReadOnly = errors.New("audit: log opened read-only")
	// ErrTampered: Open found the chain's last entry inconsistent, or a
	// sealed object disagrees with the database. Run Verify for details.
	ErrTampered = errors.New("audit: chain is damaged")
)

// Options configure a Log. Zero durations and sizes take the defaults named.
type Options struct {
	// Path is the SQLite file of the audit chain (e.g. <data>/audit.db). It
	// is created if missing; it is never the message index's database.
	Path string
	// ReadOnly opens an existing database for Events and Verify only (the
	// CLI's tail and export while cairn serve runs): no Record, no sealing,
	// no sinks.
	ReadOnly bool

	// Origin names this chain in its checkpoints (SPEC: c2sp.org/tlog-checkpoint
	// origin line), e.g. "archive.example.com/cairn/audit". Required. It is
	// stored in the database on first open and must not change after.
	Origin string
	// Store receives segments and checkpoints. Nil disables sealing (tests,
	// or a deployment that accepts SQLite plus SIEM copies only).
	Store objstore.Store
	// Signer signs checkpoints (the archive's ed25519 note signer). Required
	// when Store is set.
	Signer note.Signer
	// NoSealing, with Store, only brings a database that is behind the
	// store up to date at Open (see catchUp) and never seals: a CLI
	// process recording beside cairn serve, which seals.
	NoSealing bool

	// QueryKey is the HMAC-SHA256 key for search queries (at least 16
	// bytes). Required unless KeepQueries.
	QueryKey []byte
	// KeepQueries stores search queries in plain text. Queries may carry
	// personal data; enable only where that is lawful.
	KeepQueries bool

	// SegmentEvents is the most events in one segment (default 4096).
	SegmentEvents int
	// SegmentInterval: pending events are sealed at least this often
	// (default 1m), so the object store lags the database by at most this.
	SegmentInterval time.Duration
	// MaxBatch is the most events in one group commit (default 2048).
	MaxBatch int

	// Sinks receive every committed event. Names must be unique.
	Sinks []Sink
	// Delivery tunes every sink's pump.
	Delivery Delivery

	// Logger receives operational messages (sink failures, sealing
	// retries). Nil means slog.Default().
	Logger *slog.Logger
}

// Delivery tunes how committed events are pumped to each sink.
type Delivery struct {
	// BatchSize is the most events per Send (default 500).
	BatchSize int `yaml:"batch_size" mapstructure:"batch_size"`
	// MaxInFlight is the most events sent but not yet acknowledged before
	// the pump waits for acknowledgement (default 20000).
	MaxInFlight int `yaml:"max_in_flight" mapstructure:"max_in_flight"`
	// MinBackoff is the first retry delay after a failure (default 100ms);
	// each further failure doubles it, up to MaxBackoff (default 30s).
	// Retries never stop: no event is skipped.
	MinBackoff time.Duration `yaml:"min_backoff" mapstructure:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff" mapstructure:"max_backoff"`
	// AttemptTimeout bounds one Send or Sync (default 10s).
	AttemptTimeout time.Duration `yaml:"attempt_timeout" mapstructure:"attempt_timeout"`
	// PollInterval is how often an idle pump with unacknowledged events asks
	// its sink for acknowledgements (default 100ms).
	PollInterval time.Duration `yaml:"poll_interval" mapstructure:"poll_interval"`
}

func (d *Delivery) defaults() {
	def := func(v *time.Duration, x time.Duration) {
		if *v == 0 {
			*v = x
		}
	}
	if d.BatchSize == 0 {
		d.BatchSize = 500
	}
	if d.MaxInFlight == 0 {
		d.MaxInFlight = 20000
	}
	def(&d.MinBackoff, 100*time.Millisecond)
	def(&d.MaxBackoff, 30*time.Second)
	def(&d.AttemptTimeout, 10*time.Second)
	def(&d.PollInterval, 100*time.Millisecond)
}

// Validate checks the options and fills defaults.
func (o *Options) Validate() error {
	if o.Path == "" {
		return errors.New("audit: options: Path is required")
	}
	if o.Origin == "" {
		return errors.New("audit: options: Origin is required")
	}
	if err := objstore.ValidKey(CheckpointKey(o.Origin, 1)); err != nil {
		return fmt.Errorf("audit: options: origin %q does not make a valid object key: %w", o.Origin, err)
	}
	if o.ReadOnly {
		return nil
	}
	if o.Store != nil && o.Signer == nil {
		return errors.New("audit: options: Signer is required with Store")
	}
	if !o.KeepQueries && len(o.QueryKey) < 16 {
		return errors.New("audit: options: QueryKey of at least 16 bytes is required unless KeepQueries")
	}
	if o.SegmentEvents < 0 || o.MaxBatch < 0 || o.SegmentInterval < 0 {
		return errors.New("audit: options: negative size or interval")
	}
	if o.SegmentEvents == 0 {
		o.SegmentEvents = 4096
	}
	if o.SegmentInterval == 0 {
		o.SegmentInterval = time.Minute
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 2048
	}
	o.Delivery.defaults()
	if o.Delivery.BatchSize < 1 || o.Delivery.MaxInFlight < o.Delivery.BatchSize ||
		o.Delivery.MaxBackoff < o.Delivery.MinBackoff {
		return errors.New("audit: options: delivery: need 1 <= batch_size <= max_in_flight and min_backoff <= max_backoff")
	}
	names := map[string]bool{}
	for _, s := range o.Sinks {
		if names[s.Name()] {
			return fmt.Errorf("audit: options: two sinks named %q", s.Name())
		}
		names[s.Name()] = true
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Log is the audit chain: a SQLite database, its sealed copy in the object
// store, and the sink pumps. It implements Recorder.
type Log struct {
	opts Options
	wdb  *sql.DB // one connection: the committer, cursors, seals
	rdb  *sql.DB // readers: sinks, Events, the sealer

	reqs    chan *request
	closing chan struct{}
	stopped chan struct{} // closed when the committer has exited
	wg      sync.WaitGroup
	once    sync.Once

	head     atomic.Uint64 // last committed seq
	lastHash Hash          // committer-owned after Open

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at every commit

	sl     sealState
	pumps  []*pump
	cancel context.CancelFunc
}

var _ Recorder = (*Log)(nil)

type request struct {
	body   []byte
	time   int64
	action Action
	done   chan result
}

type result struct {
	seq Seq
	err error
}

const schema = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
	seq    INTEGER PRIMARY KEY,
	time   INTEGER NOT NULL, -- unix nanoseconds, for --since/--until
	action TEXT NOT NULL,
	hash   BLOB NOT NULL,    -- SHA-256(body)
	body   BLOB NOT NULL     -- the exact stored bytes (Entry.Bytes)
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE TABLE IF NOT EXISTS cursors(
	sink    TEXT PRIMARY KEY,
	seq     INTEGER NOT NULL, -- last seq the sink acknowledged
	updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS seals(
	last       INTEGER PRIMARY KEY, -- last seq of the segment = checkpoint size
	first      INTEGER NOT NULL,
	segment    TEXT NOT NULL,       -- object key
	checkpoint TEXT NOT NULL,       -- object key
	note       BLOB NOT NULL,       -- the signed checkpoint
	range      BLOB NOT NULL,       -- compact Merkle range hashes at size last
	sealed     INTEGER NOT NULL
);
`

// execBusyRetry runs q, retrying for up to 10 s while SQLite answers
// "database is locked" without waiting: when several processes open the
// log at once (concurrent `cairn cat`), the first statement on a fresh
// connection can meet SQLITE_BUSY before the busy timeout applies.
func execBusyRetry(db *sql.DB, q string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.Exec(q)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func dsn(path string, ro bool) string {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	q.Set("_journal_mode", "WAL")
	// synchronous=FULL: a committed transaction survives power loss, which
	// is what Record's receipt promises.
	q.Set("_synchronous", "FULL")
	if ro {
		q.Set("mode", "ro")
	} else {
		q.Set("_txlock", "immediate")
	}
	return sqlitefile.URI(path, q.Encode())
}

// Open opens (or creates) the audit chain described by opts, checks that
// its last entry is intact, and starts the committer, the sealer and one
// pump per sink. Close stops them.
func Open(opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &Log{opts: opts, closing: make(chan struct{}), stopped: make(chan struct{}), changed: make(chan struct{})}
	var err error
	if !opts.ReadOnly {
		if l.wdb, err = sql.Open("sqlite3", dsn(opts.Path, false)); err != nil {
			return nil, fmt.Errorf("audit: open %s: %w", opts.Path, err)
		}
		l.wdb.SetMaxOpenConns(1)
		if err = execBusyRetry(l.wdb, schema); err != nil {
			l.wdb.Close()
			return nil, fmt.Errorf("audit: open %s: schema: %w", opts.Path, err)
		}
		if err = l.checkOrigin(); err != nil {
			l.wdb.Close()
			return nil, err
		}
	}
	if l.rdb, err = sql.Open("sqlite3", dsn(opts.Path, opts.ReadOnly)); err != nil {
		l.closeDBs()
		return nil, fmt.Errorf("audit: open %s: %w", opts.Path, err)
	}
	l.rdb.SetMaxOpenConns(4 + len(opts.Sinks))
	if err := l.loadHead(); err != nil {
		l.closeDBs()
		return nil, err
	}
	if opts.ReadOnly {
		return l, nil
	}
	if err := l.loadSeal(); err != nil {
		l.closeDBs()
		return nil, err
	}
	if opts.Store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), catchUpTimeout)
		n, err := l.catchUp(ctx)
		cancel()
		switch {
		case errors.Is(err, ErrTampered):
			l.closeDBs()
			return nil, err
		case err != nil:
			// The store is down: go on, as the log does while sealing
			// fails (SQLite is the commit point). Only a database restored
			// from a backup while the store is down misses the catch-up.
			opts.Logger.Warn("audit: could not look for sealed segments beyond the database; going on", "err", err)
		}
		if n > 0 {
			opts.Logger.Warn("audit: the database was behind the sealed segments; restored the missing entries from the object store",
				"entries", n, "head", uint64(l.Head()))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.reqs = make(chan *request, opts.MaxBatch)
	l.wg.Add(1)
	go l.commitLoop()
	if opts.Store != nil && !opts.NoSealing {
		l.wg.Add(1)
		go l.sealLoop(ctx)
	}
	for _, s := range opts.Sinks {
		p, err := l.newPump(s)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.pumps = append(l.pumps, p)
		l.wg.Add(1)
		go p.run(ctx)
	}
	return l, nil
}

func (l *Log) closeDBs() {
	if l.wdb != nil {
		l.wdb.Close()
	}
	if l.rdb != nil {
		l.rdb.Close()
	}
}

func (l *Log) checkOrigin() error {
	var got string
	// Several processes may open a new database at once (cairn cat run in
	// parallel): the first one's origin wins, the others then compare.
	if _, err := l.wdb.Exec(`INSERT OR IGNORE INTO meta(key, value) VALUES('origin', ?)`, l.opts.Origin); err != nil {
		return fmt.Errorf("audit: open: record origin: %w", err)
	}
	err := l.wdb.QueryRow(`SELECT value FROM meta WHERE key='origin'`).Scan(&got)
	if err != nil {
		return fmt.Errorf("audit: open: read origin: %w", err)
	}
	if got != l.opts.Origin {
		return fmt.Errorf("audit: open: database belongs to origin %q, not %q", got, l.opts.Origin)
	}
	return nil
}

func (l *Log) loadHead() error {
	var seq int64
	var hash, body []byte
	err := l.rdb.QueryRow(`SELECT seq, hash, body FROM events ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: open: read head: %w", err)
	}
	e, err := ParseEntry(body)
	if err != nil || e.Seq != Seq(seq) || string(hash) != string(e.Hash[:]) {
		return fmt.Errorf("%w: last entry (seq %d) does not match its hash; run cairn audit verify", ErrTampered, seq)
	}
	l.head.Store(uint64(seq))
	l.lastHash = e.Hash
	return nil
}

// Close stops the committer, the sealer and the sinks (pending Records get
// ErrClosed), saves sink cursors and closes the database. It does not seal
// pending events: call Seal first to write them to the object store now.
func (l *Log) Close() error {
	l.once.Do(func() {
		close(l.closing)
		if l.cancel != nil {
			l.cancel()
		}
		l.wg.Wait()
		for _, p := range l.pumps {
			p.sink.Close()
		}
		l.closeDBs()
	})
	return nil
}

// Head returns the seq of the last committed entry (0 if none).
func (l *Log) Head() Seq { return Seq(l.head.Load()) }

// Changed returns a channel that is closed at the next commit.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *Log) notify() {
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// Record implements Recorder. It fills ev.ID (UUIDv7) and ev.Time (now)
// when empty, replaces Details.Query by its HMAC unless KeepQueries, and
// validates the event before queueing it.
func (l *Log) Record(ctx context.Context, ev Event) (Seq, error) {
	if l.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if ev.ID == "" {
		u, err := uuid.NewV7()
		if err != nil {
			return 0, fmt.Errorf("audit: record: %w", err)
		}
		ev.ID = u.String()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if ev.Details.Query != "" && !l.opts.KeepQueries {
		ev.Details.QueryHMAC = QueryHMAC(l.opts.QueryKey, ev.Details.Query)
		ev.Details.Query = ""
	}
	if err := ev.Validate(); err != nil {
		return 0, err
	}
	body, err := marshalEvent(&ev)
	if err != nil {
		return 0, fmt.Errorf("audit: record: %w", err)
	}
	req := &request{body: body, time: ev.Time.UnixNano(), action: ev.Action, done: make(chan result, 1)}
	select {
	case <-l.closing:
		return 0, ErrClosed
	default:
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-l.closing:
		return 0, ErrClosed
	}
	select {
	case r := <-req.done:
		return r.seq, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-l.stopped:
		// The committer exited; it answers every request it took.
		select {
		case r := <-req.done:
			return r.seq, r.err
		default:
			return 0, ErrClosed
		}
	}
}

func (l *Log) commitLoop() {
	defer l.wg.Done()
	defer close(l.stopped)
	batch := make([]*request, 0, l.opts.MaxBatch)
	var buf []byte
	for {
		select {
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		case <-l.closing:
			l.drainClosed()
			return
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		buf = l.commit(batch, buf[:0])
	}
}

// drainClosed answers requests queued when Close began.
func (l *Log) drainClosed() {
	for {
		select {
		case r := <-l.reqs:
			r.done <- result{err: ErrClosed}
		default:
			return
		}
	}
}

// commit writes one batch in one transaction: seqs and prev links are
// assigned here, in the only goroutine that appends.
func (l *Log) commit(batch []*request, buf []byte) []byte {
	fail := func(err error) []byte {
		err = fmt.Errorf("audit: commit: %w", err)
		l.opts.Logger.Error("audit commit failed; refusing events", "err", err, "events", len(batch))
		for _, r := range batch {
			r.done <- result{err: err}
		}
		return buf
	}
	tx, err := l.wdb.Begin()
	if err != nil {
		return fail(err)
	}
	stmt, err := tx.Prepare(`INSERT INTO events(seq, time, action, hash, body) VALUES(?, ?, ?, ?, ?)`)
	if err != nil {
		tx.Rollback()
		return fail(err)
	}
	// Read the head inside the write transaction (BEGIN IMMEDIATE holds
	// SQLite's write lock), not from memory: a CLI command (cairn cat,
	// cairn hold) may append to the same chain while cairn serve runs.
	seq, prev := Seq(0), Hash{}
	var headSeq int64
	var headHash []byte
	switch err := tx.QueryRow(`SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1`).Scan(&headSeq, &headHash); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		stmt.Close()
		tx.Rollback()
		return fail(err)
	default:
		seq = Seq(headSeq)
		copy(prev[:], headHash)
	}
	base := seq
	for _, r := range batch {
		seq++
		start := len(buf)
		buf = entryBytes(buf, seq, prev, r.body)
		b := buf[start:]
		prev = sha256.Sum256(b)
		if _, err := stmt.Exec(int64(seq), r.time, string(r.action), prev[:], b); err != nil {
			stmt.Close()
			tx.Rollback()
			return fail(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		tx.Rollback()
		return fail(err)
	}
	first := base + 1
	l.lastHash = prev
	l.head.Store(uint64(seq))
	l.notify()
	for i, r := range batch {
		r.done <- result{seq: first + Seq(i)}
	}
	return buf
}

// readEntries returns up to n entries from seq from, in order.
func (l *Log) readEntries(ctx context.Context, from Seq, n int) ([]Entry, error) {
	rows, err := l.rdb.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq >= ? ORDER BY seq LIMIT ?`, int64(from), n)
	if err != nil {
		return nil, fmt.Errorf("audit: read from %d: %w", from, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, fmt.Errorf("audit: read from %d: %w", from, err)
		}
		e, err := ParseEntry(body)
		if err != nil {
			return nil, fmt.Errorf("audit: read seq %d: %w", seq, err)
		}
		if e.Seq != Seq(seq) {
			return nil, fmt.Errorf("%w: row %d holds entry %d", ErrTampered, seq, e.Seq)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// readRaw returns up to n entries from seq from with Seq, Prev, Hash and
// Bytes set but the event not decoded (sealing needs only the bytes). It
// checks each row's seq and its link to the previous row.
func (l *Log) readRaw(ctx context.Context, from Seq, n int, prev Hash) ([]Entry, error) {
	rows, err := l.rdb.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq >= ? ORDER BY seq LIMIT ?`, int64(from), n)
	if err != nil {
		return nil, fmt.Errorf("audit: read from %d: %w", from, err)
	}
	defer rows.Close()
	out := make([]Entry, 0, n)
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, fmt.Errorf("audit: read from %d: %w", from, err)
		}
		s, p, ok := parseHead(body)
		if !ok || s != Seq(seq) || s != from+Seq(len(out)) {
			return nil, fmt.Errorf("%w: row %d does not hold entry %d", ErrTampered, seq, from+Seq(len(out)))
		}
		if (s > 1 || !prev.IsZero()) && p != prev {
			return nil, fmt.Errorf("%w: entry %d does not link to entry %d", ErrTampered, s, s-1)
		}
		prev = sha256.Sum256(body)
		out = append(out, Entry{Seq: s, Prev: p, Hash: prev, Bytes: body})
	}
	return out, rows.Err()
}
