package fs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// BenchmarkPut10KB measures durable 10 KB Puts, from one goroutine and from
// 16, next to the raw floor measured in the same run (write, fsync, rename,
// fsync the folder; BASELINE.md: ~680 µs per file, ~5,800 files/s with 16
// writers, on a quiet machine). Keys spread over 256 folders, created on
// first use, as in the archive's steady state. Run with
//
//	go test -run '^$' -bench Put10KB -benchtime 2000x ./archive/objstore/fs/
func BenchmarkPut10KB(b *testing.B) {
	data := bytes.Repeat([]byte("x"), 10<<10)
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("raw/writers=%d", writers), func(b *testing.B) {
			dir := b.TempDir()
			var n atomic.Int64
			run(b, writers, len(data), func() {
				i := n.Add(1)
				tmp := filepath.Join(dir, fmt.Sprintf(".tmp-%d", i))
				f, err := os.Create(tmp)
				if err != nil {
					b.Fatal(err)
				}
				f.Write(data)
				f.Sync()
				f.Close()
				os.Rename(tmp, filepath.Join(dir, fmt.Sprint(i)))
				objstore.SyncDir(dir)
			})
		})
		b.Run(fmt.Sprintf("store/writers=%d", writers), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			run(b, writers, len(data), func() {
				i := n.Add(1)
				key := fmt.Sprintf("messages/%02x/%016x", i&0xff, i)
				if err := s.Put(b.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
					b.Error(err)
				}
			})
		})
	}
}

func run(b *testing.B, writers, size int, op func()) {
	b.SetBytes(int64(size))
	if writers == 1 {
		for b.Loop() {
			op()
		}
	} else {
		b.SetParallelism(max(1, writers/2)) // GOMAXPROCS is 2 here
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				op()
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
}
