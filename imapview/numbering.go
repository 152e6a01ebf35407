package imapview

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/auth"
)

// Most folders number their messages by the ledger (UID = k + 1, k the seq
// of the entry that brought the message in), which needs no state: members
// only ever join as new entries. A case's folder (Cases/<id>), and the
// INBOX and Dates/ of an account scoped to cases, are different: a hold
// placed later brings in old messages, and a release takes messages out.
// Such folders are numbered in access.db (auth.Renumber): each message that
// joins gets the folder's next UID, whatever its ledger seq, and one that
// leaves is marked with the update's generation, so that UIDs ascend and
// are never reused, UIDVALIDITY never changes (RFC 9051 §2.3.1.1), clients
// that synced the folder fetch the newcomers like new mail, and a session
// with the folder selected is told with EXISTS and EXPUNGE.

// numberKey is the key of folder f's numbering, or "" when f is numbered by
// the ledger.
func (v *viewer) numberKey(f *folder) string {
	if v.cases == nil {
		return ""
	}
	switch f.kind {
	case kindCase:
		return "case/" + f.caseID
	case kindInbox, kindDate:
		// Dates/ of a scoped account: its INBOX's UIDs, month by month.
		if !v.scope.All && len(v.scope.Cases) > 0 {
			return "inbox/" + v.scope.String()
		}
	}
	return ""
}

// numbering brings folder f's numbering up to date, when it has one, and
// returns its state; for a folder numbered by the ledger, UIDVALIDITY base
// and zeros.
func (v *viewer) numbering(ctx context.Context, base uint32, f *folder) (auth.Numbered, error) {
	key := v.numberKey(f)
	if key == "" {
		return auth.Numbered{UIDValidity: base}, nil
	}
	st, err := v.renumber(ctx, f, key)
	if err != nil {
		return st, fmt.Errorf("number %s: %w", f.name, err)
	}
	return st, nil
}

// numbered reads the stored state of numbering key (false: none yet).
func (v *viewer) numbered(ctx context.Context, key string) (auth.Numbered, bool, error) {
	var st auth.Numbered
	err := v.db.QueryRowContext(ctx, `SELECT uidvalidity, epoch, scanned, next_uid, gen FROM acc.`+auth.NumberedTable+` WHERE folder = ?`, key).
		Scan(&st.UIDValidity, &st.Epoch, &st.Scanned, &st.NextUID, &st.Gen)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	return st, err == nil, err
}

// renumber brings the numbering of folder f (key) up to date: in full when
// its holds changed (or it has none yet), else for the messages and
// deliveries indexed since the last time.
func (v *viewer) renumber(ctx context.Context, f *folder, key string) (auth.Numbered, error) {
	v.numberMu.Lock()
	defer v.numberMu.Unlock()
	for attempt := 0; ; attempt++ {
		st, ok, err := v.numbered(ctx, key)
		if err != nil {
			return st, err
		}
		epoch, err := v.epoch(ctx, f)
		if err != nil {
			return st, err
		}
		head, err := ledgerHead(ctx, v.db)
		if err != nil {
			return st, err
		}
		full := !ok || st.Epoch != epoch
		if !full && st.Scanned >= head {
			return st, nil
		}
		src, err := v.rawMembers(ctx, f)
		if err != nil {
			return st, err
		}
		live := `SELECT message FROM acc.` + auth.NumberingTable + ` WHERE folder = ? AND left_gen IS NULL`
		var join, leave []int64
		if full {
			if join, err = v.int64s(ctx, `SELECT DISTINCT msg FROM (`+src.q+`) WHERE msg NOT IN (`+live+`) ORDER BY msg`,
				append(slices.Clip(src.args), key)...); err != nil {
				return st, err
			}
			if leave, err = v.int64s(ctx, live+` AND message NOT IN (SELECT msg FROM (`+src.q+`))`,
				append([]any{key}, src.args...)...); err != nil {
				return st, err
			}
		} else {
			// Membership grows without a hold change only by an entry
			// after scanned: a new message or a new delivery (a custodian
			// or date a hold names).
			if join, err = v.int64s(ctx, `SELECT DISTINCT msg FROM (`+src.q+`) WHERE msg IN (SELECT message FROM deliveries WHERE seq > ?)
				AND msg NOT IN (`+live+`) ORDER BY msg`, append(slices.Clip(src.args), st.Scanned, key)...); err != nil {
				return st, err
			}
		}
		var prev *auth.Numbered
		if ok {
			prev = &st
		}
		next := auth.Numbered{UIDValidity: newUIDValidity(), Epoch: epoch, Scanned: head}
		st, err = v.acc.Renumber(ctx, key, prev, next, join, leave)
		if errors.Is(err, auth.ErrNumberingChanged) && attempt < 5 {
			continue // another process (a second serve on a copy) raced us
		}
		return st, err
	}
}

// newUIDValidity is the UIDVALIDITY of a folder numbered for the first
// time: the time, as Dovecot does, so that a numbering lost with access.db
// and made again gets another one.
func newUIDValidity() uint32 {
	return uint32(time.Now().Unix())&0x7fffffff | 1<<30
}

// epoch counts the changes to the holds folder f's members depend on.
func (v *viewer) epoch(ctx context.Context, f *folder) (uint64, error) {
	ids := v.scope.Cases
	if f.kind == kindCase {
		ids = []string{f.caseID}
	}
	var n uint64
	for _, id := range ids {
		e, err := v.cases.Epoch(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("case %s: %w", id, err)
		}
		n += uint64(e)
	}
	return n, nil
}

// rawMembers is the SQL of numbered folder f's current members (column
// msg), in no order: a case's held messages, or for a scoped account's INBOX
// (and Dates/) those of its custodians and of its cases.
func (v *viewer) rawMembers(ctx context.Context, f *folder) (sqlPart, error) {
	ids := v.scope.Cases
	var unions []string
	var args []any
	if f.kind == kindCase {
		ids = []string{f.caseID}
	} else if c := scopeCond(v.scope, "addr"); c.q != "" {
		unions = append(unions, `SELECT message AS msg FROM custodians WHERE `+c.q)
		args = append(args, c.args...)
	}
	for _, id := range ids {
		q, a, err := v.cases.Members(ctx, id)
		if err != nil {
			return sqlPart{}, fmt.Errorf("case %s: %w", id, err)
		}
		unions = append(unions, `SELECT msg FROM (`+q+`)`)
		args = append(args, a...)
	}
	return sqlPart{strings.Join(unions, " UNION "), args}, nil
}

// int64s runs a query of one integer column.
func (v *viewer) int64s(ctx context.Context, q string, args ...any) ([]int64, error) {
	rows, err := v.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// numberedSQL is the SQL of numbered folder key's members with
// lo <= k <= hi (k = UID - 1), those that left included.
func numberedSQL(key string, lo, hi int64) sqlPart {
	return sqlPart{`SELECT uid - 1 AS k, message AS msg FROM acc.` + auth.NumberingTable + ` WHERE folder = ? AND uid > ? AND uid - 1 <= ?`,
		[]any{key, lo, hi}}
}
