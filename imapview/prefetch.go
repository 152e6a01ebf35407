package imapview

import (
	"context"
	"sync"

	"github.com/cairn-archive/cairn/archive"
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
type prefetcher struct {
	res    []chan opened
	window chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
	taken  []bool
}

type opened struct {
	msg *archive.Message
	err error
}

func (s *session) prefetch(ctx context.Context, ms []member, rows map[int64]*row) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{res: make([]chan opened, len(ms)), window: make(chan struct{}, prefetchWindow), cancel: cancel, taken: make([]bool, len(ms))}
	for i := range p.res {
		p.res[i] = make(chan opened, 1)
	}
	st := s.srv.opts.Store
	todo := make(chan int, prefetchWindow)
	p.wg.Add(1 + prefetchWorkers)
	go func() {
		defer p.wg.Done()
		defer close(todo)
		for i := range ms {
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

// take returns message i (in order) and frees its place in the window; the
// caller closes it.
func (p *prefetcher) take(i int) (*archive.Message, error) {
	o := <-p.res[i]
	p.taken[i] = true
	<-p.window
	return o.msg, o.err
}

// close stops opening ahead and closes what was opened but not taken.
func (p *prefetcher) close() {
	p.cancel()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	// Free the window until the producer and workers are gone, so that
	// none of them is stuck.
	for {
		select {
		case <-p.window:
			continue
		case <-done:
		}
		break
	}
	for i, c := range p.res {
		if p.taken[i] {
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
