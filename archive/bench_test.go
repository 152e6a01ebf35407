package archive

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// BenchmarkArchiveConcurrent archives ~10 KB messages from 16 writers into
// a filesystem store: durable, group-committed, as `cairn import` does.
func BenchmarkArchiveConcurrent(b *testing.B) {
	for _, writers := range []int{16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchArchive(b, writers) })
	}
}

func benchArchive(b *testing.B, writers int) {
	h := newHarness(b)
	g := gen.New(7)
	msgs := make([][]byte, 2000)
	var total int64
	for i := range msgs {
		msgs[i] = g.Next(10240).Raw
		total += int64(len(msgs[i]))
	}
	b.SetBytes(total / int64(len(msgs)))
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				raw := msgs[i%int64(len(msgs))]
				if i >= int64(len(msgs)) {
					// Unique bytes every time: no deduplication.
					raw = append([]byte("X-Bench: "+itoa(i)+"\r\n"), raw...)
				}
				if _, err := h.st.Archive(context.Background(), env("a@example.com"), raw); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func itoa(i int64) string {
	var buf [20]byte
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(buf[n:])
}
