package imapview

import (
	"context"
	"fmt"
)

// CaseSource tells the view which litigation cases exist and which messages
// each one holds, for the Cases/ folders and for accounts scoped to cases.
// The retention package (holds) implements it; without one, Cases/ is empty
// and a case-scoped account sees nothing.
type CaseSource interface {
	// Cases returns the ids of the cases with an active hold, sorted.
	Cases(ctx context.Context) ([]string, error)
	// Members returns one SQL SELECT over the index database (the schema of
	// archive/index, read-only) yielding two integer columns, k and msg:
	// for each message held for case id, msg is its ledger seq and k the
	// ledger seq of the entry that brought it under the hold (so that
	// messages held later get higher UIDs: UID = k + 1). A message appears
	// at most once. The view adds its own conditions around it.
	Members(ctx context.Context, id string) (query string, args []any, err error)
	// Epoch counts the changes to case id's set of holds (each placement
	// and each release), never decreasing. Members keeps its UIDs while the
	// set is unchanged; a new hold can bring in messages below the folder's
	// UIDNEXT, so the folder's UIDVALIDITY (base + Epoch) grows with it and
	// clients that cached the folder resynchronize (RFC 9051 §2.3.1.1).
	Epoch(ctx context.Context, id string) (uint32, error)
}

// uidValidity is the UIDVALIDITY of folder f as this account sees it: the
// archive's (base) for folders whose members do not depend on holds, and
// base plus the Epochs of the cases it is made of otherwise (Cases/<id>, and
// the INBOX and Dates/ of an account scoped to cases). base < 2^31, so the
// sum does not wrap for any realistic number of hold changes.
func (v *viewer) uidValidity(ctx context.Context, base uint32, f *folder) (uint32, error) {
	if v.cases == nil {
		return base, nil
	}
	var ids []string
	switch f.kind {
	case kindCase:
		ids = []string{f.caseID}
	case kindInbox, kindDate:
		if !v.scope.All {
			ids = v.scope.Cases
		}
	}
	n := base
	for _, id := range ids {
		e, err := v.cases.Epoch(ctx, id)
		if err != nil {
			return 0, fmt.Errorf("case %s: %w", id, err)
		}
		n += e
	}
	return n, nil
}
