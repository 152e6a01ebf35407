package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
)

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// State is what a writer needs to continue a log: its size, the hash of its
// last entry and the compact Merkle range covering [0, Size). The archive
// keeps it in its index so start-up does not re-read the whole log.
type State struct {
	Size  uint64
	Last  Hash
	Range []Hash
}

// Log appends to one ledger. One process at a time may write a given log id;
// the archive holds a lock file to ensure it.
type Log struct {
	store  objstore.Store
	id     string
	signer note.Signer

	mu   sync.Mutex
	size uint64
	last Hash
	rng  *compact.Range
}

// ErrDiverged means the object store does not hold the log the caller knows
// (truncated, or written by another process): the archive must not append.
var ErrDiverged = errors.New("ledger: the stored log does not match the known state")

// Replay receives the entries of one segment that follow the known state,
// in order, and the log state after them.
type Replay func(entries []*Entry, lines [][]byte, after State) error

// Open continues log id from st, first reading every segment committed after
// st and passing its new entries, segment by segment, to replay (so an index
// that lags behind the object store catches up). It verifies what it reads:
// segment signatures, sequence numbers and the hash chain.
func Open(ctx context.Context, store objstore.Store, id string, signer note.Signer, verifier note.Verifier, st State, replay Replay) (*Log, error) {
	hashes := make([][]byte, len(st.Range))
	for i := range st.Range {
		hashes[i] = st.Range[i][:]
	}
	rng, err := rangeFactory.NewRange(0, st.Size, hashes)
	if err != nil {
		return nil, fmt.Errorf("ledger: state for size %d: %w", st.Size, err)
	}
	l := &Log{store: store, id: id, signer: signer, size: st.Size, last: st.Last, rng: rng}

	var segs []uint64
	err = store.List(ctx, "ledger/"+id+"/", func(i objstore.Info) error {
		if first, ok := parseNumberedKey(i.Key, ".seg"); ok {
			segs = append(segs, first)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: list segments: %w", err)
	}
	// Start at the segment holding entry st.Size-1, to check it is the
	// entry last committed; everything after it is replayed.
	start := 0
	if st.Size > 0 {
		start = len(segs)
		for i := range segs {
			if i+1 == len(segs) || segs[i+1] >= st.Size {
				start = i
				break
			}
		}
		if start == len(segs) || segs[start] > st.Size-1 {
			return nil, fmt.Errorf("%w: %d entries known, but no segment holds entry %d (ledger truncated?)", ErrDiverged, st.Size, st.Size-1)
		}
	}
	sawLast := st.Size == 0
	for _, first := range segs[start:] {
		entries, lines, err := readSegment(ctx, store, id, first, verifier)
		if err != nil {
			return nil, err
		}
		var newEntries []*Entry
		var newLines [][]byte
		for i, e := range entries {
			switch {
			case e.Seq+1 < st.Size:
				continue
			case e.Seq+1 == st.Size:
				if EntryHash(lines[i]) != st.Last {
					return nil, fmt.Errorf("%w: entry %d in the store differs from the one last committed", ErrDiverged, e.Seq)
				}
				sawLast = true
				continue
			}
			if !sawLast {
				return nil, fmt.Errorf("%w: entry %d, last committed, is not in the store (ledger truncated?)", ErrDiverged, st.Size-1)
			}
			if e.Seq != l.size {
				return nil, fmt.Errorf("%w: segment %s: entry %d where %d was expected", ErrDiverged, SegmentKey(id, first), e.Seq, l.size)
			}
			if e.Prev != l.last.String() && !(l.size == 0 && e.Prev == Hash{}.String()) {
				return nil, fmt.Errorf("%w: entry %d does not chain to entry %d", ErrDiverged, e.Seq, l.size-1)
			}
			newEntries = append(newEntries, e)
			newLines = append(newLines, lines[i])
			l.appendLeaf(lines[i])
		}
		if len(newEntries) > 0 {
			if err := replay(newEntries, newLines, l.stateLocked()); err != nil {
				return nil, err
			}
		}
	}
	if !sawLast {
		return nil, fmt.Errorf("%w: entry %d, last committed, is not in the store (ledger truncated?)", ErrDiverged, st.Size-1)
	}
	return l, nil
}

func (l *Log) appendLeaf(line []byte) {
	l.appendLeafHash(LeafHash(line))
	l.last = EntryHash(line)
}

// appendLeafHash adds a leaf to the range; the caller sets l.last.
func (l *Log) appendLeafHash(leaf Hash) {
	if err := l.rng.Append(leaf[:], nil); err != nil {
		panic(err) // ranges only grow at their end: cannot fail
	}
	l.size++
}

// readSegment reads and verifies one segment.
func readSegment(ctx context.Context, store objstore.Store, id string, first uint64, v note.Verifier) ([]*Entry, [][]byte, error) {
	key := SegmentKey(id, first)
	msg, err := getAll(ctx, store, key)
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: read %s: %w", key, err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: segment %s: %v", ErrBadSignature, key, err)
	}
	entries, lines, err := parseLines([]byte(n.Text))
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: segment %s: %w", key, err)
	}
	if len(entries) == 0 || entries[0].Seq != first {
		return nil, nil, fmt.Errorf("ledger: segment %s does not start with entry %d", key, first)
	}
	return entries, lines, nil
}

func parseLines(text []byte) ([]*Entry, [][]byte, error) {
	var entries []*Entry
	var lines [][]byte
	for len(text) > 0 {
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			return nil, nil, fmt.Errorf("unterminated line")
		}
		line := text[:i]
		text = text[i+1:]
		e, err := ParseEntry(line)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
		lines = append(lines, line)
	}
	return entries, lines, nil
}

func getAll(ctx context.Context, store objstore.Store, key string) ([]byte, error) {
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 1<<30))
}

// ID is the log id used in object keys.
func (l *Log) ID() string { return l.id }

// Size is the number of committed entries.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// State returns the state to persist for a later Open.
func (l *Log) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stateLocked()
}

func (l *Log) stateLocked() State {
	st := State{Size: l.size, Last: l.last}
	for _, h := range l.rng.Hashes() {
		var x Hash
		copy(x[:], h)
		st.Range = append(st.Range, x)
	}
	return st
}

// Append commits entries as one segment: it sets V, Seq and Prev on each,
// writes the signed segment durably, and returns their lines and the new
// state. On error nothing is committed and the log is unchanged. Entries
// may be built concurrently, but Appends are serialised.
func (l *Log) Append(ctx context.Context, entries []*Entry) ([][]byte, State, error) {
	p, err := l.Prepare(entries)
	if err != nil {
		return nil, State{}, err
	}
	st, err := l.Write(ctx, p)
	if err != nil {
		return nil, State{}, err
	}
	return p.Lines, st, nil
}

// Segment is a segment prepared by Prepare: its entries numbered,
// chained and signed, not yet written.
type Segment struct {
	// Lines are the entries' lines, in order.
	Lines [][]byte
	// Leaves are the lines' RFC 9162 leaf hashes (LeafHash), in order.
	Leaves []Hash
	// last is the last line's EntryHash: the chain's next prev.
	last  Hash
	key   string
	msg   []byte
	first uint64
}

// Prepare numbers, chains and signs entries as the next segment, without
// writing it: Append is Prepare then Write. A caller may use the lines
// (an index transaction, say) while Write makes the segment durable, but
// nothing may be prepared again until that Write returns.
func (l *Log) Prepare(entries []*Entry) (*Segment, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(entries) == 0 {
		return &Segment{first: l.size}, nil
	}
	lines := make([][]byte, len(entries))
	leaves := make([]Hash, len(entries))
	var text strings.Builder // String does not copy
	prev := l.last
	if l.size == 0 {
		prev = Hash{}
	}
	for i, e := range entries {
		e.V = Version
		e.Seq = l.size + uint64(i)
		e.Prev = prev.String()
		if e.Time.IsZero() {
			e.Time = time.Now().UTC()
		}
		line, err := e.Marshal()
		if err != nil {
			return nil, err
		}
		lines[i] = line
		leaves[i] = LeafHash(line)
		prev = EntryHash(line)
	}
	n := 0
	for _, line := range lines {
		n += len(line) + 1
	}
	text.Grow(n)
	for _, line := range lines {
		text.Write(line)
		text.WriteByte('\n')
	}
	msg, err := note.Sign(&note.Note{Text: text.String()}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("ledger: sign segment: %w", err)
	}
	return &Segment{Lines: lines, Leaves: leaves, last: prev, key: SegmentKey(l.id, l.size), msg: msg, first: l.size}, nil
}

// Write stores a prepared segment durably and commits its entries,
// returning the new state. On error nothing is committed and the log is
// unchanged. The segment must be the last one prepared.
func (l *Log) Write(ctx context.Context, p *Segment) (State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(p.Lines) == 0 {
		return l.stateLocked(), nil
	}
	if p.first != l.size {
		return State{}, fmt.Errorf("ledger: segment %s was prepared at size %d, the log is at %d", p.key, p.first, l.size)
	}
	if err := l.store.Put(ctx, p.key, bytes.NewReader(p.msg), int64(len(p.msg))); err != nil {
		if errors.Is(err, objstore.ErrExist) {
			return State{}, fmt.Errorf("%w: segment %s already exists: a write reported as failed landed after all, or another process writes log %s", ErrDiverged, p.key, l.id)
		}
		return State{}, fmt.Errorf("ledger: write %s: %w", p.key, err)
	}
	for _, leaf := range p.Leaves {
		l.appendLeafHash(leaf)
	}
	l.last = p.last
	return l.stateLocked(), nil
}

// Checkpoint returns the checkpoint of the log as it is now.
func (l *Log) Checkpoint() Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Checkpoint{Origin: l.signer.Name(), Size: l.size, Root: rootOf(l.rng)}
}

func rootOf(r *compact.Range) Hash {
	var h Hash
	if r.End() == 0 {
		copy(h[:], rfc6962.DefaultHasher.EmptyRoot())
		return h
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		panic(err)
	}
	copy(h[:], root)
	return h
}

// PublishCheckpoint signs the current checkpoint and stores it, unless one
// of that size is already stored. It returns the signed note.
func (l *Log) PublishCheckpoint(ctx context.Context) (Checkpoint, []byte, error) {
	c := l.Checkpoint()
	signed, err := c.Sign(l.signer)
	if err != nil {
		return c, nil, err
	}
	key := CheckpointKey(l.id, c.Size)
	err = l.store.Put(ctx, key, bytes.NewReader(signed), int64(len(signed)))
	if err != nil && !errors.Is(err, objstore.ErrExist) {
		return c, nil, fmt.Errorf("ledger: write %s: %w", key, err)
	}
	return c, signed, nil
}
