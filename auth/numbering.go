package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// The IMAP view numbers the messages of folders whose members can change
// other than by new mail (a case's folder gains old messages when a hold is
// added and loses some when one is released) in the order they joined, so
// that UIDs ascend, are never reused and UIDVALIDITY never changes (RFC
// 9051 §2.3.1.1). The numbering is kept here, beside the annotations: the
// view reads it with SQL (tables NumberedTable and NumberingTable of the
// attached access.db) and changes it only through Renumber.
const (
	NumberedTable  = "numbered"
	NumberingTable = "numbering"
)

// Numbered is the state of one numbered folder.
type Numbered struct {
	UIDValidity uint32
	// Epoch is the caller's count of changes to the folder's definition
	// (hold placements and releases) when its members were last computed.
	Epoch uint64
	// Scanned is the ledger seq up to which new messages and deliveries
	// were considered.
	Scanned int64
	// NextUID is the UID the next member gets.
	NextUID int64
	// Gen counts the updates that removed members.
	Gen int64
}

// ErrNumberingChanged: the folder's numbering is no longer the one the
// update was computed from (another process changed it); compute again.
var ErrNumberingChanged = errors.New("auth: folder numbering changed meanwhile")

// Renumber records in one transaction that the messages join (in this
// order) joined folder, each with the next UID, and the messages leave (of
// its current members) left it, and sets its state to next (whose NextUID
// and Gen it computes). prev is the state the update was computed from (nil
// for a folder never numbered, which then gets next.UIDValidity); when the
// stored state differs, nothing changes and ErrNumberingChanged is returned.
func (d *DB) Renumber(ctx context.Context, folder string, prev *Numbered, next Numbered, join, leave []int64) (Numbered, error) {
	fail := func(err error) (Numbered, error) {
		return Numbered{}, fmt.Errorf("auth: number folder %s: %w", folder, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var cur Numbered
	err = tx.QueryRowContext(ctx, `SELECT uidvalidity, epoch, scanned, next_uid, gen FROM numbered WHERE folder = ?`, folder).
		Scan(&cur.UIDValidity, &cur.Epoch, &cur.Scanned, &cur.NextUID, &cur.Gen)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if prev != nil {
			return Numbered{}, ErrNumberingChanged
		}
		cur = Numbered{UIDValidity: next.UIDValidity, NextUID: 1}
		if _, err := tx.ExecContext(ctx, `INSERT INTO numbered(folder, uidvalidity, epoch, scanned, next_uid, gen) VALUES(?, ?, 0, -1, 1, 0)`,
			folder, cur.UIDValidity); err != nil {
			return fail(err)
		}
	case err != nil:
		return fail(err)
	case prev == nil || *prev != cur:
		return Numbered{}, ErrNumberingChanged
	}
	next.UIDValidity, next.NextUID, next.Gen = cur.UIDValidity, cur.NextUID, cur.Gen
	if len(leave) > 0 {
		next.Gen++
		st, err := tx.PrepareContext(ctx, `UPDATE numbering SET left_gen = ? WHERE folder = ? AND message = ? AND left_gen IS NULL`)
		if err != nil {
			return fail(err)
		}
		defer st.Close()
		for _, m := range leave {
			if _, err := st.ExecContext(ctx, next.Gen, folder, m); err != nil {
				return fail(err)
			}
		}
	}
	if len(join) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT INTO numbering(folder, uid, message) VALUES(?, ?, ?)`)
		if err != nil {
			return fail(err)
		}
		defer st.Close()
		for _, m := range join {
			if _, err := st.ExecContext(ctx, folder, next.NextUID, m); err != nil {
				return fail(err)
			}
			next.NextUID++
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE numbered SET epoch = ?, scanned = ?, next_uid = ?, gen = ? WHERE folder = ?`,
		next.Epoch, next.Scanned, next.NextUID, next.Gen, folder); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return next, nil
}
