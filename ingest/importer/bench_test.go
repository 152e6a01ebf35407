package importer

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// nopArchive accepts everything at once, so benchmarks measure the importer.
type nopArchive struct{}

func (nopArchive) Archive(context.Context, *ingest.Envelope, []byte) (ingest.Receipt, error) {
	return ingest.Receipt{}, nil
}

// BenchmarkMboxReader: splitting and unquoting ~10 KB messages.
func BenchmarkMboxReader(b *testing.B) {
	var mbox bytes.Buffer
	w := gen.NewMboxWriter(&mbox)
	g := gen.New(1)
	for range 1000 {
		m := g.Next(10_000)
		w.Write(m.Sender, m.Date, m.Raw)
	}
	w.Flush()
	b.SetBytes(int64(mbox.Len()))
	for b.Loop() {
		rd := newMboxReader(bytes.NewReader(mbox.Bytes()), QuotingMboxrd, DefaultMaxMessageSize, 0)
		for {
			if _, err := rd.next(); err == io.EOF {
				break
			}
		}
	}
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkImport: the whole runner over an mbox and a Maildir of ~10 KB
// messages, into an archiver that costs nothing: the importer's ceiling.
func BenchmarkImport(b *testing.B) {
	c := writeCorpus(b, tempDir(b), 1000, 1)
	for b.Loop() {
		sum, err := Run(context.Background(), nopArchive{}, []string{c.mbox, c.maildir}, Options{})
		if err != nil || sum.Archived != 2000 {
			b.Fatal(sum, err)
		}
		b.SetBytes(sum.Bytes)
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
