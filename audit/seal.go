package audit

import (
	"bytes"
	"context"
	"crypto"
	_ "crypto/sha256" // rfc6962 hasher
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Sealing writes the chain to the object store in write-once segments, each
// followed by a signed checkpoint:
//
//	audit/<origin key>/<20-digit first seq>.seg       segment: entry lines (Entry.Line), each ending in "\n"
//	audit/<origin key>/checkpoint/<20-digit size>.cp  checkpoint note over entries 1..size
//
// The Merkle tree is RFC 9162 §2.1 over the entries' stored bytes (leaf i is
// entry i+1). A checkpoint's size is the last seq of the segment it follows.

var hasher = rfc6962.New(crypto.SHA256)

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// OriginKey maps an origin to the object-key segment used under audit/:
// lowercase, every byte outside [a-z0-9._-] replaced by '-', a leading '.'
// replaced by '-'. "Archive.example.com/Audit" becomes
// "archive.example.com-audit".
func OriginKey(origin string) string {
	b := []byte(strings.ToLower(origin))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 0 && b[0] == '.' {
		b[0] = '-'
	}
	return string(b)
}

// SegmentKey is the object key of the segment whose first entry is first.
func SegmentKey(origin string, first Seq) string {
	return fmt.Sprintf("audit/%s/%020d.seg", OriginKey(origin), uint64(first))
}

// CheckpointKey is the object key of the checkpoint of size entries.
func CheckpointKey(origin string, size Seq) string {
	return fmt.Sprintf("audit/%s/checkpoint/%020d.cp", OriginKey(origin), uint64(size))
}

// Checkpoint is a parsed checkpoint body.
//
// SPEC: c2sp.org/tlog-checkpoint — origin line, decimal tree size, base64
// root hash, each ending in "\n", then the note signatures
// (SPEC: c2sp.org/signed-note).
type Checkpoint struct {
	Origin string
	Size   Seq
	Root   Hash
}

// Text returns the checkpoint body (without signatures).
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, uint64(c.Size), base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint parses a checkpoint body (the note text). Extension lines
// after the root are allowed and ignored, as the spec says.
func ParseCheckpoint(text string) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 3 || !strings.HasSuffix(text, "\n") {
		return c, fmt.Errorf("audit: checkpoint: want origin, size and root lines")
	}
	c.Origin = strings.TrimSuffix(lines[0], "\n")
	n, err := strconv.ParseUint(strings.TrimSuffix(lines[1], "\n"), 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != strings.TrimSuffix(lines[1], "\n") {
		return c, fmt.Errorf("audit: checkpoint: bad size line %q", lines[1])
	}
	c.Size = Seq(n)
	root, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != 32 {
		return c, fmt.Errorf("audit: checkpoint: bad root line %q", lines[2])
	}
	copy(c.Root[:], root)
	if c.Origin == "" {
		return c, fmt.Errorf("audit: checkpoint: empty origin")
	}
	return c, nil
}

// OpenCheckpoint verifies a signed checkpoint note with the verifiers and
// parses it.
func OpenCheckpoint(msg []byte, verifiers ...note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	return ParseCheckpoint(n.Text)
}

type sealState struct {
	mu     sync.Mutex // one sealer at a time (sealLoop, Seal)
	sealed Seq        // last seq in a segment
	rng    *compact.Range
	cp     []byte // last signed checkpoint
	err    error  // last sealing error
}

func (l *Log) loadSeal() error {
	var last int64
	var rngHashes, cp []byte
	err := l.wdb.QueryRow(`SELECT last, range, note FROM seals ORDER BY last DESC LIMIT 1`).Scan(&last, &rngHashes, &cp)
	if errors.Is(err, sql.ErrNoRows) {
		l.sl.rng = rangeFactory.NewEmptyRange(0)
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: open: read seals: %w", err)
	}
	if len(rngHashes)%32 != 0 {
		return fmt.Errorf("%w: seal %d: bad range", ErrTampered, last)
	}
	var hs [][]byte
	for i := 0; i < len(rngHashes); i += 32 {
		hs = append(hs, rngHashes[i:i+32])
	}
	rng, err := rangeFactory.NewRange(0, uint64(last), hs)
	if err != nil {
		return fmt.Errorf("%w: seal %d: %v", ErrTampered, last, err)
	}
	l.sl.sealed, l.sl.rng, l.sl.cp = Seq(last), rng, cp
	return nil
}

func (l *Log) sealLoop(ctx context.Context) {
	defer l.wg.Done()
	tick := time.NewTicker(l.opts.SegmentInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		changed := l.Changed()
		force := false
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
			force = true
		}
		for {
			_, err := l.sealPending(ctx, force)
			if err == nil || ctx.Err() != nil {
				backoff = 0
				break
			}
			// The object store is down or refused a write: Record goes on
			// (SQLite is the commit point); retry with capped backoff.
			backoff = min(max(2*backoff, time.Second), time.Minute)
			l.opts.Logger.Warn("audit: sealing failed; will retry", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// Seal writes every committed entry not yet in a segment to the object store
// now, with a checkpoint after each segment, and returns the newest signed
// checkpoint (nil if the log is empty). Safe to call while Record runs.
func (l *Log) Seal(ctx context.Context) ([]byte, error) {
	if l.opts.Store == nil || l.opts.ReadOnly {
		return nil, errors.New("audit: seal: no object store configured")
	}
	if l.opts.NoSealing {
		return nil, errors.New("audit: seal: this log does not seal (NoSealing)")
	}
	return l.sealPending(ctx, true)
}

// sealPending writes full segments, and with force also a final partial one.
func (l *Log) sealPending(ctx context.Context, force bool) ([]byte, error) {
	s := &l.sl
	s.mu.Lock()
	defer s.mu.Unlock()
	// Other processes' events are sealed at the interval (and by Seal),
	// not on every commit of this one, which wakes the sealer each time.
	if force {
		if err := l.raiseHead(ctx); err != nil {
			return nil, err
		}
	}
	for {
		head := l.Head()
		pending := head - s.sealed
		if pending == 0 || (!force && pending < Seq(l.opts.SegmentEvents)) {
			return s.cp, nil
		}
		last := min(head, s.sealed+Seq(l.opts.SegmentEvents))
		if err := l.sealSegment(ctx, s.sealed+1, last); err != nil {
			s.err = err
			return nil, err
		}
		s.err = nil
	}
}

// sealSegment writes entries first..last as one segment (or adopts the
// segment already stored at that key, after a crash between the object
// write and the database row), then the checkpoint, then records both.
func (l *Log) sealSegment(ctx context.Context, first, last Seq) error {
	st := l.opts.Store
	key := SegmentKey(l.opts.Origin, first)
	var data []byte
	existing, err := getAll(ctx, st, key)
	switch {
	case err == nil:
		// Adopt: it must hold exactly our entries from first on.
		data = existing
		n := bytes.Count(existing, []byte("\n"))
		last = first + Seq(n) - 1
		if n == 0 || last > l.Head() {
			return fmt.Errorf("%w: segment %s holds entries beyond the database head", ErrTampered, key)
		}
	case errors.Is(err, objstore.ErrNotExist):
	default:
		return fmt.Errorf("audit: seal %s: %w", key, err)
	}
	var prev Hash
	if first > 1 {
		if err := l.rdb.QueryRowContext(ctx, `SELECT hash FROM events WHERE seq = ?`, int64(first-1)).Scan(prevBytes(&prev)); err != nil {
			return fmt.Errorf("audit: seal: read entry %d: %w", first-1, err)
		}
	}
	entries, err := l.readRaw(ctx, first, int(last-first+1), prev)
	if err != nil {
		return err
	}
	if len(entries) != int(last-first+1) || entries[0].Seq != first {
		return fmt.Errorf("%w: entries %d..%d missing from the database", ErrTampered, first, last)
	}
	var seg []byte
	for i := range entries {
		seg = AppendLine(seg, entries[i].Bytes, entries[i].Hash)
		seg = append(seg, '\n')
	}
	if data != nil {
		if !bytes.Equal(data, seg) {
			return fmt.Errorf("%w: stored segment %s differs from the database", ErrTampered, key)
		}
	} else if err := st.Put(ctx, key, bytes.NewReader(seg), int64(len(seg))); err != nil && !errors.Is(err, objstore.ErrExist) {
		return fmt.Errorf("audit: seal %s: %w", key, err)
	} else if err != nil {
		return fmt.Errorf("audit: seal %s: appeared meanwhile: %w", key, err)
	}

	tmp, signed, err := l.nextCheckpoint(entries, last)
	if err != nil {
		return err
	}
	cpKey := CheckpointKey(l.opts.Origin, last)
	if err := st.Put(ctx, cpKey, bytes.NewReader(signed), int64(len(signed))); errors.Is(err, objstore.ErrExist) {
		// ed25519 signatures are deterministic: a re-sign after a crash
		// gives the same bytes; anything else is damage.
		old, gerr := getAll(ctx, st, cpKey)
		if gerr != nil {
			return fmt.Errorf("audit: seal %s: %w", cpKey, gerr)
		}
		if !bytes.Equal(old, signed) {
			return fmt.Errorf("%w: stored checkpoint %s differs", ErrTampered, cpKey)
		}
	} else if err != nil {
		return fmt.Errorf("audit: seal %s: %w", cpKey, err)
	}
	if err := recordSeal(ctx, l.wdb, first, last, key, cpKey, signed, tmp); err != nil {
		return fmt.Errorf("audit: seal: record %s: %w", key, err)
	}
	l.sl.sealed, l.sl.rng, l.sl.cp = last, tmp, signed
	return nil
}

// nextCheckpoint returns the Merkle range after the sealed one with entries
// (which follow it) appended, and the signed checkpoint of its size last.
func (l *Log) nextCheckpoint(entries []Entry, last Seq) (*compact.Range, []byte, error) {
	rng := l.sl.rng
	tmp, err := rangeFactory.NewRange(rng.Begin(), rng.End(), rng.Hashes())
	if err != nil {
		return nil, nil, err
	}
	for i := range entries {
		if err := tmp.Append(hasher.HashLeaf(entries[i].Bytes), nil); err != nil {
			return nil, nil, err
		}
	}
	rootb, err := tmp.GetRootHash(nil)
	if err != nil {
		return nil, nil, err
	}
	var root Hash
	copy(root[:], rootb)
	cp := Checkpoint{Origin: l.opts.Origin, Size: last, Root: root}
	signed, err := note.Sign(&note.Note{Text: cp.Text()}, l.opts.Signer)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: sign checkpoint %d: %w", last, err)
	}
	return tmp, signed, nil
}

// recordSeal records the seal of segment key (entries first..last) and its
// checkpoint, with the Merkle range that loadSeal resumes from.
func recordSeal(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, first, last Seq, key, cpKey string, signed []byte, rng *compact.Range) error {
	var hs []byte
	for _, h := range rng.Hashes() {
		hs = append(hs, h...)
	}
	_, err := db.ExecContext(ctx, `INSERT INTO seals(last, first, segment, checkpoint, note, range, sealed) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		int64(last), int64(first), key, cpKey, signed, hs, time.Now().UnixNano())
	return err
}

// SealStatus reports how far the object store copy lags, for metrics.
type SealStatus struct {
	Sealed    Seq    // last seq in a stored segment and checkpoint
	Head      Seq    // last committed seq
	LastError string // last sealing error, "" after a success
}

// SealStatus returns the sealing state.
func (l *Log) SealStatus() SealStatus {
	l.sl.mu.Lock()
	defer l.sl.mu.Unlock()
	s := SealStatus{Sealed: l.sl.sealed, Head: l.Head()}
	if l.sl.err != nil {
		s.LastError = l.sl.err.Error()
	}
	return s
}

func getAll(ctx context.Context, st objstore.Store, key string) ([]byte, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// prevBytes scans a 32-byte BLOB into h.
type hashScanner struct{ h *Hash }

func prevBytes(h *Hash) hashScanner { return hashScanner{h} }

func (s hashScanner) Scan(v any) error {
	b, ok := v.([]byte)
	if !ok || len(b) != 32 {
		return fmt.Errorf("not a 32-byte hash")
	}
	copy(s.h[:], b)
	return nil
}

// raiseHead brings the in-memory head up to the database's: events that
// other processes (CLI commands) recorded are sealed too, without waiting
// for this process to record one.
func (l *Log) raiseHead(ctx context.Context) error {
	var h int64
	if err := l.rdb.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM events`).Scan(&h); err != nil {
		return fmt.Errorf("audit: seal: read the head: %w", err)
	}
	for {
		cur := l.head.Load()
		if uint64(h) <= cur || l.head.CompareAndSwap(cur, uint64(h)) {
			return nil
		}
	}
}
