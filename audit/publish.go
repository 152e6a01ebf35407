package audit

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// PublishCheckpoint records a message-ledger checkpoint as a
// checkpoint.publish event, so every SIEM holds a copy of the archive's
// chain heads outside the archive. signed is the full signed note
// (SPEC: c2sp.org/tlog-checkpoint, SPEC: c2sp.org/signed-note); it is stored
// verbatim in Details.Checkpoint, with its origin in Details.Note, its size
// in Details.Count. Its
// signature is not checked here (the ledger that signed it is the caller).
func PublishCheckpoint(ctx context.Context, rec Recorder, signed []byte) (Seq, error) {
	text, _, ok := strings.Cut(string(signed), "\n\n")
	if !ok || !utf8.Valid(signed) {
		return 0, fmt.Errorf("audit: publish checkpoint: not a signed note")
	}
	cp, err := ParseCheckpoint(text + "\n")
	if err != nil {
		return 0, fmt.Errorf("audit: publish checkpoint: %w", err)
	}
	ev := Event{
		Action:  ActionCheckpointPublish,
		Outcome: OutcomeSuccess,
		Actor:   Actor{User: "cairn", Role: "system"},
		Source:  Source{Service: "ledger"},
		Details: Details{Checkpoint: string(signed), Note: cp.Origin, Count: int64(cp.Size)},
	}
	return rec.Record(ctx, ev)
}
