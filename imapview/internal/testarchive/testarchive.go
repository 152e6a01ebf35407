// Package testarchive makes a real archive in a temporary folder for the
// IMAP view's tests: a filesystem object store, fresh keys, the index, an
// access database and an in-memory audit recorder.
package testarchive

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest"
)

// Archive is an archive in t.TempDir(), closed at the end of the test.
type Archive struct {
	Dir      string
	Store    *archive.Store
	Accounts *auth.DB
	Audit    *Recorder
	n        int
}

// New creates the archive.
func New(t testing.TB) *Archive {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	objs, err := fs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/cairn")
	st, err := archive.Open(ctx, archive.Options{Dir: dir, Objects: objs, Keys: ring, Signing: sk, LogID: "test",
		CheckpointEvery: 1 << 40, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := auth.Open(filepath.Join(dir, "access.db"), auth.Options{Limits: auth.LimitOptions{FreeFailures: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	a := &Archive{Dir: dir, Store: st, Accounts: acc, Audit: &Recorder{}}
	t.Cleanup(func() {
		st.Close()
		acc.Close()
	})
	return a
}

// Add archives raw as delivered to custodians (imported), received at
// received (zero: now), and returns the message's seq.
func (a *Archive) Add(t testing.TB, raw []byte, received time.Time, custodians ...string) uint64 {
	t.Helper()
	if received.IsZero() {
		received = time.Now()
	}
	a.n++
	env := &ingest.Envelope{
		Source:      ingest.SourceImport,
		Sender:      "sender@example.com",
		Custodians:  custodians,
		ReceivedAt:  received,
		DeliveryKey: fmt.Sprintf("test:%d:%d", time.Now().UnixNano(), a.n),
	}
	for _, c := range custodians {
		env.Recipients = append(env.Recipients, ingest.Recipient{Address: c, Kind: ingest.KindTo})
	}
	rc, err := a.Store.Archive(context.Background(), env, raw)
	if err != nil {
		t.Fatal(err)
	}
	return rc.MessageSeq
}

// User adds an account and returns its password.
func (a *Archive) User(t testing.TB, name string, role auth.Role, scope ...string) string {
	t.Helper()
	s := auth.ScopeAll
	if len(scope) > 0 {
		var err error
		if s, err = auth.ParseScope(scope...); err != nil {
			t.Fatal(err)
		}
	}
	pw := auth.GeneratePassword()
	if _, err := a.Accounts.Add(context.Background(), name, role, s, pw); err != nil {
		t.Fatal(err)
	}
	return pw
}

// Recorder keeps audit events in memory; Fail makes Record fail.
type Recorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

var _ audit.Recorder = (*Recorder)(nil)

// ErrDown is what Record returns while failing.
var ErrDown = errors.New("testarchive: audit log down")

// Record implements audit.Recorder.
func (r *Recorder) Record(ctx context.Context, ev audit.Event) (audit.Seq, error) {
	if err := ev.Validate(); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return 0, ErrDown
	}
	r.events = append(r.events, ev)
	return audit.Seq(len(r.events)), nil
}

// SetFail makes Record fail (true) or work again.
func (r *Recorder) SetFail(f bool) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// Events returns the events recorded so far with action a (all when "").
func (r *Recorder) Events(a audit.Action) []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, e := range r.events {
		if a == "" || e.Action == a {
			out = append(out, e)
		}
	}
	return out
}
