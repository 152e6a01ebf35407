package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// Renumber gives joiners the next UIDs in order, marks leavers with a new
// generation, keeps the first UIDVALIDITY, never gives a UID twice, and
// refuses an update computed from a state that changed meanwhile.
func TestRenumber(t *testing.T) {
	d := openTest(t, LimitOptions{})
	ctx := context.Background()
	rows := func() (live, left []int64) {
		t.Helper()
		r, err := d.db.Query(`SELECT uid, message, left_gen IS NOT NULL FROM numbering WHERE folder = 'case/X' ORDER BY uid`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for r.Next() {
			var uid, msg int64
			var gone bool
			r.Scan(&uid, &msg, &gone)
			if gone {
				left = append(left, uid*1000+msg)
			} else {
				live = append(live, uid*1000+msg)
			}
		}
		return live, left
	}
	st, err := d.Renumber(ctx, "case/X", nil, Numbered{UIDValidity: 77, Epoch: 1, Scanned: 9}, []int64{5, 7, 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st != (Numbered{UIDValidity: 77, Epoch: 1, Scanned: 9, NextUID: 4, Gen: 0}) {
		t.Fatalf("first numbering: %+v", st)
	}
	if _, err := d.Renumber(ctx, "case/X", nil, Numbered{UIDValidity: 78}, []int64{1}, nil); !errors.Is(err, ErrNumberingChanged) {
		t.Fatalf("a second first numbering: %v, want ErrNumberingChanged", err)
	}
	stale := st
	stale.Scanned = 8
	if _, err := d.Renumber(ctx, "case/X", &stale, Numbered{Epoch: 1, Scanned: 12}, []int64{11}, nil); !errors.Is(err, ErrNumberingChanged) {
		t.Fatalf("an update from a stale state: %v, want ErrNumberingChanged", err)
	}
	// An older message joins (UID 4), one leaves (generation 1).
	st, err = d.Renumber(ctx, "case/X", &st, Numbered{UIDValidity: 99, Epoch: 2, Scanned: 12}, []int64{2}, []int64{7})
	if err != nil {
		t.Fatal(err)
	}
	if st != (Numbered{UIDValidity: 77, Epoch: 2, Scanned: 12, NextUID: 5, Gen: 1}) {
		t.Fatalf("second numbering: %+v", st)
	}
	// The leaver comes back: a new UID, the old one stays gone.
	st, err = d.Renumber(ctx, "case/X", &st, Numbered{Epoch: 3, Scanned: 12}, []int64{7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	live, left := rows()
	if !slices.Equal(live, []int64{1005, 3009, 4002, 5007}) || !slices.Equal(left, []int64{2007}) || st.NextUID != 6 || st.Gen != 1 {
		t.Fatalf("live uid*1000+msg %v, left %v, state %+v", live, left, st)
	}
}
