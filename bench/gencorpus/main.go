// Command gencorpus writes a benchmark's mailbox: n generated messages
// (ingest/importer/gen, deterministic from the seed) into a Maildir, ~12 KB
// on average like BASELINE.md's Dovecot measurement (a mix of short mail
// and mail with attachments), every seen-every-th one \Seen.
//
//	go run ./bench/gencorpus -n 100000 -out MAILDIR -seed 1                 # bench/imap
//	go run ./bench/gencorpus -n 100000 -out MAILDIR -seed 6 -seen-every 10  # bench/harvest
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

func main() {
	n := flag.Int("n", 100000, "messages")
	out := flag.String("out", "", "Maildir to fill (cur/, new/, tmp/ are created)")
	seed := flag.Uint64("seed", 1, "generator seed")
	seenEvery := flag.Int("seen-every", 0, "mark every Nth message \\Seen (0: none)")
	flag.Parse()
	if *out == "" {
		log.Fatal("-out is required")
	}
	md, err := gen.CreateMaildir(*out)
	if err != nil {
		log.Fatal(err)
	}
	g := gen.New(*seed)
	sizes := rand.New(rand.NewPCG(*seed, 7))
	var total int64
	for i := 0; i < *n; i++ {
		var size int
		switch r := sizes.IntN(100); {
		case r < 65:
			size = 3000 + sizes.IntN(5000) // plain mail
		case r < 95:
			size = 10000 + sizes.IntN(20000) // with a small attachment
		default:
			size = 40000 + sizes.IntN(80000) // with a large one
		}
		m := g.Next(size)
		flags := ""
		if *seenEvery > 0 && i%*seenEvery == 0 {
			flags = "S"
		}
		if _, err := md.Deliver(m.Raw, m.Date, flags); err != nil {
			log.Fatal(err)
		}
		total += int64(len(m.Raw))
	}
	fmt.Printf("%d messages, %d bytes (%.1f KB average) in %s\n", *n, total, float64(total)/float64(*n)/1000, *out)
}
