package audit

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// BenchmarkRecord measures Record from many goroutines (an IMAP server's
// sessions), each call durable on return. Run it the same way every time:
//
//	go test ./audit -run '^$' -bench Record -benchtime 20000x
//
// events/s is the figure to compare; "sink down" has a syslog sink whose
// receiver refuses connections, "sink up" a JSON-lines file sink; recorders
// is the number of concurrent callers (IMAP sessions). Each Record is
// durable on return, so throughput is commits/s x events per group commit,
// and a group commit holds at most one event per waiting caller.
func BenchmarkRecord(b *testing.B) {
	closedAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		a := ln.Addr().String()
		ln.Close()
		return a
	}
	for _, c := range []struct {
		name string
		sink func() Sink
	}{
		{"no sink", nil},
		{"sink down", func() Sink {
			s, _ := NewSyslogSink(SyslogConfig{Name: "down", Address: closedAddr()})
			return s
		}},
		{"sink up", func() Sink {
			s, _ := NewFileSink(FileConfig{Name: "file", Path: filepath.Join(b.TempDir(), "a.jsonl")})
			return s
		}},
	} {
		for _, par := range []int{32, 128} { // x GOMAXPROCS (2) concurrent recorders
			b.Run(fmt.Sprintf("%s/recorders=%d", c.name, par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
				e := newEnv(b, func(o *Options) {
					o.SegmentEvents = 4096
					if c.sink != nil {
						o.Sinks = []Sink{c.sink()}
					}
				})
				ev := sampleEvent(1)
				b.SetParallelism(par)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := e.log.Record(context.Background(), ev); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			})
		}
	}
}
