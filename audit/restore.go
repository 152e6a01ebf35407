package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// catchUp brings a database that is behind the object store up to date from
// the sealed segments: audit.db restored from a backup, or lost and made
// anew. Without it the chain would go on from the database's older head,
// giving new events the seqs of sealed ones (a fork that sealing would then
// refuse forever, and that SIEMs would receive as conflicting duplicates).
//
// From the database's last seal on, each stored segment must continue the
// chain (seq and prev of every entry, each line's hash), agree with the
// database on the entries both hold, and be followed by its checkpoint,
// which must be the very note this chain's signer makes over it (ed25519
// is deterministic; a missing one, lost to a crash between the two writes,
// is written now). The entries the database lacks are then inserted with
// the segment's seal record. Anything else is ErrTampered and Open fails:
// the log is fail-closed. A segment whose entries the database already
// holds is left to the sealer, which adopts it (a crash between the
// segment's write and its seal record); so a second process opening the
// log while cairn serve seals never records a seal in its place.
//
// Events committed after the last sealed segment and missing from the
// restored database are not in the store; the SIEM sinks' copies hold them.
// Open goes on without the catch-up when the store cannot be read (as the
// log goes on while sealing fails), and fails on ErrTampered.
// catchUpTimeout bounds the catch-up of Open (a whole log rebuilt from a
// large store reads every segment once).
const catchUpTimeout = time.Hour

func (l *Log) catchUp(ctx context.Context) (added int, err error) {
	st := l.opts.Store
	for {
		first := l.sl.sealed + 1
		key := SegmentKey(l.opts.Origin, first)
		data, err := getAll(ctx, st, key)
		if errors.Is(err, objstore.ErrNotExist) {
			return added, nil
		}
		if err != nil {
			return added, fmt.Errorf("audit: open: read %s: %w", key, err)
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			return added, fmt.Errorf("%w: segment %s is not whole", ErrTampered, key)
		}
		var prev Hash
		if first > 1 {
			if err := l.rdb.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, int64(first-1)).Scan(prevBytes(&prev)); err != nil {
				return added, fmt.Errorf("audit: open: read entry %d: %w", first-1, err)
			}
		}
		lines := bytes.Split(data[:len(data)-1], []byte("\n"))
		entries := make([]Entry, 0, len(lines))
		for i, line := range lines {
			e, err := ParseLine(line)
			if err != nil {
				return added, fmt.Errorf("%w: segment %s, line %d: %v", ErrTampered, key, i+1, err)
			}
			if e.Seq != first+Seq(i) || e.Prev != prev {
				return added, fmt.Errorf("%w: segment %s, line %d (seq %d) does not continue the chain at seq %d", ErrTampered, key, i+1, e.Seq, first+Seq(i))
			}
			prev = e.Hash
			entries = append(entries, e)
		}
		last := first + Seq(len(entries)) - 1
		if last <= l.Head() {
			// The sealer's to adopt; but a database that went on from an
			// older state (a fork) is caught here, not by a sealer that
			// would retry forever.
			for _, e := range entries {
				if err := sameAsStored(ctx, l.rdb, e, key); err != nil {
					return added, err
				}
			}
			return added, nil
		}

		tmp, signed, err := l.nextCheckpoint(entries, last)
		if err != nil {
			return added, err
		}
		cpKey := CheckpointKey(l.opts.Origin, last)
		switch stored, err := getAll(ctx, st, cpKey); {
		case errors.Is(err, objstore.ErrNotExist):
			if err := st.Put(ctx, cpKey, bytes.NewReader(signed), int64(len(signed))); err != nil && !errors.Is(err, objstore.ErrExist) {
				return added, fmt.Errorf("audit: open: write %s: %w", cpKey, err)
			}
		case err != nil:
			return added, fmt.Errorf("audit: open: read %s: %w", cpKey, err)
		case !bytes.Equal(stored, signed):
			return added, fmt.Errorf("%w: checkpoint %s does not match segment %s", ErrTampered, cpKey, key)
		}

		n, err := l.insertSealed(ctx, key, cpKey, signed, tmp, entries)
		if err != nil {
			return added, err
		}
		added += n
		if err := l.loadHead(); err != nil {
			return added, err
		}
		l.sl.sealed, l.sl.rng, l.sl.cp = last, tmp, signed
	}
}

// insertSealed records, in one transaction, the entries of a verified
// segment that the database lacks and the segment's seal. The entries it
// already has must be the segment's.
func (l *Log) insertSealed(ctx context.Context, key, cpKey string, signed []byte, rng *compact.Range, entries []Entry) (int, error) {
	tx, err := l.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var head int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&head); err != nil {
		return 0, err
	}
	first, last := entries[0].Seq, entries[len(entries)-1].Seq
	n := 0
	for _, e := range entries {
		if int64(e.Seq) <= head {
			if err := sameAsStored(ctx, tx, e, key); err != nil {
				return 0, err
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO events(seq, time, action, hash, body) VALUES(?, ?, ?, ?, ?)`,
			int64(e.Seq), e.Event.Time.UnixNano(), string(e.Event.Action), e.Hash[:], e.Bytes); err != nil {
			return 0, fmt.Errorf("audit: open: restore entry %d: %w", e.Seq, err)
		}
		n++
	}
	if err := recordSeal(ctx, tx, first, last, key, cpKey, signed, rng); err != nil {
		return 0, fmt.Errorf("audit: open: record seal %s: %w", key, err)
	}
	return n, tx.Commit()
}

// sameAsStored checks that the database holds e, from segment key, as the
// segment does.
func sameAsStored(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, e Entry, key string) error {
	var h Hash
	if err := q.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, int64(e.Seq)).Scan(prevBytes(&h)); err != nil {
		return fmt.Errorf("audit: open: read entry %d: %w", e.Seq, err)
	}
	if h != e.Hash {
		return fmt.Errorf("%w: entry %d in the database differs from segment %s (the database went on from an older copy?)", ErrTampered, e.Seq, key)
	}
	return nil
}
