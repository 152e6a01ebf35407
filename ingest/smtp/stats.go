package smtp

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the latency histogram:
// the time from the end of a message's data to the reply, which is almost
// all Archive (the group commit's fsync).
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Stats is a snapshot of the receiver's counters since it was created. The
// counters only grow (except SessionsOpen), as Prometheus counters do.
type Stats struct {
	// SessionsOpen is the number of sessions open now.
	SessionsOpen int64
	// Sessions counts every connection accepted for a session (refused
	// connections are in Refused or TempFailures, not here).
	Sessions uint64
	// Accepted counts messages answered 250 (archived); AcceptedBytes their
	// size as received (a journal report's whole size).
	Accepted      uint64
	AcceptedBytes uint64
	// Refused counts permanent refusals by reason: "network" (554 at
	// connect), "recipient" (550 5.1.1), "auth_required", "auth_failed",
	// "size" (552 5.3.4), "line_ending" (bare CR/LF), "line_length",
	// "archive_refused".
	Refused map[string]uint64
	// TempFailures counts 4xx answers by reason: "sessions",
	// "sessions_per_ip", "shutdown", "archive" (451 4.3.0), "memory" (452
	// 4.3.1), "timeout", "aborted".
	TempFailures map[string]uint64
	// Latency is the histogram of the time from the end of a message's data
	// to its 250, in seconds.
	Latency Histogram
}

// Histogram is a cumulative histogram, as Prometheus exposes one.
type Histogram struct {
	// UpperBounds are LatencyBuckets; Counts[i] is the number of
	// observations <= UpperBounds[i] (cumulative); Count includes those
	// above the last bound.
	UpperBounds []float64
	Counts      []uint64
	Count       uint64
	Sum         float64 // seconds
}

type counters struct {
	sessionsOpen  atomic.Int64
	sessions      atomic.Uint64
	accepted      atomic.Uint64
	acceptedBytes atomic.Uint64
	byReason      [numReasons]atomic.Uint64
	buckets       []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	latencyCount  atomic.Uint64
	latencyNanos  atomic.Uint64
}

func newCounters() *counters {
	return &counters{buckets: make([]atomic.Uint64, len(LatencyBuckets)+1)}
}

func (c *counters) refuse(r reason) { c.byReason[r].Add(1) }

func (c *counters) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	c.buckets[i].Add(1)
	c.latencyCount.Add(1)
	c.latencyNanos.Add(uint64(d.Nanoseconds()))
}

// Stats returns a snapshot of the counters. It is safe to call at any time,
// concurrently with sessions.
func (s *Server) Stats() Stats {
	c := s.counters
	st := Stats{
		SessionsOpen:  c.sessionsOpen.Load(),
		Sessions:      c.sessions.Load(),
		Accepted:      c.accepted.Load(),
		AcceptedBytes: c.acceptedBytes.Load(),
		Refused:       map[string]uint64{},
		TempFailures:  map[string]uint64{},
		Latency: Histogram{
			UpperBounds: append([]float64(nil), LatencyBuckets...),
			Counts:      make([]uint64, len(LatencyBuckets)),
		},
	}
	for r := reason(0); r < numReasons; r++ {
		m := st.Refused
		if r.temporary() {
			m = st.TempFailures
		}
		m[r.String()] = c.byReason[r].Load()
	}
	var cum uint64
	for i := range LatencyBuckets {
		cum += c.buckets[i].Load()
		st.Latency.Counts[i] = cum
	}
	st.Latency.Count = cum + c.buckets[len(LatencyBuckets)].Load()
	st.Latency.Sum = float64(c.latencyNanos.Load()) / 1e9
	return st
}
