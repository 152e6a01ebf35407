package archive

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/payload"
	"github.com/cairn-archive/cairn/crypto"
)

// ErrNotFound is returned (wrapped) for an id that names no message.
var ErrNotFound = errors.New("archive: no such message")

// Resolve turns a user's message id into a message seq: a ledger sequence
// number (of the message entry or of any delivery of it) or the SHA-256 of
// the original bytes in hex.
func (s *Store) Resolve(ctx context.Context, id string) (uint64, error) {
	id = strings.TrimSpace(id)
	if n, err := strconv.ParseUint(id, 10, 64); err == nil {
		seq, err := s.index.MessageOfEntry(ctx, n)
		if errors.Is(err, index.ErrNotFound) {
			return 0, fmt.Errorf("%w: ledger entry %d does not exist", ErrNotFound, n)
		}
		if err != nil {
			return 0, err
		}
		if _, err := s.index.Message(ctx, seq); err != nil {
			return 0, fmt.Errorf("%w: ledger entry %d is not a message or delivery", ErrNotFound, n)
		}
		return seq, nil
	}
	b, err := hex.DecodeString(strings.ToLower(id))
	if err != nil || len(b) != 32 {
		return 0, fmt.Errorf("%w: %q is neither a ledger sequence number nor a 64-digit SHA-256", ErrNotFound, id)
	}
	var sha [32]byte
	copy(sha[:], b)
	seq, _, err := s.index.MessageBySHA(ctx, sha)
	if errors.Is(err, index.ErrNotFound) {
		return 0, fmt.Errorf("%w: no message has SHA-256 %s", ErrNotFound, id)
	}
	return seq, err
}

// Message is an opened message: its index row and a reader of its original
// bytes by range. Close it when done.
type Message struct {
	Row *index.MessageRow
	*payload.Reader
	closer io.Closer
}

// Close releases the object and the reader's buffers.
func (m *Message) Close() error {
	m.Reader.Close()
	return m.closer.Close()
}

// ErrUnreadable is returned (wrapped) for a message whose key or object is
// gone: disposed, erased or damaged.
var ErrUnreadable = errors.New("archive: message cannot be read")

// OpenMessage opens message seq for reading. Bodies are decrypted range by
// range (payload.Reader), so nothing holds a whole large message.
func (s *Store) OpenMessage(ctx context.Context, seq uint64) (*Message, error) {
	m, err := s.index.Message(ctx, seq)
	if err != nil {
		return nil, err
	}
	return s.OpenMessageRow(ctx, m)
}

// Prefetch tells the object store that the payload and key objects of
// rows are about to be opened (OpenMessageRow), for stores that look many
// objects up at once more cheaply (objstore.Prefetcher). Only a hint.
func (s *Store) Prefetch(ctx context.Context, rows []*index.MessageRow) {
	pf, ok := s.objs.(objstore.Prefetcher)
	if !ok || len(rows) == 0 {
		return
	}
	_, hinted := s.objs.(objstore.Hinter)
	keys := make([]string, 0, 2*len(rows))
	for _, m := range rows {
		if m.State != index.StateActive || m.Object == "" {
			continue
		}
		if hinted && len(m.KeyHint) > 0 && len(m.ObjectHint) > 0 && m.ObjectSize <= maxHintedObject {
			continue // read from its hints, without a lookup
		}
		keys = append(keys, m.KeyObject, m.Object)
	}
	pf.Prefetch(ctx, keys)
}

// OpenMessageRow is OpenMessage for a caller that has read the message's
// index row already (the IMAP view reads rows a batch at a time). It uses
// Seq, State, Size, Object, KeyObject and ObjectSize; the returned
// Message's Row is m.
func (s *Store) OpenMessageRow(ctx context.Context, m *index.MessageRow) (*Message, error) {
	seq := m.Seq
	if m.State != index.StateActive {
		return nil, fmt.Errorf("%w: message %d was %s", ErrUnreadable, seq, stateName(m.State))
	}
	mk, err := s.messageKey(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	rd, closer, err := s.openPayload(ctx, m, mk)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if rd.Size() != m.Size {
		closer.Close()
		return nil, fmt.Errorf("%w: message %d holds %d bytes, the ledger says %d", ErrUnreadable, seq, rd.Size(), m.Size)
	}
	return &Message{Row: m, Reader: rd, closer: closer}, nil
}

func stateName(st int) string {
	switch st {
	case index.StateDisposed:
		return "disposed"
	case index.StateErased:
		return "erased"
	}
	return "active"
}

// maxHintedObject is the largest message object read whole through its
// hint (nearly every message): a larger one is read a range at a time, as
// before.
const maxHintedObject = 1 << 20

func (s *Store) openPayload(ctx context.Context, m *index.MessageRow, mk *crypto.MessageKey) (*payload.Reader, io.Closer, error) {
	var src io.ReaderAt
	var size int64
	var closer io.Closer = io.NopCloser(nil)
	// Read through its hint into a buffer of payload's, which the Reader
	// then owns: a single-chunk object is decrypted where it was read.
	var buf []byte
	b, err := s.readHint(ctx, m.Object, m.ObjectHint, maxHintedObject, func(n int) []byte {
		buf = payload.Buffer(n)
		return buf
	})
	if err != nil {
		payload.Release(buf)
		return nil, nil, fmt.Errorf("object %s: %w", m.Object, err)
	}
	if b != nil {
		rd, err := payload.OpenBuffer(buf, b, mk)
		if err != nil {
			return nil, nil, fmt.Errorf("object %s: %w", m.Object, err)
		}
		return rd, closer, nil
	}
	payload.Release(buf) // a stale hint: read the usual way
	if rr, ok := s.objs.(objstore.RangeReader); ok {
		ra, err := rr.OpenReaderAt(ctx, m.Object)
		if err != nil {
			return nil, nil, fmt.Errorf("object %s: %w", m.Object, err)
		}
		src, size, closer = ra, ra.Size(), ra
	} else {
		b, err := readSmall(ctx, s.objs, m.Object, m.ObjectSize)
		if err != nil {
			return nil, nil, fmt.Errorf("object %s: %w", m.Object, err)
		}
		src, size = bytes.NewReader(b), int64(len(b))
	}
	rd, err := payload.Open(src, size, mk)
	if err != nil {
		closer.Close()
		return nil, nil, fmt.Errorf("object %s: %w", m.Object, err)
	}
	return rd, closer, nil
}
