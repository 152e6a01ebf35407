package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// IndexText moves up to max messages' tokens from fts_docs into the
// full-text index, in docid order, and returns how many it indexed. Group
// commits only store the tokens (a plain insert); this runs in the
// background in larger transactions, which FTS4 handles far better than
// one small one per commit.
func (ix *Index) IndexText(ctx context.Context, max int) (int, error) {
	ix.ftsMu.Lock()
	defer ix.ftsMu.Unlock()
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	defer tx.Rollback()
	var mark int64 = -1
	var v []byte
	switch err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'fts_indexed'`).Scan(&v); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, fmt.Errorf("index: %w", err)
	default:
		fmt.Sscan(string(v), &mark)
	}
	var last int64 = -1
	var n int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(docid), -1) FROM (SELECT docid FROM fts_docs WHERE docid > ? ORDER BY docid LIMIT ?)`, mark, max).Scan(&n, &last)
	if err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO fts(docid, tokens) SELECT docid, tokens FROM fts_docs WHERE docid > ? AND docid <= ? ORDER BY docid`, mark, last); err != nil {
		return 0, fmt.Errorf("index: full-text index: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta(k, v) VALUES('fts_indexed', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, fmt.Sprint(last)); err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("index: %w", err)
	}
	return n, nil
}

// FlushText indexes every pending message's tokens, so that a search sees
// everything committed so far.
func (ix *Index) FlushText(ctx context.Context) error {
	for {
		n, err := ix.IndexText(ctx, 2000)
		if err != nil || n == 0 {
			return err
		}
	}
}

// DeleteText removes a message's tokens from the full-text index (on
// disposal and erasure).
func (ix *Index) DeleteText(ctx context.Context, seq uint64) error {
	ix.ftsMu.Lock()
	defer ix.ftsMu.Unlock()
	tx, err := ix.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer tx.Rollback()
	// External content: the index entries go first, while fts_docs still
	// holds the tokens FTS4 must remove. A docid not yet indexed has none.
	var mark int64 = -1
	var v []byte
	if err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'fts_indexed'`).Scan(&v); err == nil {
		fmt.Sscan(string(v), &mark)
	}
	if int64(seq) <= mark {
		if _, err := tx.ExecContext(ctx, `DELETE FROM fts WHERE docid = ?`, int64(seq)); err != nil {
			return fmt.Errorf("index: full-text delete %d: %w", seq, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM fts_docs WHERE docid = ?`, int64(seq)); err != nil {
		return fmt.Errorf("index: full-text delete %d: %w", seq, err)
	}
	return tx.Commit()
}
