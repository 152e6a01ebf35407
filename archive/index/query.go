package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// MessageBySHA returns the seq and state of the message with these bytes.
func (ix *Index) MessageBySHA(ctx context.Context, sha [32]byte) (seq uint64, state int, err error) {
	var s int64
	switch {
	case ix.shas.Load().Absent(string(sha[:])):
		err = sql.ErrNoRows
	case ix.legacy:
		err = ix.bySHA.QueryRowContext(ctx, sha[:]).Scan(&s, &state)
	default:
		s, state, err = ix.messageBySHA(ctx, sha)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("%w: message %x", ErrNotFound, sha[:8])
	}
	if err != nil {
		return 0, 0, fmt.Errorf("index: %w", err)
	}
	return uint64(s), state, nil
}

// DeliveryByKey returns the delivery recorded under key and its message.
func (ix *Index) DeliveryByKey(ctx context.Context, key string) (seq, message uint64, err error) {
	var s, m int64
	err = ix.byKey.QueryRowContext(ctx, key).Scan(&s, &m)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("%w: delivery key %q", ErrNotFound, key)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("index: %w", err)
	}
	return uint64(s), uint64(m), nil
}

const messageColumns = `seq, sha256, size, object, key_object, object_sha256, object_size, archived_at, date,
	from_addr, to_addrs, cc_addrs, subject, message_id, header, structure, problems, state, mac, object_hint, key_hint`

func scanMessage(sc interface{ Scan(...any) error }) (*MessageRow, []byte, error) {
	var m MessageRow
	var seq, archived int64
	var date sql.NullInt64
	var sha, osha, mac []byte
	var problems string
	if err := sc.Scan(&seq, &sha, &m.Size, &m.Object, &m.KeyObject, &osha, &m.ObjectSize, &archived, &date,
		&m.From, &m.To, &m.Cc, &m.Subject, &m.MessageID, &m.Header, &m.Structure, &problems, &m.State, &mac,
		&m.ObjectHint, &m.KeyHint); err != nil {
		return nil, nil, err
	}
	m.Seq = uint64(seq)
	copy(m.SHA256[:], sha)
	copy(m.ObjectSHA256[:], osha)
	m.ArchivedAt = time.Unix(0, archived).UTC()
	if date.Valid {
		m.Date = time.Unix(date.Int64, 0).UTC()
	}
	if problems != "" {
		m.Problems = strings.Split(problems, "\n")
	}
	return &m, mac, nil
}

// Message returns the message stored by ledger entry seq.
func (ix *Index) Message(ctx context.Context, seq uint64) (*MessageRow, error) {
	row := ix.message.QueryRowContext(ctx, int64(seq))
	m, _, err := scanMessage(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: message %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("index: message %d: %w", seq, err)
	}
	return m, nil
}

// MessageSeqBySHA resolves a (full, lower-case hex) SHA-256 to a seq.
func (ix *Index) MessageSeqBySHA(ctx context.Context, sha [32]byte) (uint64, error) {
	seq, _, err := ix.MessageBySHA(ctx, sha)
	return seq, err
}

// MessageOfEntry returns the message seq that ledger entry seq concerns: the
// entry itself for a message entry, its ref for a delivery.
func (ix *Index) MessageOfEntry(ctx context.Context, seq uint64) (uint64, error) {
	var kind string
	var ref sql.NullInt64
	err := ix.db.QueryRowContext(ctx, `SELECT kind, ref FROM entries WHERE seq = ?`, int64(seq)).Scan(&kind, &ref)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: ledger entry %d", ErrNotFound, seq)
	}
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	if ref.Valid {
		return uint64(ref.Int64), nil
	}
	return seq, nil
}

// EachMessage calls fn for every message row in seq order, with whether its
// MAC verifies. Rows are streamed, not held.
func (ix *Index) EachMessage(ctx context.Context, fn func(m *MessageRow, macOK bool) error) error {
	return ix.messages(ctx, func(m *MessageRow, mac []byte) error {
		return fn(m, hmacEqual(mac, ix.messageMAC(m)))
	}, `SELECT `+messageColumns+` FROM messages ORDER BY seq`)
}

// messages calls fn for each message row query returns, with its MAC.
func (ix *Index) messages(ctx context.Context, fn func(m *MessageRow, mac []byte) error, query string, args ...any) error {
	rows, err := ix.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, mac, err := scanMessage(rows)
		if err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if err := fn(m, mac); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachDelivery calls fn for every delivery row in seq order, with whether
// its MAC verifies and its recipient rows.
func (ix *Index) EachDelivery(ctx context.Context, fn func(d *DeliveryRow, macOK bool) error) error {
	rows, err := ix.db.QueryContext(ctx, `SELECT seq, message, COALESCE(delivery_key, ''), source, sender, received_at, envelope, mac FROM deliveries ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d DeliveryRow
		var seq, msg, recv int64
		var mac []byte
		if err := rows.Scan(&seq, &msg, &d.DeliveryKey, &d.Source, &d.Sender, &recv, &d.Envelope, &mac); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		d.Seq, d.Message, d.ReceivedAt = uint64(seq), uint64(msg), time.Unix(0, recv).UTC()
		if err := fn(&d, hmacEqual(mac, ix.deliveryMAC(&d))); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EachEntry calls fn for every ledger line in the index, in seq order.
func (ix *Index) EachEntry(ctx context.Context, fn func(seq uint64, line []byte) error) error {
	return ix.entries(ctx, fn, `SELECT seq, line FROM entries ORDER BY seq`)
}

// entries calls fn for each (seq, line) query returns.
func (ix *Index) entries(ctx context.Context, fn func(seq uint64, line []byte) error, query string, args ...any) error {
	rows, err := ix.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var line []byte
		if err := rows.Scan(&seq, &line); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if err := fn(uint64(seq), line); err != nil {
			return err
		}
	}
	return rows.Err()
}

// EntriesIn calls fn for every ledger line the index holds with a seq in
// [from, to), in seq order: one query for a range that Entry would look up
// one by one.
func (ix *Index) EntriesIn(ctx context.Context, from, to uint64, fn func(seq uint64, line []byte) error) error {
	if from >= to || from > math.MaxInt64 {
		return nil
	}
	return ix.entries(ctx, fn, `SELECT seq, line FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq`, int64(from), int64(min(to, math.MaxInt64)))
}

// MessagesIn calls fn for every message row with a seq in [from, to), in
// seq order (without checking MACs: see EachMessage).
func (ix *Index) MessagesIn(ctx context.Context, from, to uint64, fn func(m *MessageRow) error) error {
	if from >= to || from > math.MaxInt64 {
		return nil
	}
	return ix.messages(ctx, func(m *MessageRow, _ []byte) error { return fn(m) },
		`SELECT `+messageColumns+` FROM messages WHERE seq >= ? AND seq < ? ORDER BY seq`, int64(from), int64(min(to, math.MaxInt64)))
}

// Entry returns the ledger line of seq.
func (ix *Index) Entry(ctx context.Context, seq uint64) ([]byte, error) {
	var line []byte
	err := ix.entry.QueryRowContext(ctx, int64(seq)).Scan(&line)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: ledger entry %d", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	return line, nil
}

// Recipients returns the recipient rows of delivery seq, in stored order.
func (ix *Index) Recipients(ctx context.Context, delivery uint64) ([]Recipient, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT addr, kind FROM recipients WHERE delivery = ? ORDER BY rowid`, int64(delivery))
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	var out []Recipient
	for rows.Next() {
		var r Recipient
		if err := rows.Scan(&r.Addr, &r.Kind); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Custodians returns the custodian addresses of message seq, sorted.
func (ix *Index) Custodians(ctx context.Context, message uint64) ([]string, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT addr FROM custodians WHERE message = ? ORDER BY addr`, int64(message))
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Counts returns how many entries, messages and deliveries the index holds.
func (ix *Index) Counts(ctx context.Context) (entries, messages, deliveries int64, err error) {
	err = ix.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM entries), (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM deliveries)`).Scan(&entries, &messages, &deliveries)
	if err != nil {
		err = fmt.Errorf("index: %w", err)
	}
	return
}

// MessageByObjectSHA returns the message whose stored object has this
// SHA-256 (to name what replaced a damaged object). It scans the table:
// only verify calls it, and only for an object found damaged.
func (ix *Index) MessageByObjectSHA(ctx context.Context, sha [32]byte) (uint64, error) {
	var seq int64
	err := ix.db.QueryRowContext(ctx, `SELECT seq FROM messages WHERE object_sha256 = ?`, sha[:]).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: object %x", ErrNotFound, sha[:8])
	}
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	return uint64(seq), nil
}

// EachReferencedObject calls fn with every object key the index
// references (message, key and evidence objects), in key order. It sorts
// without an index: it serves verify --orphans, not the ingest path.
func (ix *Index) EachReferencedObject(ctx context.Context, fn func(key string) error) error {
	rows, err := ix.db.QueryContext(ctx, `SELECT object FROM messages UNION SELECT key_object FROM messages
		UNION SELECT json_extract(line, '$.delivery.evidence') FROM entries WHERE kind IN ('message','delivery') AND json_extract(line, '$.delivery.evidence') IS NOT NULL
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return rows.Err()
}

// PendingDestroy returns messages whose objects still have to be destroyed.
func (ix *Index) PendingDestroy(ctx context.Context) ([]uint64, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT seq FROM pending_destroy ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		out = append(out, uint64(s))
	}
	return out, rows.Err()
}

// Destroyed records that a message's objects are destroyed.
func (ix *Index) Destroyed(ctx context.Context, seq uint64) error {
	if _, err := ix.db.ExecContext(ctx, `DELETE FROM pending_destroy WHERE seq = ?`, int64(seq)); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// EntriesOf returns the ledger lines of message seq and of every entry
// referring to it (its deliveries and tombstones), in seq order.
func (ix *Index) EntriesOf(ctx context.Context, seq uint64) ([][]byte, error) {
	rows, err := ix.db.QueryContext(ctx, `SELECT line FROM entries WHERE seq = ?1 OR ref = ?1 ORDER BY seq`, int64(seq))
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var l []byte
		if err := rows.Scan(&l); err != nil {
			return nil, fmt.Errorf("index: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
