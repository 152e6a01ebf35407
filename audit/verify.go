package audit

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Damage is the kind of a problem Verify found.
type Damage string

// Kinds of damage.
const (
	// DamageEdited: an entry's bytes do not match the hash recorded with
	// them, or differ from the other copy where that copy matches a signed
	// checkpoint.
	DamageEdited Damage = "edited"
	// DamageMissing: a seq is absent (deleted, or cut off below a signed
	// checkpoint's size).
	DamageMissing Damage = "missing"
	// DamageReordered: an entry is stored after a later seq.
	DamageReordered Damage = "reordered"
	// DamageInserted: an entry claims a seq that another entry holds, and
	// the chain continues from the other one.
	DamageInserted Damage = "inserted"
	// DamageBrokenLink: an entry's prev is not its predecessor's hash, and
	// nothing else explains it (one of the two was rewritten with a fresh
	// hash; the object-store copy, if any, says which).
	DamageBrokenLink Damage = "broken-link"
	// DamageMalformed: stored bytes that do not parse as an entry.
	DamageMalformed Damage = "malformed"
	// DamageCheckpoint: a checkpoint with a bad signature, a foreign origin,
	// or a root that the entries do not reproduce.
	DamageCheckpoint Damage = "checkpoint"
	// DamageSegment: a segment whose name does not match its content.
	DamageSegment Damage = "segment"
)

// Problem is one finding of Verify.
type Problem struct {
	Seq    Seq    // the entry concerned (first of a range), 0 if none
	Kind   Damage //
	Where  string // "sqlite", or the object key of a segment or checkpoint
	Detail string
}

func (p Problem) String() string {
	return fmt.Sprintf("seq %d: %s in %s: %s", p.Seq, p.Kind, p.Where, p.Detail)
}

// Report is the result of Verify.
type Report struct {
	Entries     Seq // highest seq in the database
	Sealed      Seq // highest seq in the segments
	Segments    int
	Checkpoints int // checkpoints whose signature verified
	Checkpoint  Seq // size of the largest verified checkpoint
	Problems    []Problem
}

// OK reports whether Verify found no problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// VerifyOptions say what Verify checks.
type VerifyOptions struct {
	Path   string         // the audit database, opened read-only
	Origin string         // the chain's checkpoint origin
	Store  objstore.Store // segments and checkpoints; nil checks the database alone
	// Verifiers check checkpoint signatures (the archive's ed25519 note
	// verifier). Required with Store.
	Verifiers []note.Verifier
}

// Verify checks the audit chain in the database and, with a Store, its
// segments and signed checkpoints, and names every problem it finds (seq,
// kind, where). The error is for failures to read, not for damage. It holds
// about 200 bytes per entry in memory.
func Verify(ctx context.Context, o VerifyOptions) (*Report, error) {
	if o.Path == "" || o.Origin == "" {
		return nil, errors.New("audit: verify: Path and Origin are required")
	}
	if o.Store != nil && len(o.Verifiers) == 0 {
		return nil, errors.New("audit: verify: Verifiers are required with Store")
	}
	r := &Report{}
	add := func(p Problem) { r.Problems = append(r.Problems, p) }

	// Checkpoints first: their sizes say how far each copy must reach.
	var cps []Checkpoint
	if o.Store != nil {
		var err error
		cps, err = loadCheckpoints(ctx, o, r, add)
		if err != nil {
			return nil, err
		}
	}
	want := r.Checkpoint

	db, err := sql.Open("sqlite3", dsn(o.Path, true))
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer db.Close()
	var origin string
	if err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key='origin'`).Scan(&origin); err != nil {
		return nil, fmt.Errorf("audit: verify: %s: %w", o.Path, err)
	}
	if origin != o.Origin {
		return nil, fmt.Errorf("audit: verify: %s belongs to origin %q, not %q", o.Path, origin, o.Origin)
	}
	dbEntries, err := loadDB(ctx, db, add)
	if err != nil {
		return nil, err
	}
	dbChain := analyze("sqlite", dbEntries, want, add)
	r.Entries = dbChain.max

	var segChain *chain
	if o.Store != nil {
		segEntries, n, err := loadSegments(ctx, o, add)
		if err != nil {
			return nil, err
		}
		r.Segments = n
		segChain = analyze("segments", segEntries, want, add)
		r.Sealed = segChain.max
	}

	// Merkle roots of each copy against every checkpoint.
	dbOK := checkRoots("sqlite", dbChain, cps, add)
	if segChain == nil {
		return r, nil
	}
	segOK := checkRoots("segments", segChain, cps, add)

	// Compare the copies entry by entry; the one that matches the signed
	// checkpoints is the witness.
	for seq, d := range dbChain.genuine {
		s, ok := segChain.genuine[seq]
		if !ok || d.hash == s.hash {
			continue
		}
		switch {
		case segOK >= seq && dbOK < seq:
			add(Problem{seq, DamageEdited, "sqlite", "differs from the sealed segment, which matches the signed checkpoint"})
		case dbOK >= seq && segOK < seq:
			add(Problem{seq, DamageEdited, s.where, "differs from the database entry, which matches the signed checkpoint"})
		default:
			add(Problem{seq, DamageEdited, "sqlite", "differs from the sealed segment " + s.where})
		}
	}
	slices.SortStableFunc(r.Problems, func(a, b Problem) int {
		if a.Seq != b.Seq {
			if a.Seq < b.Seq {
				return -1
			}
			return 1
		}
		return strings.Compare(string(a.Kind), string(b.Kind))
	})
	return r, nil
}

// vEntry is what Verify keeps of one stored entry.
type vEntry struct {
	pos   int
	seq   Seq
	prev  Hash
	hash  Hash // SHA-256 of the bytes
	link  Hash // the hash recorded with the bytes (what a successor links to)
	leaf  Hash // RFC 9162 leaf hash of the bytes
	where string
}

func newVEntry(pos int, b []byte, recorded Hash, where string) (vEntry, error) {
	e, err := ParseEntry(b)
	if err != nil {
		return vEntry{}, err
	}
	var leaf Hash
	copy(leaf[:], hasher.HashLeaf(b))
	return vEntry{pos: pos, seq: e.Seq, prev: e.Prev, hash: e.Hash, link: recorded, leaf: leaf, where: where}, nil
}

func loadDB(ctx context.Context, db *sql.DB, add func(Problem)) ([]vEntry, error) {
	rows, err := db.QueryContext(ctx, `SELECT seq, hash, body FROM events ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: %w", err)
	}
	defer rows.Close()
	var out []vEntry
	for rows.Next() {
		var seq int64
		var hash, body []byte
		if err := rows.Scan(&seq, &hash, &body); err != nil {
			return nil, fmt.Errorf("audit: verify: %w", err)
		}
		var rec Hash
		copy(rec[:], hash)
		e, err := newVEntry(len(out), body, rec, "sqlite")
		if err != nil {
			add(Problem{Seq(seq), DamageMalformed, "sqlite", err.Error()})
			continue
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func loadSegments(ctx context.Context, o VerifyOptions, add func(Problem)) ([]vEntry, int, error) {
	prefix := fmt.Sprintf("audit/%s/", OriginKey(o.Origin))
	var keys []string
	err := o.Store.List(ctx, prefix, func(i objstore.Info) error {
		if strings.HasSuffix(i.Key, ".seg") && !strings.Contains(i.Key[len(prefix):], "/") {
			keys = append(keys, i.Key)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("audit: verify: list %s: %w", prefix, err)
	}
	var out []vEntry
	for _, key := range keys {
		first, err := strconv.ParseUint(strings.TrimSuffix(key[len(prefix):], ".seg"), 10, 64)
		if err != nil {
			add(Problem{0, DamageSegment, key, "name is not a 20-digit first seq"})
			continue
		}
		data, err := getAll(ctx, o.Store, key)
		if err != nil {
			return nil, 0, fmt.Errorf("audit: verify: %s: %w", key, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 64<<20)
		i := 0
		for ; sc.Scan(); i++ {
			guess := Seq(first) + Seq(i)
			e, perr := ParseLine(sc.Bytes())
			if perr != nil && !errors.Is(perr, ErrHashMismatch) {
				add(Problem{guess, DamageMalformed, key, perr.Error()})
				continue
			}
			v, _ := newVEntry(len(out), e.Bytes, e.Hash, key)
			if i == 0 && v.seq != Seq(first) {
				add(Problem{v.seq, DamageSegment, key, fmt.Sprintf("named for seq %d but starts at seq %d", first, v.seq)})
			}
			out = append(out, v)
		}
		if len(data) > 0 && data[len(data)-1] != '\n' {
			add(Problem{Seq(first) + Seq(i) - 1, DamageSegment, key, "does not end with a newline (truncated)"})
		}
	}
	return out, len(keys), nil
}

func loadCheckpoints(ctx context.Context, o VerifyOptions, r *Report, add func(Problem)) ([]Checkpoint, error) {
	prefix := fmt.Sprintf("audit/%s/checkpoint/", OriginKey(o.Origin))
	var keys []string
	if err := o.Store.List(ctx, prefix, func(i objstore.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("audit: verify: list %s: %w", prefix, err)
	}
	var cps []Checkpoint
	for _, key := range keys {
		data, err := getAll(ctx, o.Store, key)
		if err != nil {
			return nil, fmt.Errorf("audit: verify: %s: %w", key, err)
		}
		cp, err := OpenCheckpoint(data, o.Verifiers...)
		if err != nil {
			add(Problem{0, DamageCheckpoint, key, err.Error()})
			continue
		}
		if cp.Origin != o.Origin {
			add(Problem{cp.Size, DamageCheckpoint, key, fmt.Sprintf("origin %q", cp.Origin)})
			continue
		}
		if key != CheckpointKey(o.Origin, cp.Size) {
			add(Problem{cp.Size, DamageCheckpoint, key, "name does not match its size"})
			continue
		}
		cps = append(cps, cp)
		r.Checkpoints++
		r.Checkpoint = max(r.Checkpoint, cp.Size)
	}
	slices.SortFunc(cps, func(a, b Checkpoint) int { return int(a.Size) - int(b.Size) })
	return cps, nil
}

// chain is one copy's entries after analysis.
type chain struct {
	genuine map[Seq]*vEntry // the entry that belongs to the chain, per seq
	max     Seq
}

// analyze finds edits, gaps, duplicates, reordering and broken links in one
// copy (entries in stored order). want is the size it must reach (the
// largest signed checkpoint).
func analyze(where string, es []vEntry, want Seq, add func(Problem)) *chain {
	c := &chain{genuine: make(map[Seq]*vEntry, len(es))}
	bySeq := make(map[Seq][]*vEntry, len(es))
	for i := range es {
		e := &es[i]
		bySeq[e.seq] = append(bySeq[e.seq], e)
		c.max = max(c.max, e.seq)
		if e.hash != e.link {
			add(Problem{e.seq, DamageEdited, e.where, "stored bytes do not match the hash recorded with them"})
		}
	}
	// Which prev values are linked to, per seq: the successor decides which
	// of two entries claiming one seq is genuine.
	linkedBy := make(map[Hash]bool, len(es))
	for i := range es {
		linkedBy[es[i].prev] = true
	}
	for seq, cands := range bySeq {
		g := cands[0]
		if len(cands) > 1 {
			for _, e := range cands {
				if linkedBy[e.link] {
					g = e
					break
				}
			}
			for _, e := range cands {
				if e != g {
					add(Problem{seq, DamageInserted, e.where, fmt.Sprintf("a second entry claims seq %d (stored at position %d); the chain continues from the other", seq, e.pos+1)})
				}
			}
		}
		c.genuine[seq] = g
	}
	// Gaps, including a cut tail below the signed size.
	top := max(c.max, want)
	for s := Seq(1); s <= top; s++ {
		if _, ok := c.genuine[s]; ok {
			continue
		}
		end := s
		for end+1 <= top && c.genuine[end+1] == nil {
			end++
		}
		d := "deleted"
		if end > c.max {
			d = fmt.Sprintf("cut off: a signed checkpoint covers up to seq %d", want)
		}
		if end > s {
			d = fmt.Sprintf("seqs %d..%d %s", s, end, d)
		}
		add(Problem{s, DamageMissing, where, d})
		s = end
	}
	// Order: every genuine entry after a higher seq is out of place.
	var maxSeen Seq
	for i := range es {
		e := &es[i]
		if c.genuine[e.seq] != e {
			continue
		}
		if e.seq < maxSeen {
			add(Problem{e.seq, DamageReordered, e.where, fmt.Sprintf("stored after seq %d", maxSeen)})
		}
		maxSeen = max(maxSeen, e.seq)
	}
	// Links.
	for seq, e := range c.genuine {
		if seq == 1 {
			if !e.prev.IsZero() {
				add(Problem{seq, DamageBrokenLink, e.where, "first entry has a non-zero prev"})
			}
			continue
		}
		p, ok := c.genuine[seq-1]
		if ok && p.link != e.prev {
			add(Problem{seq, DamageBrokenLink, e.where, fmt.Sprintf("prev is not the hash of seq %d: one of the two was rewritten", seq-1)})
		}
	}
	return c
}

// checkRoots recomputes the Merkle root of the copy at every checkpoint
// size and returns the largest size whose root matched (0 if none).
func checkRoots(where string, c *chain, cps []Checkpoint, add func(Problem)) Seq {
	rng := rangeFactory.NewEmptyRange(0)
	var ok Seq
	next := Seq(1)
	for _, cp := range cps {
		for ; next <= cp.Size; next++ {
			e := c.genuine[next]
			if e == nil {
				break
			}
			rng.Append(e.leaf[:], nil)
		}
		if rng.End() != uint64(cp.Size) {
			add(Problem{cp.Size, DamageCheckpoint, where, fmt.Sprintf("cannot reproduce the checkpoint of size %d: entries missing", cp.Size)})
			break
		}
		root, _ := rng.GetRootHash(nil)
		if !bytes.Equal(root, cp.Root[:]) {
			add(Problem{cp.Size, DamageCheckpoint, where, fmt.Sprintf("entries 1..%d do not reproduce the signed root", cp.Size)})
			break
		}
		ok = cp.Size
	}
	return ok
}
