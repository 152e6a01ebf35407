package audit

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Query selects entries for Events (cairn audit tail and export).
type Query struct {
	From  Seq       // first seq (0 or 1: from the start)
	Since time.Time // if set, only events with Time >= Since
	Until time.Time // if set, only events with Time < Until
	// Follow keeps waiting for new entries after the last one, until ctx
	// ends (tail -f). It notices commits made by this Log at once and by
	// another process (cairn serve) within a second.
	Follow bool
	Limit  int // stop after this many entries (0: no limit)
}

// Events calls fn for each entry matching q, in seq order, paging through
// the database. An error from fn stops the walk and is returned.
func (l *Log) Events(ctx context.Context, q Query, fn func(*Entry) error) error {
	const page = 500
	next := max(q.From, 1)
	n := 0
	for {
		var changed <-chan struct{}
		if q.Follow {
			changed = l.Changed()
		}
		batch, err := l.readRange(ctx, next, page, q.Since, q.Until)
		if err != nil {
			return err
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
			n++
			if q.Limit > 0 && n >= q.Limit {
				return nil
			}
			next = batch[i].Seq + 1
		}
		if len(batch) == page {
			continue
		}
		if !q.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// readRange is readEntries with an optional time filter; rows outside the
// time range are skipped in SQL, so next still advances past them.
func (l *Log) readRange(ctx context.Context, from Seq, n int, since, until time.Time) ([]Entry, error) {
	if since.IsZero() && until.IsZero() {
		return l.readEntries(ctx, from, n)
	}
	var where []string
	args := []any{int64(from)}
	if !since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, since.UnixNano())
	}
	if !until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, until.UnixNano())
	}
	args = append(args, n)
	rows, err := l.rdb.QueryContext(ctx, `SELECT seq, body FROM events WHERE seq >= ? AND `+
		strings.Join(where, " AND ")+` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: read from %d: %w", from, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var seq int64
		var body []byte
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, err
		}
		e, err := ParseEntry(body)
		if err != nil {
			return nil, fmt.Errorf("audit: read seq %d: %w", seq, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Export writes the entries matching q to w, rendered by r, one per line,
// and returns how many it wrote (cairn audit export and tail). In follow
// mode each line is written as soon as it is read; w should not buffer, or
// should be flushed by the caller.
func (l *Log) Export(ctx context.Context, w io.Writer, q Query, r *Renderer) (int, error) {
	n := 0
	var buf []byte
	err := l.Events(ctx, q, func(e *Entry) error {
		buf = append(r.Append(buf[:0], e), '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// LatestCheckpoint returns the newest signed checkpoint written by this Log
// (nil if none yet).
func (l *Log) LatestCheckpoint() []byte {
	l.sl.mu.Lock()
	defer l.sl.mu.Unlock()
	return l.sl.cp
}

// Store returns the object store the Log seals to (nil if none).
func (l *Log) Store() objstore.Store { return l.opts.Store }
