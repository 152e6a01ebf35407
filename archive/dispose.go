package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
)

// HoldChecker says whether a litigation hold covers a message. The
// retention package implements it; archive.Store asks it before every
// disposal and erasure, so no caller can get around a hold (invariant 7).
type HoldChecker interface {
	// Held reports whether an active hold covers message seq, and which.
	Held(ctx context.Context, seq uint64) (held bool, hold string, err error)
}

// ErrHeld is returned (wrapped) when a hold forbids disposing a message.
var ErrHeld = errors.New("archive: the message is under a litigation hold")

// ErrGone is returned (wrapped) when the message is already disposed or erased.
var ErrGone = errors.New("archive: the message is already disposed or erased")

// Disposal is the outcome of Dispose.
type Disposal struct {
	// Tombstone is the ledger sequence number of the dispose or erase entry.
	Tombstone uint64
	// ObjectKept is true when an S3 Object Lock still forbids deleting the
	// message object: the key object is destroyed (the message can no
	// longer be read), and the object goes when its lock expires.
	ObjectKept bool
}

// Dispose takes message seq out of the archive: kind is ledger.KindDispose
// (a retention policy expired) or ledger.KindErase (an erasure request);
// fields say why (policy, reason, request id) and are recorded in the
// tombstone entry.
//
// Order, for crash safety: the tombstone is committed first (with the index
// rows wiped in the same transaction), then the key object, the evidence
// objects and the message object are deleted. A crash in between leaves the
// deletions pending; Open finishes them. Destroying the key object is what
// erases: the message object, wherever copies remain, can no longer be read
// and the ledger's content commitment can no longer be confirmed (its salt
// is gone with the key).
//
// A message under a hold is refused with ErrHeld, whatever the caller.
func (s *Store) Dispose(ctx context.Context, seq uint64, kind string, fields map[string]string) (Disposal, error) {
	var d Disposal
	state := map[string]int{ledger.KindDispose: index.StateDisposed, ledger.KindErase: index.StateErased}[kind]
	if state == 0 {
		return d, fmt.Errorf("archive: dispose kind %q: want %q or %q", kind, ledger.KindDispose, ledger.KindErase)
	}
	m, err := s.index.Message(ctx, seq)
	if err != nil {
		return d, err
	}
	unlock := s.locks.lock("s:" + string(m.SHA256[:]))
	defer unlock()
	if err := s.ensureCaughtUp(ctx); err != nil {
		return d, err
	}
	if m, err = s.index.Message(ctx, seq); err != nil {
		return d, err
	}
	if m.State != index.StateActive {
		return d, fmt.Errorf("%w: message %d was %s", ErrGone, seq, stateName(m.State))
	}
	if s.opts.Holds != nil {
		held, hold, err := s.opts.Holds.Held(ctx, seq)
		if err != nil {
			return d, fmt.Errorf("archive: hold check of message %d: %w", seq, err)
		}
		if held {
			return d, fmt.Errorf("%w: message %d is held by %s", ErrHeld, seq, hold)
		}
	}
	f := map[string]string{"at": time.Now().UTC().Format(time.RFC3339)}
	for k, v := range fields {
		f[k] = v
	}
	ref := seq
	p := &pending{
		entry:      &ledger.Entry{Kind: kind, Ref: &ref, Event: &ledger.Event{Type: kind, Fields: f}},
		gone:       &index.Gone{Seq: seq, State: state},
		noDelivery: true,
		done:       make(chan error, 1),
	}
	if err := s.enqueue(ctx, p); err != nil {
		return d, err
	}
	if err := <-p.done; err != nil {
		return d, err
	}
	d.Tombstone = p.entry.Seq
	kept, err := s.destroyObjects(ctx, seq)
	if err != nil {
		// The tombstone is committed; the deletions stay pending and are
		// retried at the next Open or FinishDisposals.
		return d, fmt.Errorf("archive: message %d is %sd (entry %d) but its objects are not all destroyed yet: %w", seq, kind, d.Tombstone, err)
	}
	d.ObjectKept = kept
	if kind == ledger.KindErase {
		// The wiped rows' old content must not survive in the WAL.
		if err := s.index.Scrub(ctx); err != nil {
			return d, fmt.Errorf("archive: message %d is erased (entry %d) but the index's write-ahead log still holds old pages: %w", seq, d.Tombstone, err)
		}
	}
	return d, nil
}

// destroyObjects deletes the key, evidence and message objects of a
// tombstoned message. The key object goes first: that alone erases.
func (s *Store) destroyObjects(ctx context.Context, seq uint64) (objectKept bool, err error) {
	lines, err := s.index.EntriesOf(ctx, seq)
	if err != nil {
		return false, err
	}
	var msg *ledger.Message
	var evidence []string
	for _, l := range lines {
		e, err := ledger.ParseEntry(l)
		if err != nil {
			return false, err
		}
		if e.Message != nil && e.Seq == seq {
			msg = e.Message
		}
		if e.Delivery != nil && e.Delivery.Evidence != "" {
			evidence = append(evidence, e.Delivery.Evidence)
		}
	}
	if msg == nil {
		return false, fmt.Errorf("archive: no message entry %d in the index", seq)
	}
	del := func(key string) error {
		err := s.objs.Delete(ctx, key)
		if err == nil || errors.Is(err, objstore.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := del(msg.KeyObject); err != nil {
		return false, fmt.Errorf("delete key object %s: %w", msg.KeyObject, err)
	}
	for _, k := range evidence {
		if err := del(k); err != nil && !errors.Is(err, objstore.ErrLocked) {
			return false, fmt.Errorf("delete evidence %s: %w", k, err)
		}
	}
	err = del(msg.Object)
	switch {
	case errors.Is(err, objstore.ErrLocked):
		objectKept = true
	case err != nil:
		return false, fmt.Errorf("delete message object %s: %w", msg.Object, err)
	}
	return objectKept, s.index.Destroyed(ctx, seq)
}

// FinishDisposals destroys the objects of messages whose tombstone was
// committed but whose deletion was interrupted. Open calls it.
func (s *Store) FinishDisposals(ctx context.Context) error {
	seqs, err := s.index.PendingDestroy(ctx)
	if err != nil {
		return err
	}
	for _, seq := range seqs {
		if _, err := s.destroyObjects(ctx, seq); err != nil {
			return fmt.Errorf("archive: finish disposal of message %d: %w", seq, err)
		}
	}
	return nil
}

// AppendEvent records an administrative event in the ledger (hold placed or
// released, key rotation) and returns its sequence number once committed.
func (s *Store) AppendEvent(ctx context.Context, ev ledger.Event) (uint64, error) {
	if ev.Type == "" {
		return 0, errors.New("archive: event without a type")
	}
	p := &pending{entry: &ledger.Entry{Kind: ledger.KindEvent, Event: &ev}, noDelivery: true, done: make(chan error, 1)}
	if err := s.enqueue(ctx, p); err != nil {
		return 0, err
	}
	if err := <-p.done; err != nil {
		return 0, err
	}
	return p.entry.Seq, nil
}
