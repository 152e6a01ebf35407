// Package index is the archive's SQLite index: what was archived, for whom,
// and the parsed structure of each message, so that listing, searching and
// the IMAP view never parse or decrypt a message to answer.
//
// The index is not the source of truth (invariant 3): every row is derived
// from the ledger and the objects, and `cairn reindex` rebuilds it from the
// object store. Rows carry a MAC keyed from the archive secret, so an edit
// made to the database behind Cairn's back is found by `cairn verify`.
//
// Plaintext held here, field by field (invariant 4; docs/FORMAT.md):
// messages: the top-level header block (which holds From, To, Cc, Subject,
// Date, Message-ID and the other header fields) and the MIME structure
// (types, parameters, filenames, sizes, offsets), never a body; deliveries:
// the envelope (source, sender, recipients incl. Bcc, custodians, source
// details); the full-text index holds keyed hashes of words, not words.
package index

import (
	"context"
	"crypto/hmac"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3" // SQLite driver (cgo)

	"github.com/cairn-archive/cairn/archive/internal/bloom"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// ErrNotFound is returned (wrapped) when a row does not exist.
var ErrNotFound = errors.New("index: not found")

// Message states.
const (
	StateActive   = 0
	StateDisposed = 1
	StateErased   = 2
)

// schemaVersion 3 keeps message SHA-256s out of a UNIQUE index (shas.go);
// an index of schema 2 is still used as it is (Index.legacy).
const schemaVersion = 3

var schema = []string{
	`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)`,
	// A copy of every ledger line, for verification against the store and
	// for inclusion proofs; leaf is the RFC 9162 leaf hash.
	`CREATE TABLE IF NOT EXISTS entries (
		seq  INTEGER PRIMARY KEY,
		kind TEXT NOT NULL,
		ref  INTEGER,
		line BLOB NOT NULL,
		leaf BLOB NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS entries_ref ON entries(ref) WHERE ref IS NOT NULL`,
	// Messages whose objects still have to be destroyed after their
	// tombstone was committed (a crash in between is finished at start).
	`CREATE TABLE IF NOT EXISTS pending_destroy (seq INTEGER PRIMARY KEY)`,
	`CREATE TABLE IF NOT EXISTS messages (
		seq           INTEGER PRIMARY KEY,
		sha256        BLOB,
		size          INTEGER NOT NULL,
		object        TEXT NOT NULL,
		key_object    TEXT NOT NULL,
		object_sha256 BLOB NOT NULL,
		object_size   INTEGER NOT NULL,
		archived_at   INTEGER NOT NULL,
		date          INTEGER,
		from_addr     TEXT NOT NULL DEFAULT '',
		to_addrs      TEXT NOT NULL DEFAULT '',
		cc_addrs      TEXT NOT NULL DEFAULT '',
		subject       TEXT NOT NULL DEFAULT '',
		message_id    TEXT NOT NULL DEFAULT '',
		header        BLOB NOT NULL,
		structure     BLOB NOT NULL,
		problems      TEXT NOT NULL DEFAULT '',
		state         INTEGER NOT NULL DEFAULT 0,
		mac           BLOB NOT NULL,
		object_hint   BLOB,
		key_hint      BLOB
	)`,
	`CREATE INDEX IF NOT EXISTS messages_date ON messages(date)`,
	// SEARCH HEADER Message-ID scans this narrow index (a substring
	// match), never the rows, which hold the header.
	`CREATE INDEX IF NOT EXISTS messages_message_id ON messages(message_id)`,
	// No indexes on object names or object hashes: only verify looks
	// rows up by them (orphans by a sorted merge, a replaced object by a
	// scan on damage), and each index costs every ingest.
	`DROP INDEX IF EXISTS messages_object`,
	`DROP INDEX IF EXISTS messages_key_object`,
	`DROP INDEX IF EXISTS messages_object_sha256`,
	// SEARCH FROM, SUBJECT, TO and CC are substring matches: SQLite scans
	// these narrow covering indexes (~70 ms per million messages here)
	// instead of the wide rows.
	`CREATE INDEX IF NOT EXISTS messages_from ON messages(from_addr)`,
	`CREATE INDEX IF NOT EXISTS messages_subject ON messages(subject)`,
	`CREATE INDEX IF NOT EXISTS messages_to_cc ON messages(to_addrs, cc_addrs)`,
	// The IMAP view pages and counts a folder through narrow indexes, never
	// the wide rows: every message seq in order, and the few disposed or
	// erased ones (a partial index).
	`CREATE INDEX IF NOT EXISTS messages_seq ON messages(seq)`,
	`CREATE INDEX IF NOT EXISTS messages_gone ON messages(seq) WHERE state != 0`,
	`CREATE TABLE IF NOT EXISTS deliveries (
		seq          INTEGER PRIMARY KEY,
		message      INTEGER NOT NULL,
		delivery_key TEXT UNIQUE,
		source       TEXT NOT NULL,
		sender       TEXT NOT NULL,
		received_at  INTEGER NOT NULL,
		envelope     BLOB NOT NULL,
		mac          BLOB NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS deliveries_message ON deliveries(message)`,
	`CREATE TABLE IF NOT EXISTS recipients (
		delivery INTEGER NOT NULL,
		message  INTEGER NOT NULL,
		addr     TEXT NOT NULL,
		kind     TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS recipients_addr ON recipients(addr, message)`,
	`CREATE INDEX IF NOT EXISTS recipients_message ON recipients(message)`,
	// delivery is the first delivery that brought the message to this
	// custodian: the IMAP view numbers a custodian's folder by it, so a
	// message that reaches a custodian late gets a new, higher UID.
	`CREATE TABLE IF NOT EXISTS custodians (
		addr     TEXT NOT NULL,
		message  INTEGER NOT NULL,
		delivery INTEGER NOT NULL,
		PRIMARY KEY (addr, message)
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS custodians_message ON custodians(message)`,
	`CREATE INDEX IF NOT EXISTS custodians_delivery ON custodians(addr, delivery)`,
	// INTERNALDATE of the IMAP view, its Dates/ folders and SINCE/BEFORE
	// (message: a message's first delivery has seq = message).
	`CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries(received_at, message)`,
	// The deduplication index (shas.go): recent hashes by merge part
	// (their first four bits) and seq, the rest by hash.
	`CREATE TABLE IF NOT EXISTS shas_new (part INTEGER NOT NULL, seq INTEGER NOT NULL, sha BLOB NOT NULL,
		PRIMARY KEY (part, seq)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS shas (sha BLOB PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID`,
	// Blind full-text index: each word of a message's text is replaced by a
	// keyed hash before it reaches SQLite. fts_docs holds each message's
	// tokens (docid = message seq); fts indexes them, filled in the
	// background by IndexText (an external-content FTS4 table, so that
	// erasure can delete a message's tokens).
	`CREATE TABLE IF NOT EXISTS fts_docs (docid INTEGER PRIMARY KEY, tokens TEXT NOT NULL)`,
	`CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts4(content="fts_docs", tokens)`,
}

// addedColumns were added to schema 2's tables after indexes were made
// with it; addColumns gives them to such an index (empty: its reads then
// look the objects up, as before).
var addedColumns = []struct{ table, column, decl string }{
	{"messages", "object_hint", "BLOB"},
	{"messages", "key_hint", "BLOB"},
}

func addColumns(db *sql.DB) error {
	for _, c := range addedColumns {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, c.table, c.column).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := db.Exec(`ALTER TABLE ` + c.table + ` ADD COLUMN ` + c.column + ` ` + c.decl); err != nil {
				return err
			}
		}
	}
	return nil
}

// Index is the SQLite index. It is safe for concurrent use; writes are
// serialised by the archive's group commit.
type Index struct {
	db    *sql.DB
	macs  *crypto.MACPool // HMAC-SHA256 under the row MAC key
	path  string
	ftsMu sync.Mutex // one full-text indexer at a time
	// head is the largest entry seq, as of Open and this Index's commits
	// (-1: none): what Head answers without a query.
	head atomic.Int64
	// shas holds the hashes of archived bytes, when the writer asked for
	// it (FilterSHAs): MessageBySHA answers "not found" from it.
	shas       atomic.Pointer[bloom.Filter]
	stopLoad   context.CancelFunc
	loadedSHAs chan struct{}
	// scrubPending: the last Scrub failed (ScrubPending).
	scrubPending atomic.Bool
	// legacy: a schema 2 index, whose UNIQUE index on messages.sha256 is
	// the deduplication index; otherwise shas and shas_new are (shas.go).
	legacy bool
	recent recent

	// Statements of the ingest path, prepared once.
	bySHA       *sql.Stmt
	stateBySeq  *sql.Stmt
	byKey       *sql.Stmt
	message     *sql.Stmt
	entry       *sql.Stmt   // an entry by seq (export proofs)
	commitStmts []*sql.Stmt // commitSQL, in order
}

// Open opens (creating if needed) the index database at path. macKey keys
// the row MACs.
func Open(path string, macKey []byte) (*Index, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	dsn := sqlitefile.URI(path, "_journal_mode=WAL&_synchronous=NORMAL&_secure_delete=on&_busy_timeout="+
		strconv.FormatInt(dsnBusyTimeout.Milliseconds(), 10)+"&_txlock=immediate&_foreign_keys=off&cache=private")
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	for _, stmt := range schema {
		if _, err := db.Exec(stmt); err != nil {
			var v int
			if db.QueryRow(`SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'schema'`).Scan(&v) == nil && v != schemaVersion && v != 2 {
				err = fmt.Errorf("it has schema %d, this cairn knows %d; run `cairn reindex`", v, schemaVersion)
			}
			db.Close()
			return nil, fmt.Errorf("index: %s: schema: %w", path, err)
		}
	}
	if err := addColumns(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: %s: schema: %w", path, err)
	}
	ix := &Index{db: db, macs: crypto.NewMACPool(macKey), path: path}
	var v int
	err = db.QueryRow(`SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'schema'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := db.Exec(`INSERT OR IGNORE INTO meta(k, v) VALUES('schema', ?)`, schemaVersion); err != nil {
			db.Close()
			return nil, fmt.Errorf("index: %w", err)
		}
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	case v != schemaVersion && v != 2:
		db.Close()
		return nil, fmt.Errorf("index: %s has schema %d, this cairn knows %d; run `cairn reindex`", path, v, schemaVersion)
	}
	// Legacy by what the file holds, not by its number: messages made with
	// a UNIQUE sha256 column.
	var unique int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_index_list('messages') WHERE origin = 'u'`).Scan(&unique); err != nil {
		db.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	ix.legacy = unique > 0
	bySHA := `SELECT s.seq, m.state FROM shas s JOIN messages m ON m.seq = s.seq WHERE s.sha = ?`
	if ix.legacy {
		bySHA = `SELECT seq, state FROM messages WHERE sha256 = ?`
	}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&ix.bySHA, bySHA},
		{&ix.stateBySeq, `SELECT state FROM messages WHERE seq = ?`},
		{&ix.byKey, `SELECT seq, message FROM deliveries WHERE delivery_key = ?`},
		{&ix.message, `SELECT ` + messageColumns + ` FROM messages WHERE seq = ?`},
		{&ix.entry, `SELECT line FROM entries WHERE seq = ?`},
	} {
		if *p.st, err = db.Prepare(p.q); err != nil {
			ix.Close()
			return nil, fmt.Errorf("index: %s: %w", path, err)
		}
	}
	for _, q := range commitSQL {
		st, err := db.Prepare(q)
		if err != nil {
			ix.Close()
			return nil, fmt.Errorf("index: %s: %w", path, err)
		}
		ix.commitStmts = append(ix.commitStmts, st)
	}
	var head int64
	if err := db.QueryRow(`SELECT COALESCE(MAX(seq), -1) FROM entries`).Scan(&head); err != nil {
		ix.Close()
		return nil, fmt.Errorf("index: %s: %w", path, err)
	}
	ix.head.Store(head)
	return ix, nil
}

// Close closes the database.
func (ix *Index) Close() error {
	if ix.stopLoad != nil {
		ix.stopLoad()
		<-ix.loadedSHAs
	}
	for _, st := range append([]*sql.Stmt{ix.bySHA, ix.stateBySeq, ix.byKey, ix.message, ix.entry}, ix.commitStmts...) {
		if st != nil {
			st.Close()
		}
	}
	return ix.db.Close()
}

// SetMeta stores a small value under key.
func (ix *Index) SetMeta(ctx context.Context, key string, value []byte) error {
	_, err := ix.db.ExecContext(ctx, `INSERT INTO meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, key, value)
	if err != nil {
		return fmt.Errorf("index: meta %s: %w", key, err)
	}
	return nil
}

// Meta returns the value stored under key, or ErrNotFound.
func (ix *Index) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := ix.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: meta %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("index: meta %s: %w", key, err)
	}
	return v, nil
}

// DB exposes the database for read-only queries by the archive's readers
// (IMAP view, search). Writers go through Commit.
func (ix *Index) DB() *sql.DB { return ix.db }

// Path is the database file.
func (ix *Index) Path() string { return ix.path }

// MessageRow is one archived message.
type MessageRow struct {
	Seq          uint64
	SHA256       [32]byte
	Size         int64
	Object       string
	KeyObject    string
	ObjectSHA256 [32]byte
	ObjectSize   int64
	ArchivedAt   time.Time
	Date         time.Time // the Date header, zero when missing or unparseable
	From         string    // lower-case addresses, comma-separated
	To           string
	Cc           string
	Subject      string // decoded
	MessageID    string
	Header       []byte // the raw top-level header block, incl. the blank line
	Structure    []byte // message.Part, binary
	Problems     []string
	State        int
	// ObjectHint and KeyHint are where the store said it put the message
	// and key objects (objstore.Hinter), nil if it cannot say or the row
	// was rebuilt from the ledger. Outside the row's MAC: a read from a
	// hint checks the object it finds there, and falls back to a lookup.
	ObjectHint, KeyHint []byte
}

// DeliveryRow is one delivery of a message. Its MAC covers the envelope
// JSON; the recipients and custodians rows are derived from it.
type DeliveryRow struct {
	Seq         uint64
	Message     uint64
	DeliveryKey string
	Source      string
	Sender      string
	ReceivedAt  time.Time
	Envelope    []byte // the envelope JSON as sealed in the ledger
	Recipients  []Recipient
	Custodians  []string
}

// Recipient is one recipient row.
type Recipient struct {
	Addr string
	Kind string
}

// EntryRow is one ledger line.
type EntryRow struct {
	Seq  uint64
	Kind string
	Ref  *uint64
	Line []byte
	// Leaf is LeafHash(Line) when the caller has it (the group commit's
	// segment does); zero: Commit computes it.
	Leaf ledger.Hash
}

// Batch is what one group commit adds to the index.
type Batch struct {
	Entries    []EntryRow
	Messages   []MessageRow
	Deliveries []DeliveryRow
	// Tokens maps a message seq to its blind full-text tokens.
	Tokens map[uint64]string
	// Gone lists messages disposed or erased by this batch's tombstones.
	Gone []Gone
	// State is the ledger state after the batch.
	State ledger.State
}

// Append adds o's rows to b's (for one transaction of several batches);
// b's State is left as it is.
func (b *Batch) Append(o *Batch) {
	b.Entries = append(b.Entries, o.Entries...)
	b.Messages = append(b.Messages, o.Messages...)
	b.Deliveries = append(b.Deliveries, o.Deliveries...)
	b.Gone = append(b.Gone, o.Gone...)
	if len(o.Tokens) > 0 && b.Tokens == nil {
		b.Tokens = make(map[uint64]string, len(o.Tokens))
	}
	for seq, t := range o.Tokens {
		b.Tokens[seq] = t
	}
}

// Gone is a message taken out of the archive: its row keeps only what
// verify needs (seq, object names and hashes, state); everything that
// could reveal or confirm its content goes (header, structure, SHA-256,
// envelopes, recipients, custodians, search tokens).
type Gone struct {
	Seq   uint64
	State int // StateDisposed or StateErased
}

// Commit writes a batch in one transaction.
func (ix *Index) Commit(b *Batch) error {
	w, err := ix.Write(b)
	if err != nil {
		return err
	}
	return w.Commit(b.State)
}

// Writing is a batch written in an open transaction, not yet committed:
// nothing of it is visible to readers until Commit.
type Writing struct {
	ix   *Index
	tx   *sql.Tx
	b    *Batch
	shas *shaChanges
}

// Write begins a transaction and writes b's rows in it, all but the ledger
// state, which Commit writes: the group commit writes a batch's rows while
// its ledger segment is made durable, and commits them only once it is.
// The caller must call Commit or Rollback.
func (ix *Index) Write(b *Batch) (*Writing, error) {
	if err := ix.loadRecent(); err != nil {
		return nil, err
	}
	if err := ix.mergeRecent(); err != nil {
		return nil, err
	}
	tx, err := ix.db.Begin()
	if err != nil {
		return nil, fmt.Errorf("index: begin: %w", err)
	}
	ch := &shaChanges{}
	if err := ix.commitTx(tx, b, ch); err != nil {
		tx.Rollback()
		return nil, err
	}
	return &Writing{ix: ix, tx: tx, b: b, shas: ch}, nil
}

// Rollback drops the batch's rows.
func (w *Writing) Rollback() { w.tx.Rollback() }

// Commit records st as the ledger state the index has caught up to and
// commits the batch.
func (w *Writing) Commit(st ledger.State) error {
	ix, b := w.ix, w.b
	defer w.tx.Rollback()
	stst := w.tx.Stmt(ix.commitStmts[6])
	defer stst.Close()
	if _, err := stst.Exec(stateBlob(st)); err != nil {
		return fmt.Errorf("index: ledger state: %w", err)
	}
	if err := w.tx.Commit(); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	w.shas.apply(&ix.recent)
	for _, e := range b.Entries {
		for n := int64(e.Seq); ; {
			h := ix.head.Load()
			if n <= h || ix.head.CompareAndSwap(h, n) {
				break
			}
		}
	}
	return nil
}

// Head returns the largest entry seq in the index (-1 for none) as of
// Open and the commits made through this Index since: without a query,
// and exact when this Index is the archive's only writer (a process that
// holds the writer lock).
func (ix *Index) Head() int64 { return ix.head.Load() }

// FilterSHAs lets MessageBySHA answer "not found" without a query for bytes
// certainly never archived (nearly every new message): the archived hashes
// are loaded into a Bloom filter in the background, and each Commit adds
// its own. Only the archive's one writer may call it, once, before it
// commits anything: another process's commits would never reach the
// filter.
func (ix *Index) FilterSHAs() {
	f := bloom.New(int(ix.Head() + 1))
	ix.shas.Store(f)
	// The writer's lookups of recent hashes use the copy in memory (an
	// error leaves it unloaded: lookups then scan shas_new, and the first
	// Write reports the error).
	ix.loadRecent()
	ctx, cancel := context.WithCancel(context.Background())
	ix.stopLoad, ix.loadedSHAs = cancel, make(chan struct{})
	q := `SELECT sha FROM shas UNION ALL SELECT sha FROM shas_new`
	if ix.legacy {
		// The UNIQUE index on sha256 covers the query: the scan reads
		// hashes, not message rows.
		q = `SELECT sha256 FROM messages WHERE sha256 IS NOT NULL`
	}
	go func() {
		defer close(ix.loadedSHAs)
		f.Load(ctx, ix.db, q)
	}()
}

func (ix *Index) commitTx(tx *sql.Tx, b *Batch, ch *shaChanges) error {
	if len(b.Entries) > 0 {
		st := tx.Stmt(ix.commitStmts[0])
		defer st.Close()
		for _, e := range b.Entries {
			leaf := e.Leaf
			if leaf == (ledger.Hash{}) {
				leaf = ledger.LeafHash(e.Line)
			}
			var ref any
			if e.Ref != nil {
				ref = int64(*e.Ref)
			}
			if _, err := st.Exec(int64(e.Seq), e.Kind, ref, e.Line, leaf[:]); err != nil {
				return fmt.Errorf("index: entry %d: %w", e.Seq, err)
			}
		}
	}
	if len(b.Messages) > 0 {
		st := tx.Stmt(ix.commitStmts[1])
		defer st.Close()
		var newSHA *sql.Stmt // shas_new's insert
		if !ix.legacy {
			newSHA = tx.Stmt(ix.commitStmts[7])
			defer newSHA.Close()
		}
		for i := range b.Messages {
			m := &b.Messages[i]
			var date any
			if !m.Date.IsZero() {
				date = m.Date.Unix()
			}
			var sha any = m.SHA256[:]
			if m.SHA256 == ([32]byte{}) {
				sha = nil // unknown (unreadable at reindex) or erased
			} else if !ix.legacy {
				first, dup, err := ix.firstWithSHA(tx, m.SHA256, ch.added)
				if err != nil {
					return err
				}
				if dup {
					// As with schema 2's UNIQUE index (below): the
					// earlier message keeps the SHA-256.
					m.SHA256 = [32]byte{}
					m.Problems = append(m.Problems, fmt.Sprintf("the same bytes as message %d", first))
					sha = nil
				} else {
					if _, err := newSHA.Exec(int(m.SHA256[0]>>4), int64(m.Seq), m.SHA256[:]); err != nil {
						return fmt.Errorf("index: message %d: %w", m.Seq, err)
					}
					if ch.added == nil {
						ch.added = make(map[[32]byte]uint64)
					}
					ch.added[m.SHA256] = m.Seq
				}
			}
			if f := ix.shas.Load(); f != nil && sha != nil {
				f.Add(string(m.SHA256[:]))
			}
			_, err := st.Exec(int64(m.Seq), sha, m.Size, m.Object, m.KeyObject, m.ObjectSHA256[:], m.ObjectSize,
				m.ArchivedAt.UnixNano(), date, m.From, m.To, m.Cc, m.Subject, m.MessageID, m.Header, m.Structure,
				strings.Join(m.Problems, "\n"), m.State, ix.messageMAC(m), m.ObjectHint, m.KeyHint)
			var se sqlite3.Error
			if errors.As(err, &se) && se.ExtendedCode == sqlite3.ErrConstraintUnique && sha != nil {
				// The ledger holds these bytes twice (a valid ledger: a
				// retry after a lost acknowledgement can do it). The
				// earlier message keeps the SHA-256 for lookups.
				var first int64
				tx.QueryRow(`SELECT seq FROM messages WHERE sha256 = ?`, sha).Scan(&first)
				m.SHA256 = [32]byte{}
				m.Problems = append(m.Problems, fmt.Sprintf("the same bytes as message %d", first))
				_, err = st.Exec(int64(m.Seq), nil, m.Size, m.Object, m.KeyObject, m.ObjectSHA256[:], m.ObjectSize,
					m.ArchivedAt.UnixNano(), date, m.From, m.To, m.Cc, m.Subject, m.MessageID, m.Header, m.Structure,
					strings.Join(m.Problems, "\n"), m.State, ix.messageMAC(m), m.ObjectHint, m.KeyHint)
			}
			if err != nil {
				return fmt.Errorf("index: message %d: %w", m.Seq, err)
			}
		}
	}
	if len(b.Deliveries) > 0 {
		st := tx.Stmt(ix.commitStmts[2])
		defer st.Close()
		rst := tx.Stmt(ix.commitStmts[3])
		defer rst.Close()
		cst := tx.Stmt(ix.commitStmts[4])
		defer cst.Close()
		for i := range b.Deliveries {
			d := &b.Deliveries[i]
			var key any
			if d.DeliveryKey != "" {
				key = d.DeliveryKey
			}
			if _, err := st.Exec(int64(d.Seq), int64(d.Message), key, d.Source, d.Sender, d.ReceivedAt.UnixNano(), d.Envelope, ix.deliveryMAC(d)); err != nil {
				return fmt.Errorf("index: delivery %d: %w", d.Seq, err)
			}
			for _, r := range d.Recipients {
				if _, err := rst.Exec(int64(d.Seq), int64(d.Message), r.Addr, r.Kind); err != nil {
					return fmt.Errorf("index: delivery %d: %w", d.Seq, err)
				}
			}
			for _, c := range d.Custodians {
				if _, err := cst.Exec(c, int64(d.Message), int64(d.Seq)); err != nil {
					return fmt.Errorf("index: delivery %d: %w", d.Seq, err)
				}
			}
		}
	}
	if len(b.Tokens) > 0 {
		st := tx.Stmt(ix.commitStmts[5])
		defer st.Close()
		for seq, toks := range b.Tokens {
			if _, err := st.Exec(int64(seq), toks); err != nil {
				return fmt.Errorf("index: tokens of %d: %w", seq, err)
			}
		}
	}
	for _, g := range b.Gone {
		if err := ix.wipe(tx, g, ch); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT OR IGNORE INTO pending_destroy(seq) VALUES(?)`, int64(g.Seq)); err != nil {
			return fmt.Errorf("index: %w", err)
		}
	}
	return nil
}

// LedgerState returns the ledger state the index has caught up to.
func (ix *Index) LedgerState() (ledger.State, error) {
	var st ledger.State
	var blob []byte
	err := ix.db.QueryRow(`SELECT v FROM meta WHERE k = 'ledger_state'`).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("index: ledger state: %w", err)
	}
	if len(blob) < 40 || (len(blob)-40)%32 != 0 {
		return st, fmt.Errorf("index: ledger state is corrupt; run `cairn reindex`")
	}
	st.Size = binary.BigEndian.Uint64(blob[:8])
	copy(st.Last[:], blob[8:40])
	for b := blob[40:]; len(b) > 0; b = b[32:] {
		var h ledger.Hash
		copy(h[:], b[:32])
		st.Range = append(st.Range, h)
	}
	return st, nil
}

// stateBlob is st as the index keeps it: size, last hash, then the range.
func stateBlob(st ledger.State) []byte {
	blob := make([]byte, 0, 40+32*len(st.Range))
	blob = binary.BigEndian.AppendUint64(blob, st.Size)
	blob = append(blob, st.Last[:]...)
	for _, h := range st.Range {
		blob = append(blob, h[:]...)
	}
	return blob
}

// mac helpers: HMAC-SHA256 over length-prefixed fields, in column order.
// The fields are gathered in one buffer and written at once (the MAC is
// the same as for field-by-field writes), one allocation instead of one
// a field.
type macWriter struct{ b []byte }

func (w *macWriter) bytes(b []byte) {
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(len(b)))
	w.b = append(w.b, b...)
}
func (w *macWriter) str(s string) {
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *macWriter) int(n int64) { w.b = binary.BigEndian.AppendUint64(w.b, uint64(n)) }

// sum is the HMAC of what w gathered.
func (ix *Index) sum(w *macWriter) []byte {
	h := ix.macs.Get()
	defer ix.macs.Put(h)
	h.Write(w.b)
	return h.Sum(nil)
}

func (ix *Index) messageMAC(m *MessageRow) []byte {
	w := &macWriter{b: make([]byte, 0, 512+len(m.Header)+len(m.Structure))}
	w.str("message")
	w.int(int64(m.Seq))
	w.bytes(m.SHA256[:])
	w.int(m.Size)
	w.str(m.Object)
	w.str(m.KeyObject)
	w.bytes(m.ObjectSHA256[:])
	w.int(m.ObjectSize)
	w.int(m.ArchivedAt.UnixNano())
	if m.Date.IsZero() {
		w.int(-1 << 63)
	} else {
		w.int(m.Date.Unix())
	}
	w.str(m.From)
	w.str(m.To)
	w.str(m.Cc)
	w.str(m.Subject)
	w.str(m.MessageID)
	w.bytes(m.Header)
	w.bytes(m.Structure)
	w.str(strings.Join(m.Problems, "\n"))
	w.int(int64(m.State))
	return ix.sum(w)
}

func (ix *Index) deliveryMAC(d *DeliveryRow) []byte {
	w := &macWriter{b: make([]byte, 0, 256+len(d.Envelope))}
	w.str("delivery")
	w.int(int64(d.Seq))
	w.int(int64(d.Message))
	w.str(d.DeliveryKey)
	w.str(d.Source)
	w.str(d.Sender)
	w.int(d.ReceivedAt.UnixNano())
	w.bytes(d.Envelope)
	return ix.sum(w)
}

func hmacEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// wipe applies one Gone inside a transaction.
func (ix *Index) wipe(tx *sql.Tx, g Gone, ch *shaChanges) error {
	row := tx.QueryRow(`SELECT `+messageColumns+` FROM messages WHERE seq = ?`, int64(g.Seq))
	m, _, err := scanMessage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: message %d", ErrNotFound, g.Seq)
	}
	if err != nil {
		return fmt.Errorf("index: message %d: %w", g.Seq, err)
	}
	if !ix.legacy && m.SHA256 != ([32]byte{}) {
		// Bytes taken out of the archive are new again if they return.
		if _, err := tx.Exec(`DELETE FROM shas WHERE sha = ?`, m.SHA256[:]); err != nil {
			return fmt.Errorf("index: wipe message %d: %w", g.Seq, err)
		}
		if _, err := tx.Exec(`DELETE FROM shas_new WHERE part = ? AND seq = ?`, int(m.SHA256[0]>>4), int64(g.Seq)); err != nil {
			return fmt.Errorf("index: wipe message %d: %w", g.Seq, err)
		}
		ch.removed = append(ch.removed, m.SHA256)
	}
	m.SHA256 = [32]byte{}
	m.Date = time.Time{}
	m.From, m.To, m.Cc, m.Subject, m.MessageID = "", "", "", "", ""
	m.Header, m.Structure, m.Problems = []byte{}, []byte{}, nil
	m.State = g.State
	if _, err := tx.Exec(`UPDATE messages SET sha256 = NULL, date = NULL, from_addr = '', to_addrs = '', cc_addrs = '', subject = '',
		message_id = '', header = x'', structure = x'', problems = '', state = ?, mac = ? WHERE seq = ?`,
		g.State, ix.messageMAC(m), int64(g.Seq)); err != nil {
		return fmt.Errorf("index: wipe message %d: %w", g.Seq, err)
	}
	rows, err := tx.Query(`SELECT seq, COALESCE(delivery_key, ''), source, received_at FROM deliveries WHERE message = ?`, int64(g.Seq))
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	var ds []DeliveryRow
	for rows.Next() {
		var d DeliveryRow
		var seq, recv int64
		if err := rows.Scan(&seq, &d.DeliveryKey, &d.Source, &recv); err != nil {
			rows.Close()
			return fmt.Errorf("index: %w", err)
		}
		d.Seq, d.Message, d.ReceivedAt, d.Envelope = uint64(seq), g.Seq, time.Unix(0, recv).UTC(), []byte("{}")
		ds = append(ds, d)
	}
	rows.Close()
	for i := range ds {
		if _, err := tx.Exec(`UPDATE deliveries SET sender = '', envelope = '{}', mac = ? WHERE seq = ?`, ix.deliveryMAC(&ds[i]), int64(ds[i].Seq)); err != nil {
			return fmt.Errorf("index: wipe delivery %d: %w", ds[i].Seq, err)
		}
	}
	for _, q := range []string{`DELETE FROM recipients WHERE message = ?`, `DELETE FROM custodians WHERE message = ?`} {
		if _, err := tx.Exec(q, int64(g.Seq)); err != nil {
			return fmt.Errorf("index: wipe message %d: %w", g.Seq, err)
		}
	}
	// The full-text entries go first, while fts_docs still holds the
	// tokens FTS4 must remove; a message not yet indexed has none.
	var mark int64 = -1
	var v []byte
	if err := tx.QueryRow(`SELECT v FROM meta WHERE k = 'fts_indexed'`).Scan(&v); err == nil {
		fmt.Sscan(string(v), &mark)
	}
	if int64(g.Seq) <= mark {
		if _, err := tx.Exec(`DELETE FROM fts WHERE docid = ?`, int64(g.Seq)); err != nil {
			return fmt.Errorf("index: full-text delete %d: %w", g.Seq, err)
		}
	}
	if _, err := tx.Exec(`DELETE FROM fts_docs WHERE docid = ?`, int64(g.Seq)); err != nil {
		return fmt.Errorf("index: full-text delete %d: %w", g.Seq, err)
	}
	return nil
}

// Scrub makes deleted content unrecoverable from the database files: with
// secure_delete on, freed pages are already zeroed in the database; this
// checkpoints the WAL into it and truncates the WAL, whose old frames still
// hold the content as it was. Called after an erasure.
//
// A reader still on an older snapshot (a long IMAP FETCH, another process)
// keeps the WAL's frames in use, and a checkpoint another connection runs
// holds the checkpoint lock: Scrub waits for either up to scrubWait, then
// fails rather than report a WAL it did not empty (SQLite answers both
// with a "busy" column, not an error).
func (ix *Index) Scrub(ctx context.Context) error {
	conn, err := ix.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("index: scrub: %w", err)
	}
	defer conn.Close()
	if scrubWait != dsnBusyTimeout {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout=%d`, scrubWait.Milliseconds())); err != nil {
			return fmt.Errorf("index: scrub: %w", err)
		}
		defer conn.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA busy_timeout=%d`, dsnBusyTimeout.Milliseconds()))
	}
	// Busy also answers at once while another connection's checkpoint
	// (a commit's automatic one) runs: that ends soon, so try again.
	deadline := time.Now().Add(scrubWait)
	var busy, frames, done int64
	for {
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return fmt.Errorf("index: scrub: %w", err)
		}
		if busy == 0 || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("index: scrub: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if busy != 0 {
		ix.scrubPending.Store(true)
		return fmt.Errorf("index: scrub: the write-ahead log stayed in use for %s (readers of older snapshots, or another checkpoint); the next retention run scrubs it again", scrubWait)
	}
	ix.scrubPending.Store(false)
	return nil
}

// ScrubPending reports whether a Scrub failed since the last one that
// succeeded: the retention run scrubs again then. (A restart needs none:
// the last connection to close checkpoints and removes the WAL.)
func (ix *Index) ScrubPending() bool { return ix.scrubPending.Load() }

// walCheckpointPages is how long the index's WAL may grow before a commit
// checkpoints it (SQLite's default is 1,000 pages). A checkpoint copies
// each page once however many commits rewrote it since the last one: on
// an archive of 300,000 messages, whose SHA-256 index takes a random page
// a message, 10,000 cut what reached the disk from 41 to 37 KB a message
// under the SMTP benchmark (and serve's CPU by ~4 %; fresh, 245 → 237 µs).
// The WAL file then keeps up to ~40 MB.
const walCheckpointPages = 10000

// driverName is mattn/go-sqlite3 with every connection's WAL checkpoint
// threshold set (a per-connection pragma the DSN cannot carry).
const driverName = "sqlite3-cairn-index"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint=%d", walCheckpointPages), nil)
		return err
	}})
}

// dsnBusyTimeout is Open's _busy_timeout; scrubWait is Scrub's (tests
// shorten it).
const dsnBusyTimeout = 10 * time.Second

var scrubWait = dsnBusyTimeout

// commitSQL are the statements of Commit, prepared once at Open (the
// ingest path runs them for every delivery).
var commitSQL = []string{
	`INSERT INTO entries(seq, kind, ref, line, leaf) VALUES(?,?,?,?,?)`,
	`INSERT INTO messages(seq, sha256, size, object, key_object, object_sha256, object_size,
			archived_at, date, from_addr, to_addrs, cc_addrs, subject, message_id, header, structure, problems, state, mac,
			object_hint, key_hint)
			VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
	`INSERT INTO deliveries(seq, message, delivery_key, source, sender, received_at, envelope, mac) VALUES(?,?,?,?,?,?,?,?)`,
	`INSERT INTO recipients(delivery, message, addr, kind) VALUES(?,?,?,?)`,
	`INSERT OR IGNORE INTO custodians(addr, message, delivery) VALUES(?,?,?)`,
	`INSERT INTO fts_docs(docid, tokens) VALUES(?, ?)`,
	`INSERT INTO meta(k, v) VALUES('ledger_state', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`,
	`INSERT INTO shas_new(part, seq, sha) VALUES(?, ?, ?)`,
}
