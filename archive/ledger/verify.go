package ledger

import (
	"context"
	"fmt"
	"runtime"
	"sort"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Problem kinds reported by Verify (and, for objects and the index, by the
// archive's verify). Each names one kind of damage.
const (
	ProblemSegmentSignature    = "segment-signature"    // a segment's signature does not verify: edited, or written without the key
	ProblemSegmentName         = "segment-name"         // a segment's name does not match its first entry
	ProblemEntryMalformed      = "entry-malformed"      // a line does not parse as a canonical entry
	ProblemEntryMissing        = "entry-missing"        // sequence numbers skip: entries deleted
	ProblemEntryOrder          = "entry-order"          // an entry out of sequence: reordered or duplicated
	ProblemChain               = "chain"                // an entry's prev does not match the previous entry: the previous entry was altered, or entries were reordered
	ProblemCheckpointSignature = "checkpoint-signature" // a checkpoint's signature does not verify
	ProblemCheckpointRoot      = "checkpoint-root"      // the ledger's Merkle root at a checkpoint's size differs from the signed root
	ProblemTruncated           = "truncated"            // a checkpoint (or the index) covers more entries than the ledger holds
	ProblemUncovered           = "uncovered"            // entries after the latest signed checkpoint
	ProblemCheckpointMissing   = "checkpoint-missing"   // a checkpoint known to have been published is gone
)

// Problem is one finding of a verification.
type Problem struct {
	// Seq is the entry concerned, or -1.
	Seq int64
	// Key is the object concerned, if any.
	Key    string
	Kind   string
	Detail string
}

func (p Problem) String() string {
	s := p.Kind
	if p.Seq >= 0 {
		s += fmt.Sprintf(" entry %d", p.Seq)
	}
	if p.Key != "" {
		s += " " + p.Key
	}
	return s + ": " + p.Detail
}

// VerifyResult summarises a ledger verification.
type VerifyResult struct {
	Size        uint64 // entries read
	Segments    int
	Checkpoints int // checkpoints whose signature verified
	Latest      Checkpoint
	Root        Hash // Merkle root of the entries read
	// Roots holds the Merkle root at each size passed in rootsAt that the
	// ledger reaches.
	Roots map[uint64]Hash
}

// Verify reads log id from the store and checks every segment signature,
// every sequence number, the hash chain, and every checkpoint (signature and
// root). It calls onEntry for each entry in stored order, even damaged ones
// when they parse, and report for each problem. It returns an error only
// when the store cannot be read. It also records the Merkle root at each
// size in rootsAt (for checkpoints kept elsewhere).
func Verify(ctx context.Context, store objstore.Store, id string, v note.Verifier, onEntry func(e *Entry, line []byte) error, report func(Problem), rootsAt ...uint64) (VerifyResult, error) {
	res := VerifyResult{Roots: make(map[uint64]Hash)}
	want := make(map[uint64]bool)
	for _, n := range rootsAt {
		want[n] = true
	}
	if want[0] {
		res.Roots[0] = rootOf(rangeFactory.NewEmptyRange(0))
	}

	// Checkpoints first: their sizes tell where to compare roots.
	type ckpt struct {
		key string
		c   Checkpoint
	}
	var ckpts []ckpt
	err := store.List(ctx, "checkpoints/"+id+"/", func(i objstore.Info) error {
		size, ok := parseNumberedKey(i.Key, ".ckpt")
		if !ok {
			report(Problem{Seq: -1, Key: i.Key, Kind: ProblemCheckpointSignature, Detail: "unexpected object among checkpoints"})
			return nil
		}
		msg, err := getAll(ctx, store, i.Key)
		if err != nil {
			return fmt.Errorf("ledger: read %s: %w", i.Key, err)
		}
		c, err := OpenCheckpoint(msg, v)
		if err != nil {
			report(Problem{Seq: -1, Key: i.Key, Kind: ProblemCheckpointSignature, Detail: err.Error()})
			return nil
		}
		if c.Size != size || c.Origin != v.Name() {
			report(Problem{Seq: -1, Key: i.Key, Kind: ProblemCheckpointSignature, Detail: fmt.Sprintf("signed checkpoint is for %s size %d, not what its name says", c.Origin, c.Size)})
			return nil
		}
		ckpts = append(ckpts, ckpt{i.Key, c})
		return nil
	})
	if err != nil {
		return res, err
	}
	sort.Slice(ckpts, func(i, j int) bool { return ckpts[i].c.Size < ckpts[j].c.Size })
	res.Checkpoints = len(ckpts)
	if len(ckpts) > 0 {
		res.Latest = ckpts[len(ckpts)-1].c
	}
	next := 0 // next checkpoint to compare
	rng := rangeFactory.NewEmptyRange(0)
	checkRoots := func() {
		if want[rng.End()] {
			res.Roots[rng.End()] = rootOf(rng)
		}
		for next < len(ckpts) && ckpts[next].c.Size <= rng.End() {
			if ckpts[next].c.Size == rng.End() {
				if root := rootOf(rng); root != ckpts[next].c.Root {
					report(Problem{Seq: -1, Key: ckpts[next].key, Kind: ProblemCheckpointRoot,
						Detail: fmt.Sprintf("the ledger's first %d entries hash to another root than the signed checkpoint: entries were altered, inserted, removed or reordered", rng.End())})
				}
			}
			next++
		}
	}
	checkRoots() // a checkpoint of size 0

	var segs []string
	err = store.List(ctx, "ledger/"+id+"/", func(i objstore.Info) error {
		segs = append(segs, i.Key)
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("ledger: list segments: %w", err)
	}
	var expect uint64
	var prev Hash
	stop := make(chan struct{})
	defer close(stop)
	for rs := range readAhead(ctx, store, segs, v, stop) {
		key := rs.key
		res.Segments++
		first, ok := parseNumberedKey(key, ".seg")
		if !ok {
			report(Problem{Seq: -1, Key: key, Kind: ProblemSegmentName, Detail: "object in the ledger folder is not named like a segment"})
			continue
		}
		if rs.err != nil {
			return res, fmt.Errorf("ledger: read %s: %w", key, rs.err)
		}
		msg := rs.msg
		text, ok := splitNote(msg)
		if !ok {
			report(Problem{Seq: int64(first), Key: key, Kind: ProblemSegmentSignature, Detail: "segment has no signature block"})
			text = msg
		} else if err := <-rs.sig; err != nil {
			report(Problem{Seq: int64(first), Key: key, Kind: ProblemSegmentSignature, Detail: "signature does not verify: the segment was edited, or written without the ledger key"})
		}
		pos := 0
		for len(text) > 0 {
			i := indexByte(text, '\n')
			if i < 0 {
				i = len(text)
			}
			line := text[:i]
			text = text[min(i+1, len(text)):]
			pos++
			e, err := ParseEntry(line)
			if err != nil {
				report(Problem{Seq: int64(expect), Key: key, Kind: ProblemEntryMalformed, Detail: fmt.Sprintf("line %d: %v", pos, err)})
				// Count it in the tree and chain as stored, so roots and
				// the next prev still point at it.
				prev = EntryHash(line)
				leaf := LeafHash(line)
				rng.Append(leaf[:], nil)
				expect++
				checkRoots()
				continue
			}
			if pos == 1 && e.Seq != first {
				report(Problem{Seq: int64(e.Seq), Key: key, Kind: ProblemSegmentName, Detail: fmt.Sprintf("segment named for entry %d starts with entry %d", first, e.Seq)})
			}
			switch {
			case e.Seq > expect:
				report(Problem{Seq: int64(expect), Key: key, Kind: ProblemEntryMissing, Detail: fmt.Sprintf("entries %d to %d are missing", expect, e.Seq-1)})
			case e.Seq < expect:
				report(Problem{Seq: int64(e.Seq), Key: key, Kind: ProblemEntryOrder, Detail: fmt.Sprintf("entry %d found where entry %d was expected: reordered or duplicated", e.Seq, expect)})
			}
			wantPrev := prev.String()
			if rng.End() == 0 {
				wantPrev = Hash{}.String()
			}
			if e.Prev != wantPrev && e.Seq == expect {
				report(Problem{Seq: int64(e.Seq) - 1, Key: key, Kind: ProblemChain, Detail: fmt.Sprintf("entry %d's prev does not match the hash of the entry stored before it: that entry was altered, or entries were reordered", e.Seq)})
			}
			prev = EntryHash(line)
			leaf := LeafHash(line)
			rng.Append(leaf[:], nil)
			expect = e.Seq + 1
			checkRoots()
			if onEntry != nil {
				if err := onEntry(e, line); err != nil {
					return res, err
				}
			}
		}
	}
	res.Size = rng.End()
	res.Root = rootOf(rng)
	for ; next < len(ckpts); next++ {
		report(Problem{Seq: int64(res.Size), Key: ckpts[next].key, Kind: ProblemTruncated,
			Detail: fmt.Sprintf("signed checkpoint covers %d entries but the ledger holds %d: entries were removed from its end", ckpts[next].c.Size, res.Size)})
	}
	return res, nil
}

// aheadSegment is a segment read ahead of Verify's loop, its signature
// checked on another core: sig receives note.Open's outcome.
type aheadSegment struct {
	key string
	msg []byte
	err error
	sig chan error
}

// readAhead reads segs in order, a few ahead of the consumer, and checks
// each signature on its own goroutine (one ed25519 check a segment was a
// sixth of verify's time, on one core). It stops when stop is closed.
func readAhead(ctx context.Context, store objstore.Store, segs []string, v note.Verifier, stop <-chan struct{}) <-chan *aheadSegment {
	out := make(chan *aheadSegment, 8)
	go func() {
		defer close(out)
		busy := make(chan struct{}, runtime.GOMAXPROCS(0))
		for _, key := range segs {
			rs := &aheadSegment{key: key, sig: make(chan error, 1)}
			if _, ok := parseNumberedKey(key, ".seg"); ok {
				rs.msg, rs.err = getAll(ctx, store, key)
				if _, signed := splitNote(rs.msg); rs.err == nil && signed {
					busy <- struct{}{}
					go func() {
						_, err := note.Open(rs.msg, note.VerifierList(v))
						rs.sig <- err
						<-busy
					}()
				}
			}
			select {
			case out <- rs:
			case <-stop:
				return
			}
		}
	}()
	return out
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// Scan calls fn for every entry of log id in stored order, without the
// checks Verify makes; entries that do not parse are skipped.
func Scan(ctx context.Context, store objstore.Store, id string, fn func(e *Entry, line []byte) error) error {
	var segs []string
	err := store.List(ctx, "ledger/"+id+"/", func(i objstore.Info) error {
		segs = append(segs, i.Key)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ledger: list segments: %w", err)
	}
	for _, key := range segs {
		msg, err := getAll(ctx, store, key)
		if err != nil {
			return fmt.Errorf("ledger: read %s: %w", key, err)
		}
		text, ok := splitNote(msg)
		if !ok {
			text = msg
		}
		for len(text) > 0 {
			i := indexByte(text, '\n')
			if i < 0 {
				i = len(text)
			}
			line := text[:i]
			text = text[min(i+1, len(text)):]
			if e, err := ParseEntry(line); err == nil {
				if err := fn(e, line); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
