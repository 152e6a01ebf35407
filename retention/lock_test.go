package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/objstore"
)

// lockStore adds S3 Object Lock semantics to a store, with the test's
// clock as the store's: retention dates only grow, and a delete is refused
// under a retention date or a legal hold.
type lockStore struct {
	objstore.Store
	now   func() time.Time
	mu    sync.Mutex
	locks map[string]objstore.Lock
}

func (s *lockStore) LockEnabled(context.Context) (bool, error) { return true, nil }

func (s *lockStore) SetRetention(ctx context.Context, key string, mode objstore.LockMode, until time.Time) error {
	if _, err := s.Stat(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lk := s.locks[key]
	if until.Before(lk.RetainUntil) {
		return fmt.Errorf("lockStore: %s: cannot shorten retention from %v to %v", key, lk.RetainUntil, until)
	}
	lk.Mode, lk.RetainUntil = mode, until
	s.locks[key] = lk
	return nil
}

func (s *lockStore) SetLegalHold(ctx context.Context, key string, on bool) error {
	if _, err := s.Stat(ctx, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lk := s.locks[key]
	lk.LegalHold = on
	s.locks[key] = lk
	return nil
}

func (s *lockStore) GetLock(ctx context.Context, key string) (objstore.Lock, error) {
	if _, err := s.Stat(ctx, key); err != nil {
		return objstore.Lock{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.locks[key], nil
}

func (s *lockStore) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	lk := s.locks[key]
	s.mu.Unlock()
	if lk.LegalHold || lk.RetainUntil.After(s.now()) {
		return fmt.Errorf("lockStore: delete %s: %w", key, objstore.ErrLocked)
	}
	return s.Store.Delete(ctx, key)
}

func newLockHarness(t *testing.T, p Policy) (*harness, *lockStore) {
	var ls *lockStore
	h := newHarness(t, p, func(s objstore.Store, c *clock) objstore.Store {
		ls = &lockStore{Store: s, now: c.now, locks: map[string]objstore.Lock{}}
		return ls
	})
	return h, ls
}

func lockPolicy() Policy {
	return Policy{
		Rules: []Rule{
			{Name: "newsletters", Keep: mustPeriod("30d"), From: FromArchived, Erasable: true, Match: Match{Domains: []string{"news.example"}}},
		},
		Default: Rule{Name: "records-1y", Keep: mustPeriod("1y"), From: FromArchived},
	}
}

func TestObjectLocks(t *testing.T) {
	h, ls := newLockHarness(t, lockPolicy())
	ctx := context.Background()
	h.clock.set(time.Now().UTC())
	if !h.m.Locking() {
		t.Fatal("a Locker store with Object Lock: Locking() is false")
	}
	a := h.archive(msg("", "alice@corp.example", "bob@corp.example", "a", "x"), envelope("", "alice@corp.example", []string{"bob@corp.example"}))
	b := h.archive(msg("", "digest@news.example", "bob@corp.example", "b", "x"), envelope("", "digest@news.example", []string{"bob@corp.example"}))
	ch, more, err := h.m.LockNew(ctx)
	if err != nil || more || ch.Retention != 2 || ch.HoldsOn != 0 {
		t.Fatalf("LockNew: %+v %v %v", ch, more, err)
	}
	rowA, _ := h.st.Index().Message(ctx, a)
	rowB, _ := h.st.Index().Message(ctx, b)
	lk, _ := ls.GetLock(ctx, rowA.Object)
	if lk.Mode != objstore.Governance || !lk.RetainUntil.Equal(ceilSecond(rowA.ArchivedAt.AddDate(1, 0, 0))) || lk.LegalHold {
		t.Fatalf("lock of a: %+v (archived %v)", lk, rowA.ArchivedAt)
	}
	if lk, _ := ls.GetLock(ctx, rowA.KeyObject); lk != (objstore.Lock{}) {
		t.Fatalf("a key object is locked: %+v", lk)
	}
	// Nothing new: no calls.
	if ch, _, _ := h.m.LockNew(ctx); ch != (LockChanges{}) {
		t.Fatalf("second LockNew changed %+v", ch)
	}

	// A hold puts a legal hold on what it covers, now and later.
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"bob@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{rowA.Object, rowB.Object} {
		if lk, _ := ls.GetLock(ctx, o); !lk.LegalHold {
			t.Fatalf("%s: no legal hold under C-1", o)
		}
	}
	c := h.archive(msg("", "x@corp.example", "bob@corp.example", "c", "x"), envelope("", "x@corp.example", []string{"bob@corp.example"}))
	if ch, _, err := h.m.LockNew(ctx); err != nil || ch.HoldsOn != 1 || ch.Retention != 1 {
		t.Fatalf("LockNew of a held new message: %+v %v", ch, err)
	}
	rowC, _ := h.st.Index().Message(ctx, c)
	// A direct delete of a held object is refused by the store.
	if err := ls.Delete(ctx, rowC.Object); !errors.Is(err, objstore.ErrLocked) {
		t.Fatalf("direct delete of a held object: %v", err)
	}
	rep, err := h.m.VerifyLocks(ctx, false)
	if err != nil || len(rep.Problems) != 0 || rep.Checked != 3 {
		t.Fatalf("VerifyLocks: %+v %v", rep, err)
	}
	// Someone clears a legal hold and shortens nothing (S3 would not
	// let them): verify names it, repair puts it back.
	ls.locks[rowA.Object] = objstore.Lock{Mode: objstore.Governance, RetainUntil: ls.locks[rowA.Object].RetainUntil}
	rep, _ = h.m.VerifyLocks(ctx, false)
	if len(rep.Problems) != 1 || rep.Problems[0].Seq != a || !strings.Contains(rep.Problems[0].Detail, "no S3 legal hold") {
		t.Fatalf("tampered legal hold: %+v", rep.Problems)
	}
	rep, _ = h.m.VerifyLocks(ctx, true)
	if rep.Repaired.HoldsOn != 1 {
		t.Fatalf("repair: %+v", rep.Repaired)
	}
	if rep, _ = h.m.VerifyLocks(ctx, false); len(rep.Problems) != 0 {
		t.Fatalf("after repair: %+v", rep.Problems)
	}

	// Release: legal holds cleared.
	if _, err := h.m.ReleaseHold(ctx, tester, "C-1", "done"); err != nil {
		t.Fatal(err)
	}
	for _, o := range []string{rowA.Object, rowB.Object, rowC.Object} {
		if lk, _ := ls.GetLock(ctx, o); lk.LegalHold {
			t.Fatalf("%s: legal hold left after release", o)
		}
	}

	// Erasure of b (erasable newsletter, inside its 30 days): the key
	// goes, the locked object stays, unreadable, until its lock ends.
	er, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: "digest@news.example", Reason: "request 9"})
	if err != nil || len(er.Erased) != 1 || !strings.Contains(er.Erased[0].How, "Object Lock") {
		t.Fatalf("erase under a lock: %+v %v", er, err)
	}
	if _, err := h.st.OpenMessage(ctx, b); !errors.Is(err, archive.ErrUnreadable) {
		t.Fatalf("erased message under a lock opens: %v", err)
	}
	if _, err := ls.Stat(ctx, rowB.KeyObject); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatal("the key object of an erased message survives")
	}
	if _, err := ls.Stat(ctx, rowB.Object); err != nil {
		t.Fatal("the locked object went")
	}
	// 31 days on: its lock has ended, the next run deletes it.
	h.clock.advance(31 * 24 * time.Hour)
	run, err := h.m.Run(ctx, SystemCaller, false)
	if err != nil || run.ObjectsDeleted != 1 {
		t.Fatalf("run after the lock: %+v %v", run, err)
	}
	if _, err := ls.Stat(ctx, rowB.Object); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatal("the object outlived its lock")
	}

	// The policy shortens a's period below its lock: a is disposed at
	// its new expiry by destroying its key; its object waits for the lock.
	h.m.Close()
	h.policy.Default.Keep = mustPeriod("60d")
	h.openManager()
	h.clock.advance(30 * 24 * time.Hour)
	run, err = h.m.Run(ctx, SystemCaller, false)
	if err != nil || len(run.Disposed) != 2 || !run.Disposed[0].ObjectKept {
		t.Fatalf("disposal under a longer lock: %+v %v", run, err)
	}
	if vr, err := h.st.Verify(ctx, archive.VerifyOptions{Full: true}); err != nil || !vr.OK() || len(vr.Disposed) != 3 {
		t.Fatalf("verify: %+v %v", vr, err)
	}
	h.clock.advance(365 * 24 * time.Hour)
	if run, err = h.m.Run(ctx, SystemCaller, false); err != nil || run.ObjectsDeleted != 2 {
		t.Fatalf("after the longer locks: %+v %v", run, err)
	}
}
