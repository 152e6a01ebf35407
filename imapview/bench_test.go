package imapview

import (
	"testing"

	"github.com/emersion/go-imap/v2"
)

// BenchmarkFetchBodies: UID FETCH 1:* BODY.PEEK[] of 2,000 generated
// messages (~12 KB) over 127.0.0.1 with go-imap's client.
func BenchmarkFetchBodies(b *testing.B) {
	f := newFixture(b, fixtureOpts{generated: 2000})
	c := f.auditor()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil || len(msgs) != 2000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*2000), "µs/msg")
}

// BenchmarkFetchMetadata: UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE
// ENVELOPE).
func BenchmarkFetchMetadata(b *testing.B) {
	f := newFixture(b, fixtureOpts{generated: 2000})
	c := f.auditor()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true}).Collect()
		if err != nil || len(msgs) != 2000 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*2000), "µs/msg")
}

// BenchmarkFetchBodiesRaw: the same FETCH read by a client that only
// counts bytes, so that the figure is the server's.
func BenchmarkFetchBodiesRaw(b *testing.B) {
	f := newFixture(b, fixtureOpts{generated: 2000})
	r := f.inbox()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.send("F UID FETCH 1:* (BODY.PEEK[])\r\n")
		r.until("F OK")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*2000), "µs/msg")
}
