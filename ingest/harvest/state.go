package harvest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"

	_ "github.com/mattn/go-sqlite3" // the state database

	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// The state database (<data_dir>/harvest.db) holds, per source and folder,
// the cursor and the status. It is not evidence: losing it makes the next
// pass re-read every folder, and the archive answers each message already
// recorded with Receipt.Replayed (DeliveryKey), so nothing is duplicated.
// That is also why a cursor written lazily (once per batch, synchronous=
// NORMAL) is safe: a cursor can only lag the archive, never lead it.
const stateSchema = `
CREATE TABLE IF NOT EXISTS sources (
	name          TEXT PRIMARY KEY,
	host          TEXT NOT NULL,
	user          TEXT NOT NULL,
	last_start    INTEGER NOT NULL DEFAULT 0,
	last_end      INTEGER NOT NULL DEFAULT 0,
	last_success  INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	last_error_at INTEGER NOT NULL DEFAULT 0,
	failures      INTEGER NOT NULL DEFAULT 0,
	errors        INTEGER NOT NULL DEFAULT 0,
	connected     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS folders (
	source        TEXT NOT NULL,
	folder        TEXT NOT NULL,
	uidvalidity   INTEGER NOT NULL DEFAULT 0,
	last_uid      INTEGER NOT NULL DEFAULT 0,
	archived      INTEGER NOT NULL DEFAULT 0,
	duplicates    INTEGER NOT NULL DEFAULT 0,
	replayed      INTEGER NOT NULL DEFAULT 0,
	skipped       INTEGER NOT NULL DEFAULT 0,
	malformed     INTEGER NOT NULL DEFAULT 0,
	removed       INTEGER NOT NULL DEFAULT 0,
	bytes         INTEGER NOT NULL DEFAULT 0,
	resets        INTEGER NOT NULL DEFAULT 0,
	messages      INTEGER NOT NULL DEFAULT 0,
	last_run      INTEGER NOT NULL DEFAULT 0,
	last_error    TEXT NOT NULL DEFAULT '',
	last_error_at INTEGER NOT NULL DEFAULT 0,
	present       INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (source, folder)
);
CREATE TABLE IF NOT EXISTS attempts (
	source      TEXT NOT NULL,
	folder      TEXT NOT NULL,
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	attempts    INTEGER NOT NULL,
	last_error  TEXT NOT NULL,
	PRIMARY KEY (source, folder, uidvalidity, uid)
);
CREATE TABLE IF NOT EXISTS reports (
	id          INTEGER PRIMARY KEY,
	at          INTEGER NOT NULL,
	source      TEXT NOT NULL,
	folder      TEXT NOT NULL,
	uidvalidity INTEGER NOT NULL,
	uid         INTEGER NOT NULL,
	kind        TEXT NOT NULL,
	seq         INTEGER,
	detail      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_source ON reports(source, folder);
`

// Report kinds.
const (
	ReportSkipped   = "skipped"   // not archived: refused by the archive, too large, or unreadable after MaxAttempts
	ReportMalformed = "malformed" // archived byte for byte; the MIME parser's problems are in the detail
	ReportRemove    = "remove"    // journal mode could not remove an archived message
)

// State is the harvester's state database. Safe for concurrent use.
type State struct {
	db *sql.DB
	ro bool
}

// ErrNoState is returned by OpenState in read-only mode when the database
// does not exist (nothing was harvested yet).
var ErrNoState = errors.New("harvest: no harvest state yet")

// OpenState opens (creating, unless readOnly) the state database at path.
// Read-only mode is for `cairn harvest status` while a harvester runs.
func OpenState(path string, readOnly bool) (*State, error) {
	q := url.Values{}
	q.Set("_busy_timeout", "10000")
	if readOnly {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w (%s)", ErrNoState, path)
		}
		q.Set("mode", "ro")
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("harvest: state: %w", err)
		}
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite3", sqlitefile.URI(path, q.Encode()))
	if err != nil {
		return nil, fmt.Errorf("harvest: state %s: %w", path, err)
	}
	if !readOnly {
		db.SetMaxOpenConns(1)
		if _, err := db.Exec(stateSchema); err != nil {
			db.Close()
			return nil, fmt.Errorf("harvest: state %s: %w", path, err)
		}
	}
	return &State{db: db, ro: readOnly}, nil
}

// Close closes the database.
func (st *State) Close() error { return st.db.Close() }

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// cursor is a folder's position: every message with a UID up to LastUID in
// epoch UIDValidity has a receipt (or was skipped and reported).
type cursor struct {
	UIDValidity uint32
	LastUID     uint32
}

// registerSource records a source's host and user. When they changed, the
// folders' cursors are reset: UIDs of one server mean nothing on another.
func (st *State) registerSource(ctx context.Context, s *Source) (reset bool, err error) {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("harvest: state: %w", err)
	}
	defer tx.Rollback()
	var host, user string
	err = tx.QueryRowContext(ctx, `SELECT host, user FROM sources WHERE name = ?`, s.Name).Scan(&host, &user)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = tx.ExecContext(ctx, `INSERT INTO sources(name, host, user) VALUES(?,?,?)`, s.Name, s.Host, s.User)
	case err != nil:
	case host != s.Host || user != s.User:
		reset = true
		if _, err = tx.ExecContext(ctx, `UPDATE sources SET host = ?, user = ? WHERE name = ?`, s.Host, s.User, s.Name); err == nil {
			_, err = tx.ExecContext(ctx, `UPDATE folders SET uidvalidity = 0, last_uid = 0 WHERE source = ?`, s.Name)
		}
	}
	if err != nil {
		return false, fmt.Errorf("harvest: state: %w", err)
	}
	return reset, wrapState(tx.Commit())
}

func wrapState(err error) error {
	if err != nil {
		return fmt.Errorf("harvest: state: %w", err)
	}
	return nil
}

// cursor returns a folder's cursor (zero when the folder is new).
func (st *State) cursor(ctx context.Context, source, folder string) (cursor, error) {
	var c cursor
	err := st.db.QueryRowContext(ctx, `SELECT uidvalidity, last_uid FROM folders WHERE source = ? AND folder = ?`,
		source, folder).Scan(&c.UIDValidity, &c.LastUID)
	if errors.Is(err, sql.ErrNoRows) {
		return cursor{}, nil
	}
	return c, wrapState(err)
}

// resetFolder starts a new UIDVALIDITY epoch: the folder is read again from
// its first message.
func (st *State) resetFolder(ctx context.Context, source, folder string, uidValidity uint32, count bool) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return wrapState(err)
	}
	defer tx.Rollback()
	inc := 0
	if count {
		inc = 1
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO folders(source, folder, uidvalidity, last_uid, resets) VALUES(?,?,?,0,?)
		ON CONFLICT(source, folder) DO UPDATE SET uidvalidity = excluded.uidvalidity, last_uid = 0, resets = resets + excluded.resets`,
		source, folder, uidValidity, inc)
	if err == nil {
		_, err = tx.ExecContext(ctx, `DELETE FROM attempts WHERE source = ? AND folder = ?`, source, folder)
	}
	if err != nil {
		return wrapState(err)
	}
	return wrapState(tx.Commit())
}

// progress is what one batch adds to a folder's status.
type progress struct {
	archived, duplicates, replayed, skipped, malformed, removed, bytes int64
	reports                                                            []report
}

type report struct {
	uid    uint32
	kind   string
	seq    int64 // ledger seq, or -1
	detail string
}

func (p *progress) add(q *progress) {
	p.archived += q.archived
	p.duplicates += q.duplicates
	p.replayed += q.replayed
	p.skipped += q.skipped
	p.malformed += q.malformed
	p.removed += q.removed
	p.bytes += q.bytes
}

// advance moves a folder's cursor to c (which only ever grows within an
// epoch) and adds p to its counters, in one transaction. The caller holds a
// receipt (or a skip report) for every message up to c.LastUID.
func (st *State) advance(ctx context.Context, source, folder string, c cursor, p *progress) error {
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		return wrapState(err)
	}
	defer tx.Rollback()
	now := time.Now().UnixNano()
	_, err = tx.ExecContext(ctx, `INSERT INTO folders(source, folder, uidvalidity, last_uid, archived, duplicates, replayed, skipped, malformed, removed, bytes, last_run)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(source, folder) DO UPDATE SET
			last_uid = CASE WHEN uidvalidity = excluded.uidvalidity AND last_uid > excluded.last_uid THEN last_uid ELSE excluded.last_uid END,
			uidvalidity = excluded.uidvalidity,
			archived = archived + excluded.archived, duplicates = duplicates + excluded.duplicates,
			replayed = replayed + excluded.replayed, skipped = skipped + excluded.skipped,
			malformed = malformed + excluded.malformed, removed = removed + excluded.removed,
			bytes = bytes + excluded.bytes, last_run = excluded.last_run`,
		source, folder, c.UIDValidity, c.LastUID, p.archived, p.duplicates, p.replayed, p.skipped, p.malformed, p.removed, p.bytes, now)
	if err != nil {
		return wrapState(err)
	}
	for _, r := range p.reports {
		var seq any
		if r.seq >= 0 {
			seq = r.seq
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reports(at, source, folder, uidvalidity, uid, kind, seq, detail) VALUES(?,?,?,?,?,?,?,?)`,
			now, source, folder, c.UIDValidity, r.uid, r.kind, seq, r.detail); err != nil {
			return wrapState(err)
		}
	}
	if c.LastUID > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM attempts WHERE source = ? AND folder = ? AND (uidvalidity != ? OR uid <= ?)`,
			source, folder, c.UIDValidity, c.LastUID); err != nil {
			return wrapState(err)
		}
	}
	return wrapState(tx.Commit())
}

// attempt counts one failed try to fetch a message and returns the number
// of tries so far.
func (st *State) attempt(ctx context.Context, source, folder string, uidValidity, uid uint32, reason string) (int, error) {
	var n int
	err := st.db.QueryRowContext(ctx, `INSERT INTO attempts(source, folder, uidvalidity, uid, attempts, last_error) VALUES(?,?,?,?,1,?)
		ON CONFLICT(source, folder, uidvalidity, uid) DO UPDATE SET attempts = attempts + 1, last_error = excluded.last_error
		RETURNING attempts`, source, folder, uidValidity, uid, reason).Scan(&n)
	return n, wrapState(err)
}

// attempts returns how often a message failed to be fetched, and why.
func (st *State) attempts(ctx context.Context, source, folder string, uidValidity, uid uint32) (int, string, error) {
	var n int
	var reason string
	err := st.db.QueryRowContext(ctx, `SELECT attempts, last_error FROM attempts WHERE source = ? AND folder = ? AND uidvalidity = ? AND uid = ?`,
		source, folder, uidValidity, uid).Scan(&n, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return n, reason, wrapState(err)
}

// folderSeen records a folder pass: the message count the server reported
// and the pass's error ("" clears the last error's being current, but the
// text and time stay for the status).
func (st *State) folderSeen(ctx context.Context, source, folder string, messages int64, passErr error) error {
	now := time.Now().UnixNano()
	var err error
	if passErr != nil {
		_, err = st.db.ExecContext(ctx, `INSERT INTO folders(source, folder, messages, last_run, last_error, last_error_at, present) VALUES(?,?,?,?,?,?,1)
			ON CONFLICT(source, folder) DO UPDATE SET messages = CASE WHEN excluded.messages >= 0 THEN excluded.messages ELSE messages END,
			last_run = excluded.last_run, last_error = excluded.last_error, last_error_at = excluded.last_error_at, present = 1`,
			source, folder, messages, now, passErr.Error(), now)
	} else {
		_, err = st.db.ExecContext(ctx, `INSERT INTO folders(source, folder, messages, last_run, present) VALUES(?,?,?,?,1)
			ON CONFLICT(source, folder) DO UPDATE SET messages = CASE WHEN excluded.messages >= 0 THEN excluded.messages ELSE messages END,
			last_run = excluded.last_run, present = 1`,
			source, folder, messages, now)
	}
	return wrapState(err)
}

// foldersListed marks the folders a LIST no longer returned.
func (st *State) foldersListed(ctx context.Context, source string, listed map[string]bool) error {
	rows, err := st.db.QueryContext(ctx, `SELECT folder FROM folders WHERE source = ? AND present = 1`, source)
	if err != nil {
		return wrapState(err)
	}
	var gone []string
	for rows.Next() {
		var f string
		if err := rows.Scan(&f); err != nil {
			rows.Close()
			return wrapState(err)
		}
		if !listed[f] {
			gone = append(gone, f)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrapState(err)
	}
	for _, f := range gone {
		if _, err := st.db.ExecContext(ctx, `UPDATE folders SET present = 0 WHERE source = ? AND folder = ?`, source, f); err != nil {
			return wrapState(err)
		}
	}
	return nil
}

// passStarted, passEnded and connected record a source's passes.
func (st *State) passStarted(ctx context.Context, source string) error {
	_, err := st.db.ExecContext(ctx, `UPDATE sources SET last_start = ? WHERE name = ?`, time.Now().UnixNano(), source)
	return wrapState(err)
}

func (st *State) passEnded(ctx context.Context, source string, passErr error) error {
	now := time.Now().UnixNano()
	var err error
	if passErr == nil {
		_, err = st.db.ExecContext(ctx, `UPDATE sources SET last_end = ?, last_success = ?, failures = 0 WHERE name = ?`, now, now, source)
	} else {
		_, err = st.db.ExecContext(ctx, `UPDATE sources SET last_end = ?, last_error = ?, last_error_at = ?, failures = failures + 1, errors = errors + 1, connected = 0 WHERE name = ?`,
			now, passErr.Error(), now, source)
	}
	return wrapState(err)
}

func (st *State) setConnected(ctx context.Context, source string, on bool) error {
	v := 0
	if on {
		v = 1
	}
	_, err := st.db.ExecContext(ctx, `UPDATE sources SET connected = ? WHERE name = ?`, v, source)
	return wrapState(err)
}

// SourceStatus is the state of one source, for `cairn harvest status` and
// metrics.
type SourceStatus struct {
	Name string `json:"name"`
	Host string `json:"host"`
	User string `json:"user"`
	// Configured is false for a source found in the state database but no
	// longer in the configuration.
	Configured bool `json:"configured"`
	Disabled   bool `json:"disabled,omitempty"`
	// Connected is true while a harvester holds a session to the server.
	Connected bool `json:"connected"`
	// LastStart and LastEnd bound the newest pass over every folder;
	// LastSuccess is the end of the newest pass that completed.
	LastStart   time.Time `json:"last_start"`
	LastEnd     time.Time `json:"last_end"`
	LastSuccess time.Time `json:"last_success"`
	// LastError and LastErrorAt describe the newest failure (kept after
	// recovery, so an outage stays visible); Failures counts consecutive
	// failed attempts (0 once a pass succeeds), Errors every failure.
	LastError   string         `json:"last_error,omitempty"`
	LastErrorAt time.Time      `json:"last_error_at"`
	Failures    int64          `json:"failures"`
	Errors      int64          `json:"errors"`
	Folders     []FolderStatus `json:"folders"`
}

// FolderStatus is the state of one folder of a source.
type FolderStatus struct {
	Name string `json:"name"`
	// Present is false when the folder was not in the newest LIST.
	Present bool `json:"present"`
	// UIDValidity and LastUID are the cursor: every message up to LastUID
	// has been archived (or skipped and reported).
	UIDValidity uint32 `json:"uidvalidity"`
	LastUID     uint32 `json:"last_uid"`
	// Messages is the message count the server reported at the last run.
	Messages int64 `json:"messages"`
	// Archived counts new deliveries recorded (Duplicates of them had
	// bytes already archived); Replayed messages were already recorded
	// (after a crash, a UIDVALIDITY change, or a byte-identical copy in the
	// folder); Skipped were not archived and are reported; Malformed were
	// archived with MIME problems; Removed were expunged or moved in
	// journal mode. Bytes is the size of Archived messages.
	Archived   int64 `json:"archived"`
	Duplicates int64 `json:"duplicates"`
	Replayed   int64 `json:"replayed"`
	Skipped    int64 `json:"skipped"`
	Malformed  int64 `json:"malformed"`
	Removed    int64 `json:"removed"`
	Bytes      int64 `json:"bytes"`
	// Resets counts UIDVALIDITY changes.
	Resets      int64     `json:"resets"`
	LastRun     time.Time `json:"last_run"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at"`
}

// Report is one skipped or malformed message.
type Report struct {
	At          time.Time `json:"at"`
	Source      string    `json:"source"`
	Folder      string    `json:"folder"`
	UIDValidity uint32    `json:"uidvalidity"`
	UID         uint32    `json:"uid"`
	Kind        string    `json:"kind"`
	Seq         int64     `json:"seq"` // ledger seq of the delivery, or -1
	Detail      string    `json:"detail"`
}

// Status returns every source in the database with its folders, sorted
// by name.
func (st *State) Status(ctx context.Context) ([]SourceStatus, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT name, host, user, last_start, last_end, last_success, last_error, last_error_at, failures, errors, connected FROM sources ORDER BY name`)
	if err != nil {
		return nil, wrapState(err)
	}
	var out []SourceStatus
	idx := map[string]int{}
	for rows.Next() {
		var s SourceStatus
		var ls, le, lsu, lea int64
		var conn int
		if err := rows.Scan(&s.Name, &s.Host, &s.User, &ls, &le, &lsu, &s.LastError, &lea, &s.Failures, &s.Errors, &conn); err != nil {
			rows.Close()
			return nil, wrapState(err)
		}
		s.LastStart, s.LastEnd, s.LastSuccess, s.LastErrorAt = fromNanos(ls), fromNanos(le), fromNanos(lsu), fromNanos(lea)
		s.Connected = conn != 0
		idx[s.Name] = len(out)
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrapState(err)
	}
	rows, err = st.db.QueryContext(ctx, `SELECT source, folder, present, uidvalidity, last_uid, messages, archived, duplicates, replayed, skipped, malformed, removed, bytes, resets, last_run, last_error, last_error_at FROM folders ORDER BY source, folder`)
	if err != nil {
		return nil, wrapState(err)
	}
	defer rows.Close()
	for rows.Next() {
		var src string
		var f FolderStatus
		var present int
		var lr, lea int64
		if err := rows.Scan(&src, &f.Name, &present, &f.UIDValidity, &f.LastUID, &f.Messages, &f.Archived, &f.Duplicates, &f.Replayed,
			&f.Skipped, &f.Malformed, &f.Removed, &f.Bytes, &f.Resets, &lr, &f.LastError, &lea); err != nil {
			return nil, wrapState(err)
		}
		f.Present = present != 0
		f.LastRun, f.LastErrorAt = fromNanos(lr), fromNanos(lea)
		if i, ok := idx[src]; ok {
			out[i].Folders = append(out[i].Folders, f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrapState(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Reports returns the newest reports of a source (all sources when source
// is empty), newest first, at most limit.
func (st *State) Reports(ctx context.Context, source string, limit int) ([]Report, error) {
	q := `SELECT at, source, folder, uidvalidity, uid, kind, IFNULL(seq, -1), detail FROM reports`
	args := []any{}
	if source != "" {
		q += ` WHERE source = ?`
		args = append(args, source)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := st.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrapState(err)
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		var r Report
		var at int64
		if err := rows.Scan(&at, &r.Source, &r.Folder, &r.UIDValidity, &r.UID, &r.Kind, &r.Seq, &r.Detail); err != nil {
			return nil, wrapState(err)
		}
		r.At = fromNanos(at)
		out = append(out, r)
	}
	return out, wrapState(rows.Err())
}
