package imapview

import "context"

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
}
