package export

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
)

// prover computes RFC 9162 inclusion proofs for a set of entries against a
// tree of size n, from the index's leaf hashes, in one streaming pass: it
// first collects the node ids the proofs need (proof.Inclusion), then
// appends every leaf to a compact range, keeping the hashes of those nodes
// as the range computes them. Memory is the needed nodes (a few dozen per
// exported entry, fewer where proofs share them), never the tree.
type prover struct {
	size  uint64
	nodes map[compact.NodeID][]byte
}

func newProver(size uint64) *prover {
	return &prover{size: size, nodes: make(map[compact.NodeID][]byte)}
}

// need registers the entry at leaf index seq.
func (p *prover) need(seq uint64) error {
	n, err := proof.Inclusion(seq, p.size)
	if err != nil {
		return fmt.Errorf("export: proof of entry %d: %w", seq, err)
	}
	for _, id := range n.IDs {
		p.nodes[id] = nil
	}
	return nil
}

// build reads the leaves [0, size) from the index, fills the needed nodes
// and checks that the leaves hash to root: the index's copy of the ledger
// is the ledger the checkpoint signs. progress is called now and then.
func (p *prover) build(ctx context.Context, ix *index.Index, root ledger.Hash, progress func(done uint64)) error {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	visit := func(id compact.NodeID, hash []byte) {
		if h, ok := p.nodes[id]; ok && h == nil {
			p.nodes[id] = bytes.Clone(hash)
		}
	}
	var next uint64
	err := ix.EachLeaf(ctx, p.size, func(seq uint64, leaf []byte) error {
		if seq != next {
			return fmt.Errorf("export: the index lacks ledger entry %d (run cairn verify, then cairn reindex)", next)
		}
		if len(leaf) != 32 {
			return fmt.Errorf("export: the index's leaf hash of entry %d is %d bytes", seq, len(leaf))
		}
		next++
		if next%65536 == 0 && progress != nil {
			progress(next)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return rng.Append(leaf, visit)
	})
	if err != nil {
		return err
	}
	if next != p.size {
		return fmt.Errorf("export: the index holds %d ledger entries, the checkpoint covers %d", next, p.size)
	}
	if progress != nil {
		progress(next)
	}
	got := rfc6962.DefaultHasher.EmptyRoot()
	if p.size > 0 {
		if got, err = rng.GetRootHash(nil); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if !bytes.Equal(got, root[:]) {
		return fmt.Errorf("export: the index's copy of the ledger does not hash to the signed checkpoint's root (run cairn verify)")
	}
	for id, h := range p.nodes {
		if h == nil {
			return fmt.Errorf("export: node %v of a proof was not computed", id)
		}
	}
	return nil
}

// proof returns the inclusion proof of leaf seq, hex hashes from the leaf
// up, after checking it against root.
func (p *prover) proof(seq uint64, leaf, root ledger.Hash) ([]string, error) {
	n, err := proof.Inclusion(seq, p.size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(n.IDs))
	for i, id := range n.IDs {
		h, ok := p.nodes[id]
		if !ok || h == nil {
			return nil, fmt.Errorf("export: proof of entry %d: node %v not computed", seq, id)
		}
		hashes[i] = h
	}
	path, err := n.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		return nil, fmt.Errorf("export: proof of entry %d: %w", seq, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, seq, p.size, leaf[:], path, root[:]); err != nil {
		return nil, fmt.Errorf("export: proof of entry %d does not verify: %w", seq, err)
	}
	out := make([]string, len(path))
	for i, h := range path {
		out[i] = hex.EncodeToString(h)
	}
	return out, nil
}

// waitIndexed waits until the index holds entry size-1, so that it holds
// every entry a checkpoint of size covers (the index commits after the
// ledger segment, in order).
func waitIndexed(ctx context.Context, st *archive.Store, size uint64, limit time.Duration) error {
	if size == 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	for {
		_, err := st.Index().Entry(ctx, size-1)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("export: the index does not yet hold ledger entry %d, which the checkpoint covers: %w", size-1, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
