package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/crypto"
)

// Problem kinds found by Verify beyond the ledger's own (ledger.Problem*).
const (
	ProblemObjectMissing  = "object-missing"  // a message object named by the ledger is gone
	ProblemObjectAltered  = "object-altered"  // its bytes no longer hash to the ledger's object_sha256
	ProblemObjectReplaced = "object-replaced" // it was replaced by another message's object
	ProblemKeyMissing     = "key-missing"     // a key object is gone: the message is unreadable
	ProblemKeyAltered     = "key-altered"     // a key object does not open (edited, or moved from another message)
	ProblemContent        = "content"         // --full: the decrypted bytes do not match the ledger's content commitment
	ProblemEnvelope       = "envelope"        // an envelope does not open or does not match its commitment
	ProblemEvidence       = "evidence"        // an evidence object is missing or altered
	ProblemIndexMissing   = "index-missing"   // the index lacks a ledger entry or its row
	ProblemIndexExtra     = "index-extra"     // the index holds an entry the ledger does not
	ProblemIndexAltered   = "index-altered"   // an index row differs from the ledger or fails its MAC
	ProblemErasure        = "erasure"         // a disposed or erased message's key object still exists
	WarningOrphan         = "orphan"          // an object no entry references (an interrupted write, or added by hand)
	WarningUncovered      = ledger.ProblemUncovered
	WarningUnindexed      = "unindexed" // entries the archive's writer had not listed in the index yet
	InfoDisposed          = "disposed"
)

// VerifyOptions select what Verify does.
type VerifyOptions struct {
	// Full also decrypts every message and checks its content commitment
	// and every envelope commitment.
	Full bool
	// Orphans lists the object store to find unreferenced objects.
	Orphans bool
	// Workers reading objects in parallel; default 4.
	Workers int
	// Progress is called now and then with entries checked so far and the
	// total expected.
	Progress func(done, total uint64)
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Problems []ledger.Problem // each one makes the archive fail verification
	Warnings []ledger.Problem // worth knowing, not damage
	Disposed []ledger.Problem // messages disposed or erased on purpose

	Entries     uint64
	Messages    uint64
	Deliveries  uint64
	Bytes       int64 // object bytes read
	Checkpoints int
	Latest      ledger.Checkpoint
}

// OK reports whether no problem was found.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

type tombstone struct {
	kind   string
	fields map[string]string
}

// Verify checks the archive: the ledger (segment signatures, sequence, hash
// chain, checkpoints), every object and key object the ledger names (present,
// hashing to what the ledger recorded), and the index against the ledger
// (every entry, every row's fields and MAC). With Full it also decrypts every
// message. It works on a store opened read-only, while another process
// archives; entries committed during the run may show as uncovered.
func (s *Store) Verify(ctx context.Context, opts VerifyOptions) (*VerifyReport, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	rep := &VerifyReport{}
	var mu sync.Mutex
	problem := func(p ledger.Problem) {
		mu.Lock()
		rep.Problems = append(rep.Problems, p)
		mu.Unlock()
	}
	total, _, _, _ := s.index.Counts(ctx)
	progress := func(n uint64) {
		if opts.Progress != nil {
			opts.Progress(n, uint64(max(total, int64(n))))
		}
	}

	// The index keeps a copy of the newest checkpoint this node published.
	var indexCkpt *ledger.Checkpoint
	var indexCkptErr error
	if signed, err := s.index.Meta(ctx, "checkpoint"); err == nil {
		c, err := ledger.OpenCheckpoint(signed, s.opts.Signing.Verifier)
		indexCkpt, indexCkptErr = &c, err
	}
	var rootsAt []uint64
	if indexCkpt != nil && indexCkptErr == nil {
		rootsAt = append(rootsAt, indexCkpt.Size)
	}

	// The index lists an entry a few milliseconds after the ledger commits
	// it (archive.Options.IndexWait). Entries from the index's position on
	// are checked against the ledger and the object store, not against an
	// index that may not list them yet: this store's own commits are
	// indexed first; another process's (a read-only store while serve
	// runs) may be under way.
	if !s.opts.ReadOnly && s.queue != nil {
		s.commitMu.Lock()
		s.indexWG.Wait()
		s.commitMu.Unlock()
	}
	indexed, err := s.index.LedgerState()
	if err != nil {
		return rep, err
	}
	var unindexedFrom uint64 = math.MaxUint64
	// Pass 1: the ledger itself, and the index against it.
	seen := newBitset()
	tombs := make(map[uint64]tombstone)
	badSegments := make(map[string]bool)
	win := &indexWindow{ix: s.index}
	lres, err := ledger.Verify(ctx, s.objs, s.opts.LogID, s.opts.Signing.Verifier, func(e *ledger.Entry, line []byte) error {
		seen.set(e.Seq)
		if e.Kind == ledger.KindDispose || e.Kind == ledger.KindErase {
			if e.Ref != nil {
				t := tombstone{kind: e.Kind}
				if e.Event != nil {
					t.fields = e.Event.Fields
				}
				tombs[*e.Ref] = t
			}
		}
		if e.Seq >= indexed.Size {
			unindexedFrom = min(unindexedFrom, e.Seq)
			return nil
		}
		s.checkIndexEntry(ctx, win, e, line, problem)
		return nil
	}, func(p ledger.Problem) {
		if p.Kind == ledger.ProblemSegmentSignature {
			badSegments[p.Key] = true
		}
		problem(p)
	}, rootsAt...)
	if err != nil {
		return rep, err
	}
	rep.Entries, rep.Checkpoints, rep.Latest = lres.Size, lres.Checkpoints, lres.Latest
	// The store must still hold the checkpoint the index knows, and the
	// ledger must still match it.
	if indexCkpt != nil {
		c := *indexCkpt
		switch {
		case indexCkptErr != nil:
			problem(ledger.Problem{Seq: -1, Kind: ledger.ProblemCheckpointSignature, Detail: "the index's copy of the latest checkpoint does not verify: " + indexCkptErr.Error()})
		case c.Size > lres.Size:
			problem(ledger.Problem{Seq: int64(lres.Size), Kind: ledger.ProblemTruncated, Detail: fmt.Sprintf("this node published a checkpoint of %d entries, the ledger holds %d: entries were removed from its end", c.Size, lres.Size)})
		default:
			if c.Size > lres.Latest.Size || lres.Checkpoints == 0 {
				problem(ledger.Problem{Seq: -1, Key: ledger.CheckpointKey(s.opts.LogID, c.Size), Kind: ledger.ProblemCheckpointMissing, Detail: fmt.Sprintf("the checkpoint of %d entries this node published is gone from the object store", c.Size)})
			}
			if root, ok := lres.Roots[c.Size]; ok && root != c.Root {
				problem(ledger.Problem{Seq: -1, Kind: ledger.ProblemCheckpointRoot, Detail: fmt.Sprintf("the ledger's first %d entries no longer hash to the root this node signed", c.Size)})
			}
		}
	}
	if lres.Latest.Size < lres.Size {
		rep.Warnings = append(rep.Warnings, ledger.Problem{Seq: int64(lres.Latest.Size), Kind: WarningUncovered,
			Detail: fmt.Sprintf("entries %d to %d are not yet covered by a signed checkpoint (a running archive publishes one every few seconds)", lres.Latest.Size, lres.Size-1)})
	}

	if unindexedFrom < lres.Size {
		rep.Warnings = append(rep.Warnings, ledger.Problem{Seq: int64(unindexedFrom), Kind: WarningUnindexed,
			Detail: fmt.Sprintf("entries %d to %d were not in the index when verify began (the archive's writer lists new entries within milliseconds; a restart replays them): checked against the ledger and the object store only", unindexedFrom, lres.Size-1)})
	}

	// Index rows the ledger does not hold, and rows whose MAC fails. With
	// another process writing, entries it committed after the ledger was
	// read are not extra.
	// They are read beside pass 2, on the core its workers leave.
	scanned := make(chan error, 1)
	go func() { scanned <- s.checkIndexRows(ctx, lres.Size, seen, problem) }()

	// Pass 2: objects, in parallel.
	type job struct {
		e *ledger.Entry
	}
	jobs := make(chan job, opts.Workers*4)
	var wg sync.WaitGroup
	var done uint64
	for w := 0; w < opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				n := s.checkObjects(ctx, j.e, tombs, opts.Full, problem)
				mu.Lock()
				rep.Bytes += n
				done++
				d := done
				mu.Unlock()
				if d%1000 == 0 {
					progress(d)
				}
			}
		}()
	}
	err = ledger.Scan(ctx, s.objs, s.opts.LogID, func(e *ledger.Entry, line []byte) error {
		switch e.Kind {
		case ledger.KindMessage:
			rep.Messages++
			rep.Deliveries++
		case ledger.KindDelivery:
			rep.Deliveries++
		}
		if e.Kind == ledger.KindMessage || (opts.Full && e.Kind == ledger.KindDelivery) {
			select {
			case jobs <- job{e}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	close(jobs)
	wg.Wait()
	if serr := <-scanned; err == nil {
		err = serr
	}
	if err != nil {
		return rep, err
	}
	progress(done)
	for seq, t := range tombs {
		why := t.fields["policy"]
		if why == "" {
			why = t.fields["reason"]
		}
		rep.Disposed = append(rep.Disposed, ledger.Problem{Seq: int64(seq), Kind: InfoDisposed,
			Detail: fmt.Sprintf("%s (%s) %s", map[string]string{ledger.KindDispose: "disposed", ledger.KindErase: "erased"}[t.kind], why, t.fields["at"])})
	}
	if opts.Orphans {
		if err := s.findOrphans(ctx, rep); err != nil {
			return rep, err
		}
	}
	sortProblems(rep.Problems)
	sortProblems(rep.Warnings)
	sortProblems(rep.Disposed)
	return rep, nil
}

// checkIndexRows reports index rows the ledger does not hold (entries at or
// past ledgerSize are another writer's, when read-only) and rows whose MAC
// fails.
func (s *Store) checkIndexRows(ctx context.Context, ledgerSize uint64, seen *bitset, problem func(ledger.Problem)) error {
	err := s.index.EachEntry(ctx, func(seq uint64, line []byte) error {
		if s.opts.ReadOnly && seq >= ledgerSize {
			return nil
		}
		if !seen.has(seq) {
			problem(ledger.Problem{Seq: int64(seq), Kind: ProblemIndexExtra, Detail: "the index holds this entry but the ledger does not: it was removed from the ledger, or forged in the index"})
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = s.index.EachMessage(ctx, func(m *index.MessageRow, macOK bool) error {
		if !macOK {
			problem(ledger.Problem{Seq: int64(m.Seq), Kind: ProblemIndexAltered, Detail: "the index row of this message was edited outside Cairn (its MAC does not verify); run `cairn reindex`"})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.index.EachDelivery(ctx, func(d *index.DeliveryRow, macOK bool) error {
		if !macOK {
			problem(ledger.Problem{Seq: int64(d.Seq), Kind: ProblemIndexAltered, Detail: "the index row of this delivery was edited outside Cairn (its MAC does not verify); run `cairn reindex`"})
		}
		return nil
	})
}

// indexWindow holds the index's copies of a run of ledger entries, their
// lines and message rows, each read with one range query: two point
// queries an entry took a fifth of verify's time.
type indexWindow struct {
	ix       *index.Index
	from, to uint64
	lines    map[uint64][]byte
	msgs     map[uint64]*index.MessageRow
	err      error
}

// indexWindowSize is the entries a window covers (a variable for tests).
var indexWindowSize uint64 = 1024

// at makes the window cover seq.
func (w *indexWindow) at(ctx context.Context, seq uint64) error {
	if w.lines != nil && seq >= w.from && seq < w.to {
		return w.err
	}
	w.from, w.to = seq, seq+min(indexWindowSize, math.MaxUint64-seq)
	w.lines = make(map[uint64][]byte, indexWindowSize)
	w.msgs = make(map[uint64]*index.MessageRow, indexWindowSize)
	w.err = w.ix.EntriesIn(ctx, w.from, w.to, func(seq uint64, line []byte) error { w.lines[seq] = line; return nil })
	if w.err == nil {
		w.err = w.ix.MessagesIn(ctx, w.from, w.to, func(m *index.MessageRow) error { w.msgs[m.Seq] = m; return nil })
	}
	return w.err
}

// checkIndexEntry compares one ledger entry with the index's copy.
func (s *Store) checkIndexEntry(ctx context.Context, win *indexWindow, e *ledger.Entry, line []byte, problem func(ledger.Problem)) {
	if err := win.at(ctx, e.Seq); err != nil {
		problem(ledger.Problem{Seq: int64(e.Seq), Kind: ProblemIndexMissing, Detail: err.Error()})
		return
	}
	got, ok := win.lines[e.Seq]
	switch {
	case !ok:
		problem(ledger.Problem{Seq: int64(e.Seq), Kind: ProblemIndexMissing, Detail: "the index lacks this ledger entry; run `cairn reindex`"})
		return
	case !bytes.Equal(got, line):
		problem(ledger.Problem{Seq: int64(e.Seq), Kind: ProblemIndexAltered, Detail: "the ledger's entry and the index's copy differ: one of them was edited (a segment signature failure above says which)"})
	}
	if e.Kind != ledger.KindMessage || e.Message == nil {
		return
	}
	m, ok := win.msgs[e.Seq]
	if !ok {
		problem(ledger.Problem{Seq: int64(e.Seq), Kind: ProblemIndexMissing, Detail: "the index has no row for this message; run `cairn reindex`"})
		return
	}
	var diffs []string
	if m.Object != e.Message.Object {
		diffs = append(diffs, "object")
	}
	if m.KeyObject != e.Message.KeyObject {
		diffs = append(diffs, "key_object")
	}
	if hex.EncodeToString(m.ObjectSHA256[:]) != e.Message.ObjectSHA256 {
		diffs = append(diffs, "object_sha256")
	}
	if m.ObjectSize != e.Message.ObjectSize {
		diffs = append(diffs, "object_size")
	}
	if m.Size != e.Message.Size {
		diffs = append(diffs, "size")
	}
	if len(diffs) > 0 {
		problem(ledger.Problem{Seq: int64(e.Seq), Kind: ProblemIndexAltered, Detail: fmt.Sprintf("the index row differs from the ledger in %v", diffs)})
	}
}

// checkObjects verifies the objects of a message entry (and, with full,
// the envelope of a delivery entry). It returns the bytes read.
func (s *Store) checkObjects(ctx context.Context, e *ledger.Entry, tombs map[uint64]tombstone, full bool, problem func(ledger.Problem)) int64 {
	seq := int64(e.Seq)
	if e.Kind == ledger.KindDelivery {
		if e.Ref == nil || e.Delivery == nil {
			return 0
		}
		if _, gone := tombs[*e.Ref]; gone {
			return 0
		}
		m, err := s.index.Message(ctx, *e.Ref)
		if err != nil {
			return 0 // reported by pass 1
		}
		mk, err := s.messageKey(ctx, m)
		if err != nil {
			return 0 // reported with the message entry
		}
		s.checkDelivery(ctx, seq, e.Delivery, mk, problem)
		return 0
	}
	msg := e.Message
	if msg == nil {
		return 0
	}
	if t, gone := tombs[e.Seq]; gone {
		if _, err := s.objs.Stat(ctx, msg.KeyObject); err == nil {
			problem(ledger.Problem{Seq: seq, Key: msg.KeyObject, Kind: ProblemErasure, Detail: fmt.Sprintf("the message was %sd, but its key object still exists", t.kind)})
		}
		return 0
	}
	var n int64
	objSHA, size, err := hashObject(ctx, s.objs, msg.Object)
	switch {
	case errors.Is(err, objstore.ErrNotExist):
		problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemObjectMissing, Detail: "the message object is gone"})
	case err != nil:
		problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemObjectMissing, Detail: err.Error()})
	case hex.EncodeToString(objSHA[:]) != msg.ObjectSHA256 || size != msg.ObjectSize:
		n = size
		detail := "the message object's bytes changed (its SHA-256 no longer matches the ledger)"
		if other, err := s.index.MessageByObjectSHA(ctx, objSHA); err == nil && other != e.Seq {
			problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemObjectReplaced, Detail: fmt.Sprintf("the message object was replaced by the object of message %d", other)})
		} else {
			problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemObjectAltered, Detail: detail})
		}
	default:
		n = size
	}
	b, err := readSmall(ctx, s.objs, msg.KeyObject, crypto.KeyObjectSize)
	if errors.Is(err, objstore.ErrNotExist) {
		problem(ledger.Problem{Seq: seq, Key: msg.KeyObject, Kind: ProblemKeyMissing, Detail: "the key object is gone and no dispose or erase entry explains it: the message can no longer be read"})
		return n
	}
	if err != nil {
		problem(ledger.Problem{Seq: seq, Key: msg.KeyObject, Kind: ProblemKeyMissing, Detail: err.Error()})
		return n
	}
	mk, err := s.keys.UnwrapMessageKey(b, msg.Object)
	if err != nil {
		problem(ledger.Problem{Seq: seq, Key: msg.KeyObject, Kind: ProblemKeyAltered, Detail: err.Error()})
		return n
	}
	if e.Delivery != nil {
		s.checkDelivery(ctx, seq, e.Delivery, mk, problem)
	}
	if !full {
		return n
	}
	m := &index.MessageRow{Seq: e.Seq, Object: msg.Object, ObjectSize: msg.ObjectSize}
	rd, closer, err := s.openPayload(ctx, m, mk)
	if err != nil {
		problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemContent, Detail: "the message does not decrypt: " + err.Error()})
		return n
	}
	defer closer.Close()
	h := sha256.New()
	commit := sha256.New()
	commit.Write(mk.Salt[:])
	if _, err := rd.WriteTo(io.MultiWriter(h, commit)); err != nil {
		problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemContent, Detail: "the message does not decrypt: " + err.Error()})
		return n
	}
	if hex.EncodeToString(commit.Sum(nil)) != msg.Content || rd.Size() != msg.Size {
		problem(ledger.Problem{Seq: seq, Key: msg.Object, Kind: ProblemContent, Detail: "the decrypted message does not match the ledger's content commitment"})
	}
	// A row without its SHA-256 holds bytes an earlier message also holds
	// (the index keeps the hash on the first one).
	if row, err := s.index.Message(ctx, e.Seq); err == nil && row.SHA256 != ([32]byte{}) && !bytes.Equal(row.SHA256[:], h.Sum(nil)) {
		problem(ledger.Problem{Seq: seq, Kind: ProblemIndexAltered, Detail: "the index's SHA-256 of this message differs from its decrypted bytes"})
	}
	return n
}

func (s *Store) checkDelivery(ctx context.Context, seq int64, d *ledger.Delivery, mk *crypto.MessageKey, problem func(ledger.Problem)) {
	sealed, err := base64.StdEncoding.DecodeString(d.Envelope)
	var env []byte
	if err == nil {
		env, err = mk.Open("envelope", sealed)
	}
	if err != nil {
		problem(ledger.Problem{Seq: seq, Kind: ProblemEnvelope, Detail: "the sealed envelope does not open"})
	} else if c := mk.Commit(env); hex.EncodeToString(c[:]) != d.EnvelopeCommit {
		problem(ledger.Problem{Seq: seq, Kind: ProblemEnvelope, Detail: "the envelope does not match its commitment"})
	}
	if d.Evidence != "" {
		h, _, err := hashObject(ctx, s.objs, d.Evidence)
		if err != nil {
			problem(ledger.Problem{Seq: seq, Key: d.Evidence, Kind: ProblemEvidence, Detail: "evidence object: " + err.Error()})
		} else if hex.EncodeToString(h[:]) != d.EvidenceSHA256 {
			problem(ledger.Problem{Seq: seq, Key: d.Evidence, Kind: ProblemEvidence, Detail: "the evidence object's bytes changed"})
		}
	}
}

func hashObject(ctx context.Context, objs objstore.Store, key string) ([32]byte, int64, error) {
	var sum [32]byte
	rc, err := objs.Get(ctx, key)
	if err != nil {
		return sum, 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return sum, n, err
	}
	h.Sum(sum[:0])
	return sum, n, nil
}

// findOrphans lists message, key and evidence objects that no index row
// references: a merge of two sorted streams, the store's listing and the
// index's references.
func (s *Store) findOrphans(ctx context.Context, rep *VerifyReport) error {
	refs := make(chan string, 1024)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(refs)
		errc <- s.index.EachReferencedObject(ctx, func(k string) error {
			select {
			case refs <- k:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	next, more := <-refs
	for _, prefix := range []string{"evidence/", "keys/", "messages/"} {
		err := s.objs.List(ctx, prefix, func(i objstore.Info) error {
			for more && next < i.Key {
				next, more = <-refs
			}
			if more && next == i.Key {
				return nil
			}
			rep.Warnings = append(rep.Warnings, ledger.Problem{Seq: -1, Key: i.Key, Kind: WarningOrphan,
				Detail: "no entry references this object: left by a write that never committed, or added by hand"})
			return nil
		})
		if err != nil {
			return err
		}
	}
	cancel()
	for range refs {
	}
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// bitset records which sequence numbers the ledger holds.
type bitset struct{ w []uint64 }

func newBitset() *bitset { return &bitset{} }
func (b *bitset) set(i uint64) {
	for uint64(len(b.w)) <= i/64 {
		b.w = append(b.w, 0)
	}
	b.w[i/64] |= 1 << (i % 64)
}
func (b *bitset) has(i uint64) bool { return i/64 < uint64(len(b.w)) && b.w[i/64]&(1<<(i%64)) != 0 }
