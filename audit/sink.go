package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Sink delivers committed entries to one destination (a file, a syslog
// server, a Splunk HEC). The Log runs one pump per sink; the pump owns the
// sink's durable cursor, so a sink only moves bytes and reports what the
// destination has acknowledged. Methods are called from one goroutine.
type Sink interface {
	// Name identifies the sink and keys its durable cursor; keep it stable
	// across restarts ("siem-syslog", "hec-prod").
	Name() string
	// Send delivers entries (consecutive seqs, in order) after those already
	// sent since the last Reset. It returns the highest seq the destination
	// has acknowledged so far, which may lag behind the last entry sent
	// (syslog over TCP confirms after a delay; HEC with indexer
	// acknowledgement confirms when the ack arrives). An error means the
	// destination may have received any prefix of entries; the pump calls
	// Reset and sends again from its cursor.
	Send(ctx context.Context, entries []Entry) (acked Seq, err error)
	// Sync asks for acknowledgements of entries already sent and returns
	// the highest seq acknowledged. Called when the pump is idle or has
	// MaxInFlight entries unacknowledged.
	Sync(ctx context.Context) (acked Seq, err error)
	// Reset drops connections and any unacknowledged state after an error.
	Reset()
	// Close releases the sink. The pump has stopped when Close is called.
	Close() error
}

// SinkStatus is the state of one sink's delivery, for metrics.
type SinkStatus struct {
	Name        string
	Cursor      Seq       // last seq acknowledged by the destination; saved (durable) within cursorSaveEvery
	Sent        Seq       // last seq sent, acknowledged or not
	Head        Seq       // last committed seq
	Lag         uint64    // Head - Cursor: events not yet acknowledged
	LastSuccess time.Time // last Send or Sync without error
	LastError   string    // last error, "" after a success
	LastErrorAt time.Time
	Failures    uint64 // consecutive failures (0 when healthy)
	Delivered   uint64 // events acknowledged since Open
}

// SinkStatus returns the status of every sink, in Options.Sinks order.
func (l *Log) SinkStatus() []SinkStatus {
	out := make([]SinkStatus, 0, len(l.pumps))
	head := l.Head()
	for _, p := range l.pumps {
		p.mu.Lock()
		s := p.status
		p.mu.Unlock()
		s.Head = head
		if head > s.Cursor {
			s.Lag = uint64(head - s.Cursor)
		}
		out = append(out, s)
	}
	return out
}

type pump struct {
	l    *Log
	sink Sink
	d    Delivery

	mu     sync.Mutex
	status SinkStatus

	saves atomic.Uint64 // cursor commits, for tests
}

func (l *Log) newPump(s Sink) (*pump, error) {
	p := &pump{l: l, sink: s, d: l.opts.Delivery}
	p.status.Name = s.Name()
	var seq int64
	err := l.wdb.QueryRow(`SELECT seq FROM cursors WHERE sink = ?`, s.Name()).Scan(&seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("audit: sink %s: read cursor: %w", s.Name(), err)
	}
	p.status.Cursor = Seq(seq)
	p.status.Sent = Seq(seq)
	return p, nil
}

func (p *pump) saveCursor(seq Seq) error {
	_, err := p.l.wdb.Exec(`INSERT INTO cursors(sink, seq, updated) VALUES(?, ?, ?)
		ON CONFLICT(sink) DO UPDATE SET seq = excluded.seq, updated = excluded.updated`,
		p.sink.Name(), int64(seq), time.Now().UnixNano())
	if err == nil {
		p.saves.Add(1)
	}
	return err
}

// cursorSaveEvery bounds how often a pump saves its cursor (a SQLite
// commit): at most this long after a delivery, the cursor is durable.
const cursorSaveEvery = 200 * time.Millisecond

// run delivers until ctx ends. Its cursor only moves forward, and only to a
// seq the sink reported acknowledged; after any error it rewinds to the
// cursor, so delivery is at least once and in order.
func (p *pump) run(ctx context.Context) {
	defer p.l.wg.Done()
	cursor := p.status.Cursor
	saved := cursor
	next := cursor + 1
	backoff := time.Duration(0)
	var lastSave time.Time
	save := func(force bool) {
		if cursor == saved || (!force && time.Since(lastSave) < cursorSaveEvery) {
			return
		}
		if err := p.saveCursor(cursor); err != nil {
			p.l.opts.Logger.Warn("audit sink: saving cursor failed", "sink", p.sink.Name(), "err", err)
			return
		}
		saved, lastSave = cursor, time.Now()
	}
	defer save(true)
	for {
		if ctx.Err() != nil {
			return
		}
		changed := p.l.Changed()
		head := p.l.Head()
		var acked Seq
		var err error
		sent := false
		switch {
		case next <= head && int(next-cursor-1) < p.d.MaxInFlight:
			n := min(p.d.BatchSize, int(head-next+1), p.d.MaxInFlight-int(next-cursor-1))
			var batch []Entry
			batch, err = p.l.readEntries(ctx, next, n)
			if err == nil && len(batch) > 0 {
				actx, cancel := context.WithTimeout(ctx, p.d.AttemptTimeout)
				acked, err = p.sink.Send(actx, batch)
				cancel()
				if err == nil {
					next = batch[len(batch)-1].Seq + 1
					sent = true
				}
			}
		case next-1 > cursor:
			actx, cancel := context.WithTimeout(ctx, p.d.AttemptTimeout)
			acked, err = p.sink.Sync(actx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			p.fail(err)
			p.sink.Reset()
			next = cursor + 1
			save(true)
			backoff = min(max(2*backoff, p.d.MinBackoff), p.d.MaxBackoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if acked > next-1 {
			acked = next - 1 // a sink cannot acknowledge what it was not sent
		}
		if acked > cursor {
			p.mu.Lock()
			p.status.Delivered += uint64(acked - cursor)
			p.mu.Unlock()
			cursor = acked
		}
		p.ok(cursor, next-1)
		save(false)
		if sent {
			continue // more may be ready
		}
		var poll <-chan time.Time
		switch wait := cursorSaveEvery - time.Since(lastSave); {
		case next-1 > cursor:
			poll = time.After(p.d.PollInterval)
		case cursor != saved && wait > 0:
			// Caught up, the cursor saved less than cursorSaveEvery ago:
			// save it when that is over (or with the next delivery).
			// Saving at once each time the sink caught up cost a SQLite
			// commit and an fsync per event when events come one by one
			// (an IMAP client fetching message by message).
			poll = time.After(wait)
		default:
			save(true)
			poll = time.After(time.Second) // also notices commits made by another process
		}
		select {
		case <-changed:
		case <-poll:
		case <-ctx.Done():
			return
		}
	}
}

func (p *pump) ok(cursor, sent Seq) {
	p.mu.Lock()
	p.status.Cursor, p.status.Sent = cursor, sent
	p.status.LastSuccess = time.Now()
	p.status.LastError = ""
	p.status.Failures = 0
	p.mu.Unlock()
}

func (p *pump) fail(err error) {
	p.mu.Lock()
	p.status.LastError = err.Error()
	p.status.LastErrorAt = time.Now()
	p.status.Failures++
	n := p.status.Failures
	p.mu.Unlock()
	if n == 1 || n%20 == 0 {
		p.l.opts.Logger.Warn("audit sink: delivery failed; will retry from cursor", "sink", p.sink.Name(), "err", err, "failures", n)
	}
}
