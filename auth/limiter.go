package auth

import (
	"context"
	"math"
	"net/netip"
	"sync"
	"time"
)

// LimitOptions tune the Limiter. Zero fields take the defaults named.
type LimitOptions struct {
	// FreeFailures are the failures allowed before attempts slow down
	// (default 3).
	FreeFailures int
	// BaseDelay is the wait after the first failure beyond FreeFailures; it
	// doubles with each further failure (default 1s).
	BaseDelay time.Duration
	// MaxDelay caps the wait between attempts (default 1m).
	MaxDelay time.Duration
	// MaxWait: an attempt that would wait longer than this is refused at
	// once, as a failure (default 2m). With MaxDelay this is the lockout.
	MaxWait time.Duration
	// HalfLife is how fast failures are forgotten: the count halves every
	// HalfLife without failures (default 15m).
	HalfLife time.Duration
	// MaxEntries bounds the client addresses and the user names remembered
	// (each; default 100,000).
	MaxEntries int
}

func (o *LimitOptions) defaults() {
	if o.FreeFailures == 0 {
		o.FreeFailures = 3
	}
	if o.BaseDelay == 0 {
		o.BaseDelay = time.Second
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = time.Minute
	}
	if o.MaxWait == 0 {
		o.MaxWait = 2 * time.Minute
	}
	if o.HalfLife == 0 {
		o.HalfLife = 15 * time.Minute
	}
	if o.MaxEntries == 0 {
		o.MaxEntries = 100000
	}
}

// Limiter slows down password guessing, per client address and per user
// name, with the same treatment for names that exist and names that do
// not. Each failure pushes the next allowed attempt further out
// (exponential backoff); concurrent attempts queue behind one another, so
// many connections guess no faster than one. Safe for concurrent use.
type Limiter struct {
	opts LimitOptions
	now  func() time.Time

	mu    sync.Mutex
	addrs map[string]*bucket
	users map[string]*bucket
}

type bucket struct {
	failures float64   // decayed failure count
	at       time.Time // when failures was last updated
	next     time.Time // earliest time of the next attempt
}

// NewLimiter returns a Limiter.
func NewLimiter(opts LimitOptions) *Limiter {
	opts.defaults()
	return &Limiter{opts: opts, now: time.Now, addrs: map[string]*bucket{}, users: map[string]*bucket{}}
}

// addrKey groups IPv6 clients by /64, which one host usually controls.
func addrKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

func (l *Limiter) get(m map[string]*bucket, key string, now time.Time) *bucket {
	b := m[key]
	if b == nil {
		if len(m) >= l.opts.MaxEntries {
			l.sweep(m, now)
		}
		b = &bucket{at: now}
		m[key] = b
		return b
	}
	if dt := now.Sub(b.at); dt > 0 {
		b.failures *= math.Exp2(-float64(dt) / float64(l.opts.HalfLife))
		b.at = now
	}
	return b
}

// sweep drops forgotten entries; if the map is still full (an attacker
// with very many addresses), it is emptied: memory stays bounded, and the
// cost is that those attempts start over unthrottled.
func (l *Limiter) sweep(m map[string]*bucket, now time.Time) {
	for k, b := range m {
		if b.next.Before(now) && b.failures*math.Exp2(-float64(now.Sub(b.at))/float64(l.opts.HalfLife)) < 0.5 {
			delete(m, k)
		}
	}
	if len(m) >= l.opts.MaxEntries {
		clear(m)
	}
}

func (l *Limiter) delay(failures float64) time.Duration {
	n := int(math.Round(failures)) - l.opts.FreeFailures
	if n <= 0 {
		return 0
	}
	if n > 30 {
		return l.opts.MaxDelay
	}
	d := l.opts.BaseDelay << (n - 1)
	if d > l.opts.MaxDelay || d <= 0 {
		d = l.opts.MaxDelay
	}
	return d
}

// Attempt is one reserved login attempt.
type Attempt struct {
	l      *Limiter
	addr   string
	user   string
	Wait   time.Duration // how long the attempt must wait before it is checked
	Refuse bool          // refuse without checking: the wait would exceed MaxWait
}

// Begin reserves an attempt by user from ip: it says how long to wait
// before checking the password, or that the attempt is refused outright.
// Call Done with the outcome.
func (l *Limiter) Begin(ip netip.Addr, user string) *Attempt {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := &Attempt{l: l, addr: addrKey(ip), user: user}
	var start time.Time
	bs := []*bucket{l.get(l.users, user, now)}
	if a.addr != "" {
		bs = append(bs, l.get(l.addrs, a.addr, now))
	}
	start = now
	for _, b := range bs {
		if b.next.After(start) {
			start = b.next
		}
	}
	a.Wait = start.Sub(now)
	if a.Wait > l.opts.MaxWait {
		a.Refuse, a.Wait = true, 0
		return a
	}
	// Queue the next attempt behind this one, as if this one fails.
	for _, b := range bs {
		b.next = start.Add(l.delay(b.failures + 1))
	}
	return a
}

// Sleep waits a.Wait, or until ctx ends.
func (a *Attempt) Sleep(ctx context.Context) error {
	if a.Wait <= 0 {
		return nil
	}
	t := time.NewTimer(a.Wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done records the outcome. A success forgets the user's failures (not the
// address's: one good password does not excuse guessing other accounts).
func (a *Attempt) Done(ok bool) {
	l := a.l
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.get(l.users, a.user, now)
	if ok {
		delete(l.users, a.user)
		if a.addr != "" {
			b := l.get(l.addrs, a.addr, now)
			b.next = now.Add(l.delay(b.failures))
		}
		return
	}
	u.failures++
	if a.addr != "" {
		l.get(l.addrs, a.addr, now).failures++
	}
}
