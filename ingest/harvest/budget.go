package harvest

import (
	"context"
	"sync"
)

// budget bounds the message bytes the harvester holds at once: a reader takes
// a message's size before reading it and the worker gives it back once the
// archive answered. So memory stays flat however large the mailbox is, and
// however many large messages arrive in a row.
type budget struct {
	mu    sync.Mutex
	avail int64
	wake  chan struct{}
}

func newBudget(n int64) *budget {
	return &budget{avail: n, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting until they are free or ctx ends. n must
// not exceed the budget's total.
func (b *budget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.avail >= n {
			b.avail -= n
			b.mu.Unlock()
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release gives n bytes back.
func (b *budget) release(n int64) {
	b.mu.Lock()
	b.avail += n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}
