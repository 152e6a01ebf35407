package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/ingest"
)

// replayer rebuilds index rows from ledger entries and the objects they
// name: the index catching up at start-up, and `cairn reindex`.
type replayer struct {
	s     *Store
	batch *index.Batch
	keys  map[uint64]*crypto.MessageKey // message keys of the unflushed batch
	count int
}

// replayFlushEvery bounds the rows held before an index transaction.
const replayFlushEvery = 512

func newReplayer(s *Store) *replayer {
	r := &replayer{s: s}
	r.reset()
	return r
}

func (r *replayer) reset() {
	r.batch = &index.Batch{Tokens: make(map[uint64]string)}
	r.keys = make(map[uint64]*crypto.MessageKey)
}

func (r *replayer) replay(entries []*ledger.Entry, lines [][]byte, after ledger.State) error {
	ctx := context.Background()
	for i, e := range entries {
		if err := r.entry(ctx, e, lines[i]); err != nil {
			return fmt.Errorf("archive: replay entry %d: %w", e.Seq, err)
		}
		r.count++
	}
	r.batch.State = after
	if len(r.batch.Entries) >= replayFlushEvery {
		return r.flush(ctx, after)
	}
	return nil
}

// flush commits the rows gathered so far with the ledger state after them.
func (r *replayer) flush(ctx context.Context, st ledger.State) error {
	if len(r.batch.Entries) == 0 {
		return nil
	}
	r.batch.State = st
	if err := r.s.index.Commit(r.batch); err != nil {
		return err
	}
	r.reset()
	return nil
}

func (r *replayer) entry(ctx context.Context, e *ledger.Entry, line []byte) error {
	r.batch.Entries = append(r.batch.Entries, index.EntryRow{Seq: e.Seq, Kind: e.Kind, Ref: e.Ref, Line: line})
	switch e.Kind {
	case ledger.KindMessage:
		if e.Message == nil || e.Delivery == nil {
			return fmt.Errorf("message entry without message or delivery")
		}
		return r.message(ctx, e)
	case ledger.KindDelivery:
		if e.Ref == nil || e.Delivery == nil {
			return fmt.Errorf("delivery entry without ref or delivery")
		}
		mk := r.keys[*e.Ref]
		if mk == nil {
			m, err := r.s.index.Message(ctx, *e.Ref)
			if err != nil {
				return err
			}
			if mk, err = r.s.messageKey(ctx, m); err != nil {
				// Erased or damaged: the delivery is recorded without
				// its envelope, which can no longer be read.
				r.batch.Deliveries = append(r.batch.Deliveries, index.DeliveryRow{Seq: e.Seq, Message: *e.Ref, Envelope: []byte("{}")})
				return nil
			}
		}
		return r.delivery(e, *e.Ref, mk)
	default:
		return r.s.replayOther(ctx, r.batch, e)
	}
}

func (r *replayer) message(ctx context.Context, e *ledger.Entry) error {
	m := &index.MessageRow{
		Seq:        e.Seq,
		Size:       e.Message.Size,
		Object:     e.Message.Object,
		KeyObject:  e.Message.KeyObject,
		ObjectSize: e.Message.ObjectSize,
		ArchivedAt: e.Time,
		Header:     []byte{},
		Structure:  []byte{},
	}
	if h, err := hex.DecodeString(e.Message.ObjectSHA256); err == nil && len(h) == 32 {
		copy(m.ObjectSHA256[:], h)
	}
	mk, raw, err := r.s.readMessage(ctx, m)
	if err != nil {
		// Kept as a row so that verify names it; its content is lost
		// or erased, which a tombstone entry may explain later.
		m.Problems = []string{"unreadable at reindex: " + err.Error()}
		r.batch.Messages = append(r.batch.Messages, *m)
		r.batch.Deliveries = append(r.batch.Deliveries, index.DeliveryRow{Seq: e.Seq, Message: e.Seq, Envelope: []byte("{}")})
		return nil
	}
	m.SHA256 = sha256.Sum256(raw)
	if h, ok := r.s.objs.(objstore.Hinter); ok {
		// Optional: without them the reads look the objects up.
		m.ObjectHint, _ = h.Hint(ctx, m.Object)
		m.KeyHint, _ = h.Hint(ctx, m.KeyObject)
	}
	an := analyze(raw, r.s.tokenMACs)
	an.fill(m)
	r.batch.Messages = append(r.batch.Messages, *m)
	if an.tokens != "" {
		r.batch.Tokens[e.Seq] = an.tokens
	}
	r.keys[e.Seq] = mk
	return r.delivery(e, e.Seq, mk)
}

func (r *replayer) delivery(e *ledger.Entry, msg uint64, mk *crypto.MessageKey) error {
	sealed, err := base64.StdEncoding.DecodeString(e.Delivery.Envelope)
	if err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	envJSON, err := mk.Open("envelope", sealed)
	if err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	var env ingest.Envelope
	if err := json.Unmarshal(envJSON, &env); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	d := deliveryRow(&env, envJSON)
	d.Seq, d.Message = e.Seq, msg
	r.batch.Deliveries = append(r.batch.Deliveries, d)
	return nil
}

// readMessage reads a message's key object and object and returns the
// original bytes.
func (s *Store) readMessage(ctx context.Context, m *index.MessageRow) (*crypto.MessageKey, []byte, error) {
	mk, err := s.messageKey(ctx, m)
	if err != nil {
		return nil, nil, err
	}
	rd, closer, err := s.openPayload(ctx, m, mk)
	if err != nil {
		return nil, nil, err
	}
	defer closer.Close()
	var b bytes.Buffer
	if _, err := rd.WriteTo(&b); err != nil {
		return nil, nil, err
	}
	return mk, b.Bytes(), nil
}

// replayOther applies entries other than messages and deliveries. Retention
// entries (dispose, erase) mark the message; events need no row.
func (s *Store) replayOther(ctx context.Context, b *index.Batch, e *ledger.Entry) error {
	switch e.Kind {
	case ledger.KindEvent:
		return nil
	case ledger.KindDispose, ledger.KindErase:
		if e.Ref == nil {
			return fmt.Errorf("%s entry without ref", e.Kind)
		}
		state := index.StateDisposed
		if e.Kind == ledger.KindErase {
			state = index.StateErased
		}
		b.Gone = append(b.Gone, index.Gone{Seq: *e.Ref, State: state})
		return nil
	}
	return fmt.Errorf("unknown entry kind %q", e.Kind)
}
