package archive

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/crypto"
)

// Disclosure is what lets someone without the archive check one message
// against the ledger (an eDiscovery export, archive/export): the salt that
// opens its content and envelope commitments, and the ledger lines of the
// message and of each delivery of it, with each delivery's envelope in
// plaintext. Handing it out reveals the commitments' openings for this
// message only; every other message stays sealed.
type Disclosure struct {
	// Seq is the message's ledger sequence number (its message entry).
	Seq uint64
	// Salt opens the commitments: SHA-256(salt || bytes) is the entry's
	// content, SHA-256(salt || envelope JSON) each envelope_commit.
	Salt [32]byte
	// Entries are the message entry and its delivery entries, in seq order.
	Entries []DisclosedEntry
}

// DisclosedEntry is one ledger entry of a disclosed message.
type DisclosedEntry struct {
	Seq  uint64
	Kind string // ledger.KindMessage or ledger.KindDelivery
	// Line is the entry exactly as the ledger holds it (from the index's
	// copy: an export checks it against a signed checkpoint's root).
	Line []byte
	// Entry is Line parsed.
	Entry *ledger.Entry
	// Envelope is the delivery's envelope JSON (docs/FORMAT.md §6), opened
	// from the sealed envelope in Line and checked against its commitment.
	Envelope []byte
}

// Disclose returns the disclosure of message seq (active messages only: a
// disposed or erased message has no key left, ErrUnreadable). It reads the
// message's key object once; it does not read the message itself.
func (s *Store) Disclose(ctx context.Context, seq uint64) (*Disclosure, error) {
	m, err := s.index.Message(ctx, seq)
	if err != nil {
		return nil, err
	}
	if m.State != index.StateActive {
		return nil, fmt.Errorf("%w: message %d was %s", ErrUnreadable, seq, stateName(m.State))
	}
	mk, err := s.messageKey(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	lines, err := s.index.EntriesOf(ctx, seq)
	if err != nil {
		return nil, err
	}
	d := &Disclosure{Seq: seq, Salt: mk.Salt}
	for _, line := range lines {
		e, err := ledger.ParseEntry(line)
		if err != nil {
			return nil, fmt.Errorf("archive: disclose message %d: %w", seq, err)
		}
		switch e.Kind {
		case ledger.KindMessage, ledger.KindDelivery:
		default:
			return nil, fmt.Errorf("%w: message %d has a %s entry (%d)", ErrUnreadable, seq, e.Kind, e.Seq)
		}
		if e.Delivery == nil || (e.Kind == ledger.KindMessage) != (e.Seq == seq) {
			return nil, fmt.Errorf("archive: disclose message %d: entry %d is not its %s", seq, e.Seq, e.Kind)
		}
		env, err := openEnvelope(mk, e.Delivery)
		if err != nil {
			return nil, fmt.Errorf("archive: disclose message %d: entry %d: %w", seq, e.Seq, err)
		}
		d.Entries = append(d.Entries, DisclosedEntry{Seq: e.Seq, Kind: e.Kind, Line: line, Entry: e, Envelope: env})
	}
	if len(d.Entries) == 0 || d.Entries[0].Seq != seq {
		return nil, fmt.Errorf("archive: disclose message %d: the index holds no message entry for it", seq)
	}
	return d, nil
}

// openEnvelope opens a delivery's sealed envelope and checks it against its
// commitment.
func openEnvelope(mk *crypto.MessageKey, d *ledger.Delivery) ([]byte, error) {
	sealed, err := base64.StdEncoding.DecodeString(d.Envelope)
	if err != nil {
		return nil, fmt.Errorf("sealed envelope: %w", err)
	}
	env, err := mk.Open("envelope", sealed)
	if err != nil {
		return nil, fmt.Errorf("sealed envelope does not open: %w", err)
	}
	if c := mk.Commit(env); hex.EncodeToString(c[:]) != d.EnvelopeCommit {
		return nil, errors.New("the envelope does not match its commitment")
	}
	return env, nil
}

// ErrNoCheckpoint is returned (wrapped) by LatestCheckpoint when the object
// store holds no checkpoint of this ledger.
var ErrNoCheckpoint = errors.New("archive: no signed checkpoint stored")

// LatestCheckpoint returns the newest checkpoint of this node's ledger in
// the object store, with its signed note, after checking its signature. It
// works on a store opened read-only (while cairn serve publishes them).
func (s *Store) LatestCheckpoint(ctx context.Context) (ledger.Checkpoint, []byte, error) {
	size, found := uint64(0), false
	err := s.objs.List(ctx, "checkpoints/"+s.opts.LogID+"/", func(i objstore.Info) error {
		var n uint64
		if _, err := fmt.Sscanf(path.Base(i.Key), "%020d.ckpt", &n); err == nil && (!found || n > size) {
			size, found = n, true
		}
		return nil
	})
	if err != nil {
		return ledger.Checkpoint{}, nil, fmt.Errorf("archive: list checkpoints: %w", err)
	}
	if !found {
		return ledger.Checkpoint{}, nil, ErrNoCheckpoint
	}
	key := ledger.CheckpointKey(s.opts.LogID, size)
	signed, err := readSmall(ctx, s.objs, key, 64<<10)
	if err != nil {
		return ledger.Checkpoint{}, nil, fmt.Errorf("archive: read %s: %w", key, err)
	}
	c, err := ledger.OpenCheckpoint(signed, s.opts.Signing.Verifier)
	if err != nil {
		return ledger.Checkpoint{}, nil, fmt.Errorf("archive: %s: %w", key, err)
	}
	if c.Size != size {
		return ledger.Checkpoint{}, nil, fmt.Errorf("archive: %s holds a checkpoint of size %d", key, c.Size)
	}
	return c, signed, nil
}

// SigningKey returns the ledger's signing key: it signs checkpoints and
// export manifests, and its public half verifies them anywhere.
func (s *Store) SigningKey() *crypto.SigningKey { return s.opts.Signing }

// ReadOnly reports whether the store was opened read-only (another process
// writes the archive): it cannot publish a checkpoint.
func (s *Store) ReadOnly() bool { return s.opts.ReadOnly }
