package retention

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // SQLite driver (cgo)

	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// retention.db holds the state this package owns: holds (with whether their
// ledger events are recorded yet), the Object Lock state applied to each
// message object, objects kept by a lock after their message was disposed,
// and erasure requests. Holds are also in the ledger (hold.place and
// hold.release events), so a lost retention.db is rebuilt from it at the
// next Open; the lock state is re-derived by the next run.

const dbSchemaVersion = 1

var dbSchema = []string{
	`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS holds (
		id             TEXT PRIMARY KEY,
		case_id        TEXT NOT NULL,
		reason         TEXT NOT NULL,
		custodians     TEXT NOT NULL DEFAULT '',
		date_from      INTEGER,
		date_to        INTEGER,
		query          TEXT NOT NULL DEFAULT '',
		placed_at      INTEGER NOT NULL,
		placed_by      TEXT NOT NULL,
		place_entry    INTEGER,
		released_at    INTEGER,
		released_by    TEXT NOT NULL DEFAULT '',
		release_reason TEXT NOT NULL DEFAULT '',
		release_entry  INTEGER
	)`,
	`CREATE INDEX IF NOT EXISTS holds_case ON holds(case_id)`,
	// The Object Lock state Cairn set on each message object.
	`CREATE TABLE IF NOT EXISTS locks (
		seq          INTEGER PRIMARY KEY,
		object       TEXT NOT NULL,
		mode         TEXT NOT NULL DEFAULT '',
		retain_until INTEGER NOT NULL DEFAULT 0,
		legal_hold   INTEGER NOT NULL DEFAULT 0
	)`,
	// Message objects an Object Lock kept after their message was disposed
	// or erased (its key object is destroyed: unreadable); deleted once
	// the lock expires.
	`CREATE TABLE IF NOT EXISTS kept (
		seq    INTEGER PRIMARY KEY,
		object TEXT NOT NULL,
		until  INTEGER NOT NULL
	)`,
	// Erasure requests, and the messages a hold or an obligation kept from
	// them: erased by a later run once nothing keeps them. No address is
	// stored: the request id and the seqs are enough.
	`CREATE TABLE IF NOT EXISTS erasures (
		id           TEXT PRIMARY KEY,
		reason       TEXT NOT NULL,
		requested_at INTEGER NOT NULL,
		requested_by TEXT NOT NULL,
		erased       INTEGER NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE IF NOT EXISTS deferred (
		request TEXT NOT NULL,
		seq     INTEGER NOT NULL,
		PRIMARY KEY (seq, request)
	) WITHOUT ROWID`,
}

// openDB opens (creating if needed) retention.db. created reports a new
// file: its holds must be rebuilt from the ledger before anything relies
// on them.
func openDB(path string) (db *sql.DB, created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("retention: %w", err)
	}
	_, statErr := os.Stat(path)
	created = errors.Is(statErr, os.ErrNotExist)
	db, err = sqlOpen(path, false)
	if err != nil {
		return nil, false, err
	}
	for _, s := range dbSchema {
		if _, err := db.Exec(s); err != nil {
			db.Close()
			return nil, false, fmt.Errorf("retention: %s: schema: %w", path, err)
		}
	}
	if _, err := db.Exec(`INSERT OR IGNORE INTO meta(k, v) VALUES('schema', ?)`, strconv.Itoa(dbSchemaVersion)); err != nil {
		db.Close()
		return nil, false, fmt.Errorf("retention: %s: %w", path, err)
	}
	if err := checkSchema(db, path); err != nil {
		db.Close()
		return nil, false, err
	}
	os.Chmod(path, 0o600)
	return db, created, nil
}

// openDBReader opens an existing retention.db for queries only: it never
// writes, so it never waits for a writer (Held runs while a disposal holds
// the write lock).
func openDBReader(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	db, err := sqlOpen(path, true)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(db, path); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func sqlOpen(path string, queryOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_busy_timeout", "60000")
	q.Set("_txlock", "immediate")
	q.Set("_secure_delete", "on")
	if queryOnly {
		q.Del("_journal_mode")
		q.Set("_txlock", "deferred")
		q.Set("_query_only", "1")
	}
	db, err := sql.Open("sqlite3", sqlitefile.URI(path, q.Encode()))
	if err != nil {
		return nil, fmt.Errorf("retention: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

func checkSchema(db *sql.DB, path string) error {
	var v string
	if err := db.QueryRow(`SELECT v FROM meta WHERE k = 'schema'`).Scan(&v); err != nil || v != strconv.Itoa(dbSchemaVersion) {
		return fmt.Errorf("retention: %s has schema %q, this cairn knows %d (%v)", path, v, dbSchemaVersion, err)
	}
	return nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func getMeta(ctx context.Context, q querier, k string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("retention: meta %s: %w", k, err)
	}
	return v, nil
}

func setMeta(ctx context.Context, q querier, k, v string) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, k, v); err != nil {
		return fmt.Errorf("retention: meta %s: %w", k, err)
	}
	return nil
}

const holdColumns = `id, case_id, reason, custodians, date_from, date_to, query, placed_at, placed_by, place_entry,
	released_at, released_by, release_reason, release_entry`

func scanHold(sc interface{ Scan(...any) error }) (*Hold, error) {
	var h Hold
	var custodians string
	var from, to, released, placeEntry, releaseEntry sql.NullInt64
	var placed int64
	if err := sc.Scan(&h.ID, &h.Case, &h.Reason, &custodians, &from, &to, &h.Query, &placed, &h.PlacedBy, &placeEntry,
		&released, &h.ReleasedBy, &h.ReleaseReason, &releaseEntry); err != nil {
		return nil, err
	}
	if custodians != "" {
		h.Custodians = strings.Split(custodians, ",")
	}
	if from.Valid {
		h.From = time.Unix(from.Int64, 0).UTC()
	}
	if to.Valid {
		h.To = time.Unix(to.Int64, 0).UTC()
	}
	h.PlacedAt = time.Unix(0, placed).UTC()
	h.PlaceEntry, h.ReleaseEntry = -1, -1
	if placeEntry.Valid {
		h.PlaceEntry = placeEntry.Int64
	}
	if released.Valid {
		h.Released = true
		h.ReleasedAt = time.Unix(0, released.Int64).UTC()
	}
	if releaseEntry.Valid {
		h.ReleaseEntry = releaseEntry.Int64
	}
	return &h, nil
}

// loadHolds returns the holds, active ones only unless all, ordered by
// placement.
func loadHolds(ctx context.Context, q querier, all bool) ([]*Hold, error) {
	where := ` WHERE released_at IS NULL`
	if all {
		where = ""
	}
	return queryHolds(ctx, q, where)
}

// queryHolds returns the holds matching where (a WHERE clause, or ""),
// ordered by placement.
func queryHolds(ctx context.Context, q querier, where string, args ...any) ([]*Hold, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+holdColumns+` FROM holds`+where+` ORDER BY placed_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("retention: holds: %w", err)
	}
	defer rows.Close()
	var out []*Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("retention: holds: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("retention: holds: %w", err)
	}
	return out, nil
}

func insertHold(ctx context.Context, q querier, h *Hold) error {
	var from, to, placeEntry, released, releaseEntry any
	if !h.From.IsZero() {
		from = h.From.Unix()
	}
	if !h.To.IsZero() {
		to = h.To.Unix()
	}
	if h.PlaceEntry >= 0 {
		placeEntry = h.PlaceEntry
	}
	if h.Released {
		released = h.ReleasedAt.UnixNano()
	}
	if h.ReleaseEntry >= 0 {
		releaseEntry = h.ReleaseEntry
	}
	_, err := q.ExecContext(ctx, `INSERT INTO holds(`+holdColumns+`) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		h.ID, h.Case, h.Reason, strings.Join(h.Custodians, ","), from, to, h.Query, h.PlacedAt.UnixNano(), h.PlacedBy, placeEntry,
		released, h.ReleasedBy, h.ReleaseReason, releaseEntry)
	if err != nil {
		return fmt.Errorf("retention: hold %s: %w", h.ID, err)
	}
	return nil
}
