//go:build integration

package harvest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/harvest/dovecottest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// hashOnly is an Archiver that only hashes: what the harvester and Dovecot
// reach without the archive's durable writes.
type hashOnly struct{}

func (hashOnly) Archive(_ context.Context, _ *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	return ingest.Receipt{SHA256: sha256.Sum256(raw)}, nil
}

// BenchmarkDovecotPull pulls a 5,000-message Dovecot INBOX per iteration,
// into an Archiver that only hashes and into the real archive with several
// worker counts, and reports msgs/s.
//
//	go test -tags integration -run '^$' -bench DovecotPull -benchtime 2x ./ingest/harvest
func BenchmarkDovecotPull(b *testing.B) {
	const n = 5000
	d := dovecottest.Start(b, dovecottest.Options{Users: map[string]string{"bench": "pw"}})
	g := gen.New(90)
	g.CRLF = true
	fill(b, d, g, "bench", "INBOX", n)
	d.Chown()
	snapshot(b, d, "bench", "pw") // Dovecot's indexes, page cache
	run := func(b *testing.B, workers int, archiver func() ingest.Archiver) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			a := archiver()
			h := newTestHarvester(b, a, Options{Workers: workers, StatePath: filepath.Join(b.TempDir(), "h.db")},
				sourceFor(b, d, "bench", "bench", "pw"))
			b.StartTimer()
			res := runOnce(b, h)
			if res[0].Err != nil || res[0].Archived != n {
				b.Fatalf("%+v", res[0])
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
	}
	b.Run("hash-only", func(b *testing.B) { run(b, DefaultWorkers, func() ingest.Archiver { return hashOnly{} }) })
	for _, w := range []int{16, 64, 128, 256} {
		b.Run(fmt.Sprintf("archive/workers=%d", w), func(b *testing.B) {
			run(b, w, func() ingest.Archiver { return openTestArchive(b) })
		})
	}
}
