package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// FlagOp is how StoreFlags changes flags (RFC 9051 §6.4.6).
type FlagOp int

// The operations of STORE: FLAGS, +FLAGS, -FLAGS.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// MaxFlagsPerMessage bounds one account's flags on one message.
const MaxFlagsPerMessage = 64

// normalizeFlag returns the stored form of a flag: system flags in their
// canonical case (RFC 9051 §2.3.2), keywords as written (compared
// case-insensitively by clients, stored once per case-folded spelling).
func normalizeFlag(f string) string {
	switch strings.ToLower(f) {
	case `\seen`:
		return `\Seen`
	case `\answered`:
		return `\Answered`
	case `\flagged`:
		return `\Flagged`
	case `\draft`:
		return `\Draft`
	case `\deleted`:
		return `\Deleted`
	}
	return f
}

// Flags returns the flags user set on each of msgs (message ledger seqs),
// each list sorted. Messages without flags are absent from the map.
func (d *DB) Flags(ctx context.Context, user string, msgs []uint64) (map[uint64][]string, error) {
	out := make(map[uint64][]string)
	for len(msgs) > 0 {
		n := min(len(msgs), 500)
		args := make([]any, 0, n+1)
		args = append(args, user)
		for _, m := range msgs[:n] {
			args = append(args, int64(m))
		}
		q := `SELECT message, flag FROM flags WHERE user = ? AND message IN (?` + strings.Repeat(",?", n-1) + `) ORDER BY message, flag`
		rows, err := d.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("auth: flags: %w", err)
		}
		for rows.Next() {
			var m int64
			var f string
			if err := rows.Scan(&m, &f); err != nil {
				rows.Close()
				return nil, fmt.Errorf("auth: flags: %w", err)
			}
			out[uint64(m)] = append(out[uint64(m)], f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("auth: flags: %w", err)
		}
		msgs = msgs[n:]
	}
	return out, nil
}

// StoreFlags changes user's flags on msgs in one transaction and returns
// the resulting flags of each message (absent when it has none). Flags are
// stored with system flags in canonical case; a keyword already set in
// another case is not added twice.
func (d *DB) StoreFlags(ctx context.Context, user string, msgs []uint64, op FlagOp, flags []string) (map[uint64][]string, error) {
	var norm []string
	for _, f := range flags {
		f = normalizeFlag(f)
		if !slices.ContainsFunc(norm, func(x string) bool { return strings.EqualFold(x, f) }) {
			norm = append(norm, f)
		}
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: store flags: %w", err)
	}
	defer tx.Rollback()
	out := make(map[uint64][]string)
	for _, m := range msgs {
		rows, err := tx.QueryContext(ctx, `SELECT flag FROM flags WHERE user = ? AND message = ?`, user, int64(m))
		if err != nil {
			return nil, fmt.Errorf("auth: store flags: %w", err)
		}
		var cur []string
		for rows.Next() {
			var f string
			if err := rows.Scan(&f); err != nil {
				rows.Close()
				return nil, fmt.Errorf("auth: store flags: %w", err)
			}
			cur = append(cur, f)
		}
		// A read cut short must not pass for the message's flags: the
		// update below writes what it computes from them.
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("auth: store flags: %w", err)
		}
		has := func(f string) bool {
			return slices.ContainsFunc(cur, func(x string) bool { return strings.EqualFold(x, f) })
		}
		var next []string
		switch op {
		case FlagsSet:
			next = append(next, norm...)
		case FlagsAdd:
			next = append(next, cur...)
			for _, f := range norm {
				if !has(f) {
					next = append(next, f)
				}
			}
		case FlagsRemove:
			for _, f := range cur {
				if !slices.ContainsFunc(norm, func(x string) bool { return strings.EqualFold(x, f) }) {
					next = append(next, f)
				}
			}
		}
		if len(next) > MaxFlagsPerMessage {
			return nil, fmt.Errorf("auth: store flags: at most %d flags per message", MaxFlagsPerMessage)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM flags WHERE user = ? AND message = ?`, user, int64(m)); err != nil {
			return nil, fmt.Errorf("auth: store flags: %w", err)
		}
		for _, f := range next {
			if _, err := tx.ExecContext(ctx, `INSERT INTO flags(user, message, flag) VALUES(?,?,?)`, user, int64(m), f); err != nil {
				return nil, fmt.Errorf("auth: store flags: %w", err)
			}
		}
		if len(next) > 0 {
			slices.Sort(next)
			out[m] = next
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("auth: store flags: %w", err)
	}
	return out, nil
}
