package importer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cairn-archive/cairn/ingest"
)

// fakeArchive is an in-memory ingest.Archiver that records raw bytes and
// envelopes by DeliveryKey, with the archive's replay and dedup semantics.
type fakeArchive struct {
	mu    sync.Mutex
	raw   map[string][]byte
	env   map[string]*ingest.Envelope
	seqOf map[string]uint64
	sums  map[[32]byte]uint64
	order []string // keys in the order they were first archived
	seq   uint64
	calls int

	// hook, if set, runs before each call; a non-nil error is returned.
	hook func(env *ingest.Envelope, raw []byte) error
	// problems, if set, gives the parse problems of a message.
	problems func(raw []byte) []string
}

func newFakeArchive() *fakeArchive {
	return &fakeArchive{
		raw:   map[string][]byte{},
		env:   map[string]*ingest.Envelope{},
		seqOf: map[string]uint64{},
		sums:  map[[32]byte]uint64{},
	}
}

var _ ingest.Archiver = (*fakeArchive)(nil)

func (f *fakeArchive) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return ingest.Receipt{}, fmt.Errorf("fake: archive context done: %w", err)
	}
	if err := env.Validate(); err != nil {
		return ingest.Receipt{}, err
	}
	if env.Source != ingest.SourceImport || env.DeliveryKey == "" {
		return ingest.Receipt{}, errors.New("fake: not an import delivery")
	}
	if f.hook != nil {
		if err := f.hook(env, raw); err != nil {
			return ingest.Receipt{}, err
		}
	}
	sum := sha256.Sum256(raw)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if seq, ok := f.seqOf[env.DeliveryKey]; ok {
		return ingest.Receipt{Seq: seq, MessageSeq: seq, SHA256: sum, Replayed: true}, nil
	}
	f.seq++
	rc := ingest.Receipt{Seq: f.seq, MessageSeq: f.seq, SHA256: sum}
	if first, ok := f.sums[sum]; ok {
		rc.Duplicate, rc.MessageSeq = true, first
	} else {
		f.sums[sum] = f.seq
	}
	if f.problems != nil {
		rc.Problems = f.problems(raw)
	}
	f.seqOf[env.DeliveryKey] = f.seq
	f.raw[env.DeliveryKey] = append([]byte(nil), raw...)
	e := *env
	f.env[env.DeliveryKey] = &e
	f.order = append(f.order, env.DeliveryKey)
	return rc, nil
}

func (f *fakeArchive) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.raw)
}

// runImport runs Run and fails the test on an error.
func runImport(t *testing.T, a ingest.Archiver, paths []string, opts Options) Summary {
	t.Helper()
	sum, err := Run(context.Background(), a, paths, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

// issuesOf returns the issues of one kind.
func issuesOf(s Summary, k IssueKind) []Issue {
	var out []Issue
	for _, is := range s.Issues {
		if is.Kind == k {
			out = append(out, is)
		}
	}
	return out
}
