package imapview

import (
	"context"
	"errors"
	"sync"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/index"
)

// prefetchWindow bounds the messages opened ahead of the one being sent:
// each holds its object open and at most one decoded frame (256 KiB), so a
// FETCH of bodies costs at most a few MiB whatever the folder's size.
const prefetchWindow = 8

// prefetchWorkers open messages in parallel.
const prefetchWorkers = 2

// prefetcher opens the messages of a FETCH batch ahead of the writer, a
// window at a time, with a few workers: key unwrapping, decryption and
// decompression of the first frame overlap with sending the previous
// messages.
type prefetcher struct{ openQueue }

type opened struct {
	msg *archive.Message
	err error
}

// openQueue holds messages opened in order by workers, at most a window
// ahead of whoever takes them.
type openQueue struct {
	res    []chan opened
	window chan struct{}
	taken  []bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (q *openQueue) init(n int, cancel context.CancelFunc) {
	q.res, q.window, q.taken, q.cancel = make([]chan opened, n), make(chan struct{}, prefetchWindow), make([]bool, n), cancel
	for i := range q.res {
		q.res[i] = make(chan opened, 1)
	}
}

// takeAt waits for message i (in order) and frees its place in the window.
func (q *openQueue) takeAt(i int) opened {
	o := <-q.res[i]
	q.taken[i] = true
	<-q.window
	return o
}

// close stops opening ahead and closes what was opened but not taken.
func (q *openQueue) close() {
	q.cancel()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	// Free the window until the producer and workers are gone, so that
	// none of them is stuck.
	for waiting := true; waiting; {
		select {
		case <-q.window:
		case <-done:
			waiting = false
		}
	}
	for i, c := range q.res {
		if q.taken[i] {
			continue
		}
		select {
		case o := <-c:
			if o.msg != nil {
				o.msg.Close()
			}
		default:
		}
	}
}

func (s *session) prefetch(ctx context.Context, ms []member, rows map[int64]*row) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{}
	p.init(len(ms), cancel)
	st := s.srv.opts.Store
	todo := make(chan int, prefetchWindow)
	p.wg.Add(1 + prefetchWorkers)
	located := make(chan int, 1)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		locate(ctx, st, ms, rows, located)
	}()
	go func() {
		defer p.wg.Done()
		defer close(todo)
		done := 0 // messages located, in order
		for i := range ms {
			for done <= i {
				n, ok := <-located
				if !ok {
					done = len(ms) // stopped: open the rest as they come
					break
				}
				done = n
			}
			select {
			case p.window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			todo <- i
		}
	}()
	for range prefetchWorkers {
		go func() {
			defer p.wg.Done()
			for i := range todo {
				r := rows[ms[i].msg]
				if r == nil || ctx.Err() != nil {
					p.res[i] <- opened{err: ctx.Err()}
					continue
				}
				ix := r.ix
				msg, err := st.OpenMessageRow(ctx, &ix)
				if err == nil && msg.Size() > 0 {
					var b [1]byte
					msg.ReadAt(b[:], 0) // decode the first frame here, in parallel
				}
				p.res[i] <- opened{msg, err}
			}
		}()
	}
	return p
}

// locateFirst is the first chunk of a batch whose objects locate looks
// up; locateChunk each one after it.
const (
	locateFirst = 16
	locateChunk = 256
)

// locate looks up where the objects of the messages ms are stored, in
// order, a chunk at a time, and sends on done how many are located after
// each chunk; it closes done when it stops. The first chunk is small: the
// first messages are opened and sent while the rest are looked up (the
// whole batch's lookups first kept a 1,000-message FETCH from sending
// anything for 10 ms).
func locate(ctx context.Context, st *archive.Store, ms []member, rows map[int64]*row, done chan<- int) {
	defer close(done)
	n := locateFirst
	for lo := 0; lo < len(ms); lo += n {
		if ctx.Err() != nil {
			return
		}
		if lo > 0 {
			n = locateChunk
		}
		hi := min(lo+n, len(ms))
		chunk := make([]*index.MessageRow, 0, hi-lo)
		for _, m := range ms[lo:hi] {
			if r := rows[m.msg]; r != nil {
				chunk = append(chunk, &r.ix)
			}
		}
		st.Prefetch(ctx, chunk)
		select {
		case done <- hi:
		case <-ctx.Done():
			return
		}
	}
}

// take returns message i (in order); the caller closes it.
func (p *prefetcher) take(i int) (*archive.Message, error) {
	o := p.takeAt(i)
	return o.msg, o.err
}

// readahead opens, across commands, the messages that the UID FETCH
// commands already pipelined behind the current one will send. mbsync
// asks for one message per command, hundreds of commands in flight: each
// command alone opens one message in place, on the connection's goroutine;
// read ahead, the next ones are opened (key unwrapped, first frame
// decrypted and decompressed) by workers on the other core meanwhile.
// The commands still load their rows and are answered in order.
type readahead struct {
	openQueue
	order []int64 // message seqs, in the order the commands ask for them
	next  int     // index in order of the next one expected

	// rows are the index rows the read-ahead loaded, each with the ledger
	// head read before it was loaded (only where the head is known without
	// a query, stmtDB.head).
	mu   sync.Mutex
	rows map[int64]aheadRow
}

type aheadRow struct {
	r    *row
	head int64
}

// aheadRows returns (and forgets) the rows of msgs that the read-ahead
// loaded, if the ledger head is still the one read before they were
// loaded: no entry since (every change of a message's state is one) means
// they are current. Else, or unless it has every one, nil.
func (s *session) aheadRows(msgs []int64) map[int64]*row {
	ra := s.ra
	if ra == nil || s.srv.db.head == nil {
		return nil
	}
	head := s.srv.db.head()
	ra.mu.Lock()
	defer ra.mu.Unlock()
	out := make(map[int64]*row, len(msgs))
	for _, m := range msgs {
		a, ok := ra.rows[m]
		if !ok || a.head != head {
			return nil
		}
		out[m] = a.r
	}
	for _, m := range msgs {
		delete(ra.rows, m)
	}
	return out
}

// maxReadahead bounds the messages one read-ahead lists (the commands
// recorded ahead are bounded too, by maxPreAudited).
const maxReadahead = maxPreAudited

// startReadahead opens msgs ahead, in order, for the commands to come; it
// replaces (and closes) the previous read-ahead.
func (s *session) startReadahead(msgs []int64) {
	s.stopReadahead()
	if len(msgs) == 0 {
		return
	}
	if len(msgs) > maxReadahead {
		msgs = msgs[:maxReadahead]
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ra := &readahead{order: msgs, rows: make(map[int64]aheadRow, len(msgs))}
	ra.init(len(msgs), cancel)
	st := s.srv.opts.Store
	type job struct {
		i  int
		ix *index.MessageRow
	}
	todo := make(chan job, prefetchWindow)
	ra.wg.Add(1 + prefetchWorkers)
	go func() {
		defer ra.wg.Done()
		defer close(todo)
		for lo := 0; lo < len(msgs); lo += bodyBatch {
			chunk := msgs[lo:min(lo+bodyBatch, len(msgs))]
			head := int64(-2) // unknown
			if s.srv.db.head != nil {
				head = s.srv.db.head()
			}
			rows, err := s.loadRows(ctx, chunk, needs{body: true, date: true})
			if err == nil {
				ahead := make([]*index.MessageRow, 0, len(rows))
				for _, r := range rows {
					ahead = append(ahead, &r.ix)
				}
				st.Prefetch(ctx, ahead)
			}
			if err == nil && head != -2 {
				ra.mu.Lock()
				for m, r := range rows {
					ra.rows[m] = aheadRow{r, head}
				}
				ra.mu.Unlock()
			}
			for j, m := range chunk {
				var ix *index.MessageRow
				if r := rows[m]; r != nil {
					ix = &r.ix
				}
				select {
				case ra.window <- struct{}{}:
				case <-ctx.Done():
					return
				}
				if err != nil || ix == nil {
					// Not there (or the index failed): the command
					// opens it in place and reports what it finds.
					ra.res[lo+j] <- opened{err: errNotAhead}
					continue
				}
				todo <- job{lo + j, ix}
			}
		}
	}()
	for range prefetchWorkers {
		go func() {
			defer ra.wg.Done()
			for jb := range todo {
				if ctx.Err() != nil {
					ra.res[jb.i] <- opened{err: ctx.Err()}
					continue
				}
				msg, err := st.OpenMessageRow(ctx, jb.ix)
				if err == nil && msg.Size() > 0 {
					var b [1]byte
					msg.ReadAt(b[:], 0) // decode the first frame here
				}
				ra.res[jb.i] <- opened{msg, err}
			}
		}()
	}
	s.ra = ra
}

// errNotAhead: the read-ahead has no message for this command.
var errNotAhead = errors.New("imapview: not read ahead")

// takeAhead returns message msg if it was read ahead: the next one, or a
// later one (those skipped are closed). A message not ahead at all (the
// client asked for one again, or out of order) is not an error: ok is
// false, the caller opens it in place, and the read-ahead goes on. The
// caller closes the message.
func (s *session) takeAhead(msg int64) (m *archive.Message, ok bool) {
	ra := s.ra
	if ra == nil {
		return nil, false
	}
	j := ra.next
	for j < len(ra.order) && ra.order[j] != msg {
		j++
	}
	if j == len(ra.order) {
		return nil, false
	}
	for ; ra.next <= j; ra.next++ {
		i := ra.next
		o := ra.takeAt(i)
		if i < j {
			if o.msg != nil {
				o.msg.Close()
			}
			continue
		}
		m, ok = o.msg, o.err == nil
	}
	if ra.next == len(ra.order) {
		s.stopReadahead()
	}
	if ok {
		s.srv.aheadUsed.Add(1)
	}
	// On an error the caller opens the message in place, which reports it
	// exactly as without a read-ahead.
	return m, ok
}

// stopReadahead ends the read-ahead and closes what it opened and nobody
// took.
func (s *session) stopReadahead() {
	if ra := s.ra; ra != nil {
		s.ra = nil
		ra.close()
	}
}

// nextRows are the rows that the next batch of a FETCH of bodies over a
// run of the folder will most likely ask for: the same number of message
// seqs right after the batch just sent. A client reading a folder a
// thousand UIDs a command parses one answer before it asks for the next;
// these rows are read meanwhile (a 5 ms query a batch that the command
// used to wait for). A batch takes them only if the ledger head is still
// the one read before they were loaded (every change of a message's state
// is an entry) and they cover what it asks for.
type nextRows struct {
	lo, hi int64 // message seqs
	date   bool  // loaded with the received time (INTERNALDATE)
	head   int64
	done   chan struct{}
	rows   map[int64]*row
	err    error
	cancel context.CancelFunc
}

// readNext starts reading the rows of message seqs lo to hi in the
// background (replacing what was read before), for a batch of bodies
// that needs nd.
func (s *session) readNext(lo, hi int64, nd needs) {
	s.dropNext()
	if s.srv.db.head == nil || hi < lo {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	n := &nextRows{lo: lo, hi: hi, date: nd.date, head: s.srv.db.head(), done: make(chan struct{}), cancel: cancel}
	msgs := make([]int64, 0, hi-lo+1)
	for m := lo; m <= hi; m++ {
		msgs = append(msgs, m)
	}
	go func() {
		defer close(n.done)
		n.rows, n.err = s.loadRows(ctx, msgs, needs{body: true, date: nd.date})
	}()
	s.next = n
}

// takeNext returns the rows of msgs read ahead by readNext, if they serve
// a batch that needs nd and are still current; else nil. Either way what
// was read ahead is used once.
func (s *session) takeNext(msgs []int64, nd needs) map[int64]*row {
	n := s.next
	if n == nil {
		return nil
	}
	s.next = nil
	defer n.cancel()
	if !nd.body || nd.header || nd.structure || nd.seen || (nd.date && !n.date) {
		return nil
	}
	for _, m := range msgs {
		if m < n.lo || m > n.hi {
			return nil
		}
	}
	<-n.done
	if n.err != nil || s.srv.db.head() != n.head {
		return nil
	}
	out := make(map[int64]*row, len(msgs))
	for _, m := range msgs {
		if r := n.rows[m]; r != nil {
			out[m] = r
		}
	}
	s.srv.nextUsed.Add(1)
	return out
}

// dropNext forgets (and stops) what readNext is reading.
func (s *session) dropNext() {
	if n := s.next; n != nil {
		s.next = nil
		n.cancel()
	}
}
