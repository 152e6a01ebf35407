package imapview

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cairn-archive/cairn/auth"
)

// viewer is what one account sees: its scope, its flags, the index.
type viewer struct {
	db    *stmtDB // the index, read-only, with access.db attached as acc
	scope auth.Scope
	user  string
	cases CaseSource
	// acc keeps the numbering of numbered folders (numbering.go), under
	// numberMu.
	acc      *auth.DB
	numberMu *sync.Mutex
}

const maxKey = math.MaxInt64

// view is the client's picture of a selected folder (RFC 9051 §2.3.1):
// the folder's members with k <= top that are live, or that a dispose or
// erase entry after mark removed and the client has not yet been told
// about (EXPUNGE). Messages join at the end only (UIDs ascend), so the
// picture is defined by (top, mark) alone, and nmark for a numbered folder,
// and nothing per message is held in memory; sequence numbers are counted
// through narrow indexes.
type view struct {
	*viewer
	f        *folder
	readOnly bool
	mark     int64 // ledger seq up to which removals were reported
	// nmark is the generation of a numbered folder's numbering up to which
	// members that left were reported, nnext its next UID when last polled
	// (numbering.go); 0 for the others.
	nmark, nnext int64
	top          int64 // largest k the client knows; -1 when empty
	count        int64 // messages in the picture
	next         int64 // UIDNEXT - 1: above every member's k, removed ones included
	// uidValidity is the folder's UIDVALIDITY when it was selected; the
	// picture keeps its UIDs for the session even if it grows later.
	uidValidity uint32

	// A known position, to count onwards from instead of from the start;
	// valid while gen is unchanged (an EXPUNGE renumbers).
	posKey, pos int64
	posGen, gen int

	// ahead is a window of the picture's members read ahead of a small
	// request, for the next ones (mbsync fetches one UID per command).
	ahead memberWindow
}

// memberWindow holds every member of the picture with lo <= k <= hi, as
// the picture was at (mark, top, gen); bounded by windowSize.
type memberWindow struct {
	lo, hi    int64
	mark, top int64
	gen       int
	ms        []member
	valid     bool
}

// windowSize is how many members a small request reads ahead.
const windowSize = 256

// fromWindow answers page from the window when it covers [lo, hi].
func (w *view) fromWindow(lo, hi int64, limit int) ([]member, bool) {
	a := &w.ahead
	if !a.valid || a.mark != w.mark || a.top != w.top || a.gen != w.gen || lo < a.lo || min(hi, w.top) > a.hi {
		return nil, false
	}
	i := sort.Search(len(a.ms), func(i int) bool { return a.ms[i].key >= lo })
	var out []member
	for ; i < len(a.ms) && a.ms[i].key <= hi && len(out) < limit; i++ {
		out = append(out, a.ms[i])
	}
	return out, true
}

// rows is the SQL of the picture's members with lo <= k <= hi: columns
// k, msg.
func (w *view) rows(ctx context.Context, lo, hi int64) (sqlPart, error) {
	if hi > w.top {
		hi = w.top
	}
	return w.liveRows(ctx, lo, hi, w.mark, w.nmark)
}

// liveRows: members with lo <= k <= hi that are live or were removed by an
// entry after mark (and, in a numbered folder, that did not leave in a
// generation up to nmark).
func (v *viewer) liveRowsOf(ctx context.Context, f *folder, lo, hi, mark, nmark int64) (sqlPart, error) {
	m, err := v.membersSQL(ctx, f, lo, hi)
	if err != nil {
		return m, err
	}
	p := sqlPart{`SELECT r.k AS k, r.msg AS msg FROM (` + m.q + `) r WHERE r.msg NOT IN (SELECT seq FROM messages
		WHERE state != 0 AND seq NOT IN (SELECT ref FROM entries WHERE seq > ? AND kind IN ('dispose', 'erase') AND ref IS NOT NULL))`,
		append(m.args, mark)}
	if key := v.numberKey(f); key != "" {
		p.q += ` AND r.k + 1 NOT IN (SELECT uid FROM acc.` + auth.NumberingTable + ` WHERE folder = ? AND left_gen <= ?)`
		p.args = append(p.args, key, nmark)
	}
	return p, nil
}

func (w *view) liveRows(ctx context.Context, lo, hi, mark, nmark int64) (sqlPart, error) {
	return w.liveRowsOf(ctx, w.f, lo, hi, mark, nmark)
}

// ledgerHead returns the seq of the newest ledger entry in the index (-1
// for none).
func ledgerHead(ctx context.Context, db *stmtDB) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if db.head != nil {
		return db.head(), nil
	}
	var n int64
	err := db.QueryRowContext(point(ctx), `SELECT COALESCE(MAX(seq), -1) FROM entries`).Scan(&n)
	return n, err
}

// folderStats counts a folder's live members now, with the largest k, and
// the largest k of any member (removed ones included) for UIDNEXT.
func (v *viewer) folderStats(ctx context.Context, f *folder, mark, nmark int64) (count, top, next int64, err error) {
	live, err := v.liveRowsOf(ctx, f, 0, maxKey, mark, nmark)
	if err != nil {
		return 0, 0, 0, err
	}
	if err = v.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(k), -1) FROM (`+live.q+`)`, live.args...).Scan(&count, &top); err != nil {
		return 0, 0, 0, fmt.Errorf("count %s: %w", f.name, err)
	}
	all, err := v.membersSQL(ctx, f, 0, maxKey)
	if err != nil {
		return 0, 0, 0, err
	}
	if err = v.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(k), -1) FROM (`+all.q+`)`, all.args...).Scan(&next); err != nil {
		return 0, 0, 0, fmt.Errorf("count %s: %w", f.name, err)
	}
	return count, top, next + 1, nil
}

// open makes the picture of folder f as it is now.
func (v *viewer) open(ctx context.Context, f *folder, readOnly bool, base uint32) (*view, error) {
	nst, err := v.numbering(ctx, base, f)
	if err != nil {
		return nil, err
	}
	mark, err := ledgerHead(ctx, v.db)
	if err != nil {
		return nil, err
	}
	w := &view{viewer: v, f: f, readOnly: readOnly, mark: mark, nmark: nst.Gen, nnext: nst.NextUID, uidValidity: nst.UIDValidity}
	w.count, w.top, w.next, err = v.folderStats(ctx, f, mark, w.nmark)
	if err != nil {
		return nil, err
	}
	w.pos, w.posKey = 0, -1
	return w, nil
}

// countBelow counts the picture's members with k < key.
func (w *view) countBelow(ctx context.Context, key int64) (int64, error) {
	from, base := int64(0), int64(0)
	if w.posGen == w.gen && w.posKey >= 0 && w.posKey < key {
		from, base = w.posKey+1, w.pos
	}
	if key <= from {
		return base, nil
	}
	r, err := w.rows(ctx, from, key-1)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := w.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+r.q+`)`, r.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return base + n, nil
}

// remember records that the member with k = key has position pos.
func (w *view) remember(key, pos int64) {
	w.posKey, w.pos, w.posGen = key, pos, w.gen
}

// keyAt returns the k of the member at position pos (1-based), or -1.
func (w *view) keyAt(ctx context.Context, pos int64) (int64, error) {
	if pos < 1 || pos > w.count {
		return -1, nil
	}
	from, skip := int64(0), pos-1
	if w.posGen == w.gen && w.posKey >= 0 && w.pos < pos {
		from, skip = w.posKey+1, pos-w.pos-1
	}
	r, err := w.rows(ctx, from, maxKey)
	if err != nil {
		return -1, err
	}
	var k int64
	err = w.db.QueryRowContext(ctx, `SELECT k FROM (`+r.q+`) ORDER BY k LIMIT 1 OFFSET ?`, append(r.args, skip)...).Scan(&k)
	if err == sql.ErrNoRows {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("position %d: %w", pos, err)
	}
	w.remember(k, pos)
	return k, nil
}

// member is one row of the picture.
type member struct {
	key, msg int64
}

// page returns up to limit members with lo <= k <= hi in k order. A
// request for a few members reads up to windowSize ahead, so the next
// small requests cost no query.
func (w *view) page(ctx context.Context, lo, hi int64, limit int) ([]member, error) {
	if hi-lo < windowSize/4 && limit >= int(hi-lo+1) {
		if out, ok := w.fromWindow(lo, hi, limit); ok {
			return out, nil
		}
		ms, err := w.query(ctx, lo, maxKey, windowSize)
		if err != nil {
			return nil, err
		}
		covered := min(maxKey, w.top)
		if len(ms) == windowSize {
			covered = ms[len(ms)-1].key
		}
		w.ahead = memberWindow{lo: lo, hi: covered, mark: w.mark, top: w.top, gen: w.gen, ms: ms, valid: true}
		if out, ok := w.fromWindow(lo, hi, limit); ok {
			return out, nil
		}
	}
	return w.query(ctx, lo, hi, limit)
}

// query reads up to limit members with lo <= k <= hi in k order.
func (w *view) query(ctx context.Context, lo, hi int64, limit int) ([]member, error) {
	r, err := w.rows(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	rows, err := w.db.QueryContext(ctx, `SELECT k, msg FROM (`+r.q+`) ORDER BY k LIMIT ?`, append(r.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("page: %w", err)
	}
	defer rows.Close()
	var out []member
	for rows.Next() {
		var m member
		if err := rows.Scan(&m.key, &m.msg); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// keyRange is an inclusive range of k.
type keyRange struct{ lo, hi int64 }

// normalizeRanges sorts and merges ranges.
func normalizeRanges(rs []keyRange) []keyRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
	var out []keyRange
	for _, r := range rs {
		if r.lo > r.hi {
			continue
		}
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			if r.hi > out[n-1].hi {
				out[n-1].hi = r.hi
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// each calls fn for the picture's members whose k lies in ranges, in
// order, with their sequence numbers, in batches of at most batch.
func (w *view) each(ctx context.Context, ranges []keyRange, batch int, fn func(ms []member, seqs []int64) error) error {
	for _, rg := range normalizeRanges(ranges) {
		lo := rg.lo
		first := true
		var pos int64
		for lo <= rg.hi && lo <= w.top {
			ms, err := w.page(ctx, lo, rg.hi, batch)
			if err != nil {
				return err
			}
			if len(ms) == 0 {
				break
			}
			if first {
				below, err := w.countBelow(ctx, ms[0].key)
				if err != nil {
					return err
				}
				pos, first = below, false
			}
			seqs := make([]int64, len(ms))
			for i := range ms {
				pos++
				seqs[i] = pos
			}
			w.remember(ms[len(ms)-1].key, pos)
			if err := fn(ms, seqs); err != nil {
				return err
			}
			lo = ms[len(ms)-1].key + 1
		}
	}
	return nil
}

// update is what a poll found: positions to expunge (in the order to
// send them) and the new message count, when it grew.
type update struct {
	expunge []int64
	exists  int64 // 0: unchanged
}

// poll brings the picture up to date: members removed since mark (only
// when the client may be told, allowExpunge) and members added after top.
func (w *view) poll(ctx context.Context, allowExpunge bool) (*update, error) {
	nmark, nnext := w.nmark, w.nnext
	if w.numberKey(w.f) != "" {
		nst, err := w.numbering(ctx, 0, w.f)
		if err != nil {
			return nil, err
		}
		nmark, nnext = nst.Gen, nst.NextUID
	}
	head, err := ledgerHead(ctx, w.db)
	if err != nil {
		return nil, err
	}
	u := &update{}
	if head == w.mark && nmark == w.nmark && nnext == w.nnext {
		return u, nil
	}
	w.nnext = nnext
	if allowExpunge {
		gone, err := w.removedSince(ctx, head, nmark)
		if err != nil {
			return nil, err
		}
		if len(gone) > 0 {
			// Positions in the picture before the removal, ascending; sent
			// descending, each stays right (RFC 9051 §7.5.1).
			var prev int64 = -1
			var pos int64
			for _, k := range gone {
				r, err := w.rows(ctx, prev+1, k-1)
				if err != nil {
					return nil, err
				}
				var n int64
				if err := w.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+r.q+`)`, r.args...).Scan(&n); err != nil {
					return nil, err
				}
				pos += n + 1
				u.expunge = append(u.expunge, pos)
				prev = k
			}
			for i, j := 0, len(u.expunge)-1; i < j; i, j = i+1, j-1 {
				u.expunge[i], u.expunge[j] = u.expunge[j], u.expunge[i]
			}
			w.count -= int64(len(gone))
			w.gen++
		}
		w.mark, w.nmark = head, nmark
	}
	// Members added after top, as the picture (mark) sees them.
	r, err := w.liveRows(ctx, w.top+1, maxKey, w.mark, w.nmark)
	if err != nil {
		return nil, err
	}
	var n, top int64
	if err := w.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(k), -1) FROM (`+r.q+`)`, r.args...).Scan(&n, &top); err != nil {
		return nil, err
	}
	if n > 0 {
		w.count += n
		w.top = top
		u.exists = w.count
	}
	if all, err := w.membersSQL(ctx, w.f, w.next, maxKey); err == nil {
		var next int64
		if w.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(k), -1) FROM (`+all.q+`)`, all.args...).Scan(&next) == nil && next+1 > w.next {
			w.next = next + 1
		}
	}
	return u, nil
}

// removedSince returns the k of the picture's members removed by a
// dispose or erase entry after mark, up to head, or (in a numbered folder)
// that left in a generation after nmark, up to gen; ascending.
func (w *view) removedSince(ctx context.Context, head, gen int64) ([]int64, error) {
	if gen != w.nmark {
		// The picture's members (up to top) less those of the new one.
		was, err := w.liveRows(ctx, 0, w.top, w.mark, w.nmark)
		if err != nil {
			return nil, err
		}
		is, err := w.liveRows(ctx, 0, w.top, head, gen)
		if err != nil {
			return nil, err
		}
		return w.int64s(ctx, `SELECT k FROM (`+was.q+`) WHERE k NOT IN (SELECT k FROM (`+is.q+`)) ORDER BY k`,
			append(slices.Clip(was.args), is.args...)...)
	}
	var any int
	if err := w.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM entries WHERE seq > ? AND seq <= ? AND kind IN ('dispose', 'erase'))`, w.mark, head).Scan(&any); err != nil || any == 0 {
		return nil, err
	}
	m, err := w.membersSQL(ctx, w.f, 0, w.top)
	if w.numberKey(w.f) != "" {
		// Not those that left before.
		m, err = w.liveRows(ctx, 0, w.top, w.mark, w.nmark)
	}
	if err != nil {
		return nil, err
	}
	return w.int64s(ctx, `SELECT DISTINCT r.k FROM (`+m.q+`) r WHERE r.msg IN (SELECT ref FROM entries
		WHERE seq > ? AND seq <= ? AND kind IN ('dispose', 'erase') AND ref IS NOT NULL) ORDER BY r.k`, append(m.args, w.mark, head)...)
}

// inClause returns "(?,?,...)" and the args for ids.
func inClause(ids []int64) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(?" + strings.Repeat(",?", len(ids)-1) + ")", args
}
