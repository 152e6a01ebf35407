package index

import (
	"context"
	"fmt"
)

// EachLeaf calls fn with the RFC 9162 leaf hash of every ledger entry the
// index holds below end, in seq order, streaming: an export computes
// inclusion proofs from them in one pass without holding the tree. The
// caller checks that the seqs have no gap (an index that lags the ledger
// lacks its newest entries) and that the leaves hash to a signed root.
func (ix *Index) EachLeaf(ctx context.Context, end uint64, fn func(seq uint64, leaf []byte) error) error {
	rows, err := ix.db.QueryContext(ctx, `SELECT seq, leaf FROM entries WHERE seq < ? ORDER BY seq`, int64(end))
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var leaf []byte
		if err := rows.Scan(&seq, &leaf); err != nil {
			return fmt.Errorf("index: %w", err)
		}
		if err := fn(uint64(seq), leaf); err != nil {
			return err
		}
	}
	return rows.Err()
}
