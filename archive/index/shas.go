package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// The deduplication index: a message's SHA-256 to its seq.
//
// SHA-256s are random keys: in one B-tree keyed by them, each message's
// insert lands on a page of its own once the tree outgrows a transaction
// (a few thousand messages), and that page is written to the WAL and again
// at the checkpoint. Schema 2 kept them in a UNIQUE index on
// messages.sha256; on an archive of 300,000 messages that was ~9 KB
// written and ~55 µs of serve CPU a message (bench/smtp -prefill 300000,
// against a build that left the column empty), and it grows with the
// archive.
//
// Schema 3 keeps them in two levels, like an LSM tree:
//
//   - shas_new (part, seq, sha), WITHOUT ROWID, keyed by (part, seq): the
//     hashes of recent messages, each appended at the end of its part
//     (the hash's first four bits: a transaction writes the last pages of
//     16 ranges of one B-tree), with a copy in memory (recent) in the
//     process that writes;
//   - shas (sha PRIMARY KEY, seq) WITHOUT ROWID: the rest, which receives
//     the recent level a sixteenth of the hash space at a time, once it
//     holds mergeAt hashes: each of its pages is written once for all the
//     recent hashes that land on it.
//
// messages.sha256 keeps each message's hash (without an index): rows, row
// MACs and queries are the same as in schema 2. A schema 2 index (made by
// an earlier cairn, with the UNIQUE index) is used as it is, in legacy
// mode; `cairn reindex` rebuilds it as schema 3.
//
// A hash is in at most one level: the writer looks a message's bytes up in
// both before it adds them (the ledger may hold the same bytes twice: the
// second gets no hash and a problem, as with the UNIQUE index).

// mergeAt is how many hashes the recent level holds before its parts move
// to the merged level: ~5 MB in memory, and on an archive of a million
// messages about one page of the merged level written for every ~6
// messages (tests lower it).
var mergeAt = 1 << 16

// recent is the recent level in memory: shas_new as this process's commits
// left it. Only the archive's writer uses it (loaded by FilterSHAs or the
// first Write); other processes look recent hashes up in shas_new.
type recent struct {
	mu     sync.RWMutex
	loaded bool
	m      map[[32]byte]uint64
	part   int // the next part to merge (mergeParts)
}

func (r *recent) get(sha [32]byte) (uint64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	seq, ok := r.m[sha]
	return seq, ok
}

func (r *recent) isLoaded() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loaded
}

func (r *recent) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// shaChanges are a transaction's changes to the recent level, applied to
// the copy in memory once it commits.
type shaChanges struct {
	added   map[[32]byte]uint64
	removed [][32]byte
}

func (c *shaChanges) apply(r *recent) {
	if c == nil || (len(c.added) == 0 && len(c.removed) == 0) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		return // not loaded: nothing to keep up to date
	}
	for sha, seq := range c.added {
		r.m[sha] = seq
	}
	for _, sha := range c.removed {
		delete(r.m, sha)
	}
}

// loadRecent reads shas_new into memory, once.
func (ix *Index) loadRecent() error {
	if ix.legacy {
		return nil
	}
	ix.recent.mu.Lock()
	defer ix.recent.mu.Unlock()
	if ix.recent.loaded {
		return nil
	}
	rows, err := ix.db.Query(`SELECT seq, sha FROM shas_new`)
	if err != nil {
		return fmt.Errorf("index: recent hashes: %w", err)
	}
	defer rows.Close()
	m := make(map[[32]byte]uint64)
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return fmt.Errorf("index: recent hashes: %w", err)
		}
		var sha [32]byte
		copy(sha[:], b)
		m[sha] = uint64(seq)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("index: recent hashes: %w", err)
	}
	ix.recent.m, ix.recent.loaded = m, true
	return nil
}

// mergeParts: the recent level moves into the merged one a part of the
// hash space at a time (by the hash's first four bits, in turn), so that
// no transaction holds the index for long (on an archive of millions of
// messages a whole merge rewrites ~100 MB of pages), while each page of
// the merged level is still written once for all the recent hashes of its
// part.
const mergeParts = 16

// mergeRecent moves the next part of the recent level into the merged
// one, in its own transaction, when the recent level holds mergeAt hashes
// or more.
func (ix *Index) mergeRecent() error {
	if ix.legacy || ix.recent.size() < mergeAt {
		return nil
	}
	ix.recent.mu.Lock()
	part := ix.recent.part
	ix.recent.part = (part + 1) % mergeParts
	ix.recent.mu.Unlock()
	tx, err := ix.db.Begin()
	if err != nil {
		return fmt.Errorf("index: merge hashes: %w", err)
	}
	defer tx.Rollback()
	// In hash order, the merged level's pages are visited once each. A
	// hash already there (which the writer's lookups rule out) keeps its
	// first message.
	if _, err := tx.Exec(`INSERT OR IGNORE INTO shas(sha, seq) SELECT sha, seq FROM shas_new WHERE part = ? ORDER BY sha, seq`, part); err != nil {
		return fmt.Errorf("index: merge hashes: %w", err)
	}
	if _, err := tx.Exec(`DELETE FROM shas_new WHERE part = ?`, part); err != nil {
		return fmt.Errorf("index: merge hashes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: merge hashes: %w", err)
	}
	// After the commit: a lookup that misses the copy in memory finds the
	// hash in shas.
	ix.recent.mu.Lock()
	for sha := range ix.recent.m {
		if int(sha[0]>>4) == part {
			delete(ix.recent.m, sha)
		}
	}
	ix.recent.mu.Unlock()
	return nil
}

// firstWithSHA finds, inside tx, the message that already holds sha: one
// of the transaction's own (added), the recent level, or the merged one.
func (ix *Index) firstWithSHA(tx *sql.Tx, sha [32]byte, added map[[32]byte]uint64) (uint64, bool, error) {
	if seq, ok := added[sha]; ok {
		return seq, true, nil
	}
	if seq, ok := ix.recent.get(sha); ok {
		return seq, true, nil
	}
	if f := ix.shas.Load(); f != nil && f.Absent(string(sha[:])) {
		return 0, false, nil
	}
	var seq int64
	err := tx.QueryRow(`SELECT seq FROM shas WHERE sha = ?`, sha[:]).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("index: hash lookup: %w", err)
	}
	return uint64(seq), true, nil
}

// messageBySHA is MessageBySHA for schema 3.
func (ix *Index) messageBySHA(ctx context.Context, sha [32]byte) (seq int64, state int, err error) {
	if s, ok := ix.recent.get(sha); ok {
		err = ix.stateBySeq.QueryRowContext(ctx, int64(s)).Scan(&state)
		return int64(s), state, err
	}
	err = ix.bySHA.QueryRowContext(ctx, sha[:]).Scan(&seq, &state)
	if errors.Is(err, sql.ErrNoRows) && !(ix.shas.Load() != nil && ix.recent.isLoaded()) {
		// Not the writer (FilterSHAs), or its copy of the recent level is
		// not loaded: the recent hashes are in shas_new (a scan of one
		// part, ~mergeAt/16 short rows).
		err = ix.db.QueryRowContext(ctx, `SELECT n.seq, m.state FROM shas_new n JOIN messages m ON m.seq = n.seq WHERE n.part = ? AND n.sha = ?`,
			int(sha[0]>>4), sha[:]).Scan(&seq, &state)
	}
	return seq, state, err
}
