package index

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkCommit writes batches of messages, each with its entry, its
// delivery (two recipients, two custodians) and optionally 250 blind
// tokens, one transaction a batch: the index stage's work a message, and
// how it falls as a transaction carries more messages (the SMTP receiver's
// index stage gathers archive.Options.IndexWait of group commits).
//
// grown= first archives that many messages: on a grown archive each random
// key (a message's SHA-256) lands on a page of its own.
func BenchmarkCommit(b *testing.B) {
	for _, c := range []struct {
		batch      int
		withTokens bool
		grown      int
	}{{32, false, 0}, {32, true, 0}, {110, false, 0}, {275, false, 0}, {550, false, 0}, {550, false, 300000}} {
		name := fmt.Sprintf("batch=%d/tokens=%v", c.batch, c.withTokens)
		if c.grown > 0 {
			name += fmt.Sprintf("/grown=%d", c.grown)
		}
		b.Run(name, func(b *testing.B) {
			ix, err := Open(filepath.Join(b.TempDir(), "index.db"), []byte("k"))
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			ix.FilterSHAs() // as the archive's writer does
			<-ix.loadedSHAs
			header := []byte(strings.Repeat("Received: from a.example.com by b.example.com; Thu, 26 Nov 2026\r\n", 20))
			var toks []string
			for i := 0; i < 250; i++ {
				var r [10]byte
				rand.Read(r[:])
				toks = append(toks, fmt.Sprintf("%x", r[:8]))
			}
			tokens := strings.Join(toks, " ")
			seq := uint64(0)
			commit := func(n int) {
				batch := &Batch{Tokens: map[uint64]string{}}
				for j := 0; j < n; j++ {
					m := MessageRow{Seq: seq, Size: 10000, Object: fmt.Sprintf("messages/aa/bb/%064d", seq), KeyObject: fmt.Sprintf("keys/aa/bb/%064d", seq),
						ArchivedAt: time.Now(), From: "a@example.com", To: "b@example.com", Subject: "hello", Header: header, Structure: make([]byte, 300)}
					rand.Read(m.SHA256[:])
					batch.Messages = append(batch.Messages, m)
					batch.Entries = append(batch.Entries, EntryRow{Seq: seq, Kind: "message", Line: make([]byte, 700)})
					batch.Deliveries = append(batch.Deliveries, DeliveryRow{Seq: seq, Message: seq, Source: "smtp", Envelope: make([]byte, 300),
						Recipients: []Recipient{{"b@example.com", "to"}, {"c@example.com", "bcc"}}, Custodians: []string{"b@example.com", "c@example.com"}})
					if c.withTokens {
						batch.Tokens[seq] = tokens
					}
					seq++
				}
				if err := ix.Commit(batch); err != nil {
					b.Fatal(err)
				}
			}
			for seq < uint64(c.grown) {
				commit(5000)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				commit(c.batch)
			}
			b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*c.batch), "µs/msg")
		})
	}
}

func BenchmarkIndexText(b *testing.B) {
	ix, err := Open(filepath.Join(b.TempDir(), "index.db"), []byte("k"))
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	var toks []string
	for i := 0; i < 250; i++ {
		var r [8]byte
		rand.Read(r[:])
		toks = append(toks, fmt.Sprintf("%x", r[:6]))
	}
	n := b.N * 500
	batch := &Batch{Tokens: map[uint64]string{}}
	for i := 0; i < n; i++ {
		// A realistic vocabulary: most words shared between messages.
		batch.Tokens[uint64(i)] = strings.Join(toks[i%50:i%50+200], " ")
	}
	if err := ix.Commit(batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if err := ix.FlushText(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
