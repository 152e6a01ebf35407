package imapview

import (
	"context"
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
	// msg is the ledger seq of a message held for case id (k is not used).
	// A message appears at most once.
	Members(ctx context.Context, id string) (query string, args []any, err error)
	// Epoch counts the changes to case id's set of holds (each placement
	// and each release), never decreasing: while it is unchanged, the
	// members change only by new messages and deliveries. The view
	// recomputes a case folder's members in full when it grows
	// (numbering.go).
	Epoch(ctx context.Context, id string) (uint32, error)
}
