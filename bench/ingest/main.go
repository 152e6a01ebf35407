// Command ingest benchmarks Cairn's durable write path against the limits
// of this machine measured in the same run: SHA-256, zstd, the age payload
// cipher and durable file creation.
//
//	go run ./bench/ingest [-n 20000] [-size 10240] [-runs 3] [-dir /path/on/target/fs]
//
// It imports a generated mbox of realistic ~10 KB messages, and the shared
// corpus of malformed mail, through the same code as `cairn import`
// (importer.Run into archive.Store on the filesystem store), each run into a
// fresh archive, and prints medians as a Markdown table for BENCHMARKS.md.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/archive/objstore/volume"
	"github.com/cairn-archive/cairn/archive/payload"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/ingest/importer"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

func main() {
	n := flag.Int("n", 20000, "generated messages per run")
	size := flag.Int("size", 10240, "approximate size of a generated message")
	runs := flag.Int("runs", 3, "runs of each measurement (the median is reported)")
	dir := flag.String("dir", "", "folder on the filesystem to measure (default: a temp folder)")
	corpus := flag.String("corpus", "../shared/corpus/enmime", "folder of real-world messages")
	workers := flag.Int("workers", importer.DefaultWorkers, "concurrent writers, as cairn import --workers")
	flag.StringVar(&layout, "layout", "volumes", "local store layout: volumes (the default store) or files (one file per object)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the ingest runs to this file")
	verifyProfile := flag.String("verifyprofile", "", "with -verify: write a CPU profile of the verify runs to this file")
	verify := flag.Bool("verify", false, "also time cairn verify and verify --full of the imported archive against SHA-256 and decrypt + decompress + hash")
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "cairn-bench")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	ctx := context.Background()

	// The corpus: a generated mbox and the shared one.
	g := gen.New(2026)
	var msgs [][]byte
	var total int64
	mboxPath := filepath.Join(*dir, "bench.mbox")
	f, err := os.Create(mboxPath)
	check(err)
	mw := gen.NewMboxWriter(f)
	for i := 0; i < *n; i++ {
		m := g.Next(*size)
		msgs = append(msgs, m.Raw)
		total += int64(len(m.Raw))
		check(mw.Write(m.Sender, m.Date, m.Raw))
	}
	check(mw.Flush())
	check(f.Close())
	avg := total / int64(len(msgs))
	fmt.Fprintf(os.Stderr, "generated %d messages, %.1f MB, %d bytes on average\n", len(msgs), float64(total)/1e6, avg)

	// Nothing is deleted until the end: on ext4, inodes freed moments ago
	// make every new inode allocation slow (find_inode_bit skips recently
	// deleted inodes, reading their inode table blocks), which would charge
	// one run's cleanup to the next.
	var lastArchive string
	ingestRuns := func(paths []string) (rates, mbs []float64) {
		for r := 0; r < *runs; r++ {
			rate, mb, d := ingest(ctx, *dir, paths, *workers)
			lastArchive = d
			rates = append(rates, rate)
			mbs = append(mbs, mb)
			fmt.Fprintf(os.Stderr, "run %d: %.0f msgs/s, %.1f MB/s\n", r+1, rate, mb)
		}
		return rates, mbs
	}
	if *cpuprofile != "" {
		pf, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(pf))
	}
	rates, mbs := ingestRuns([]string{mboxPath})
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	generatedArchive := lastArchive
	var corpusRates []float64
	if fi, err := os.Stat(*corpus); err == nil && fi.IsDir() {
		corpusRates, _ = ingestRuns([]string{*corpus})
	}

	// Machine limits, one core each (except durable files: concurrent,
	// like the archive's writers).
	limits := []row{
		{"SHA-256 (1 core)", "MB/s", median(*runs, func() float64 { return sha256Rate(msgs) })},
		{"zstd as the archive compresses (fast), these messages (1 core)", "MB/s", median(*runs, func() float64 { return zstdRate(msgs) })},
		{"age payload, 1 MB (1 core)", "MB/s", median(*runs, ageRate)},
		{fmt.Sprintf("durable new %d B file, %d writers", avg/2, *workers), "files/s", median(*runs, func() float64 { return durableFiles(*dir, int(avg/2), *workers) })},
	}

	fmt.Printf("\n| measurement | median | unit |\n|---|---|---|\n")
	for _, l := range limits {
		fmt.Printf("| %s | %.0f | %s |\n", l.name, l.value, l.unit)
	}
	ingestRate, ingestMB := med(rates), med(mbs)
	fmt.Printf("| **cairn import, %d generated messages (~%d B), local store (%s), durable** | **%.0f** | msgs/s |\n", *n, avg, layout, ingestRate)
	fmt.Printf("| cairn import, same, throughput | %.1f | MB/s |\n", ingestMB)
	if len(corpusRates) > 0 {
		fmt.Printf("| cairn import, shared corpus (%s) | %.0f | msgs/s |\n", *corpus, med(corpusRates))
	}
	files := limits[3].value
	fmt.Printf("\nRatios: ingest uses %.0f%% of one core's SHA-256 throughput and %.0f%% of one core's zstd. ", 100*ingestMB/limits[0].value, 100*ingestMB/limits[1].value)
	fmt.Printf("Each message writes 2 objects: had each been a classic durable file (write, fsync, rename, fsync the folder) at this concurrency, ingest could not pass %.0f msgs/s; it reaches %.0f (%.2fx).\n", files/2, ingestRate, ingestRate/(files/2))
	fmt.Printf("GOMAXPROCS %d; %d runs, medians.\n", runtime.GOMAXPROCS(0), *runs)
	if *verify {
		if *verifyProfile != "" {
			pf, err := os.Create(*verifyProfile)
			check(err)
			check(pprof.StartCPUProfile(pf))
			defer pprof.StopCPUProfile()
		}
		verifyBench(ctx, generatedArchive, msgs, *runs, limits[0].value)
	}
}

// verifyBench times Verify (the chain: ledger signatures and hashes, the
// index against the ledger, every object present) and Verify Full (every
// message also decrypted, decompressed and hashed) on an archive the
// ingest runs made, against one core's SHA-256 and one core's
// decrypt + decompress + hash of the same messages.
func verifyBench(ctx context.Context, dir string, msgs [][]byte, runs int, shaMB float64) {
	fullLimit := median(runs, func() float64 { return openRate(msgs) })
	var raw int64
	for _, m := range msgs {
		raw += int64(len(m))
	}
	type res struct{ secs, msgsPerS, mbs float64 }
	measure := func(full bool) res {
		var rs []res
		for r := 0; r < runs; r++ {
			st := openArchive(ctx, dir)
			t0 := time.Now()
			rep, err := st.Verify(ctx, archive.VerifyOptions{Full: full})
			check(err)
			el := time.Since(t0).Seconds()
			if !rep.OK() {
				check(fmt.Errorf("verify found %d problems: %v", len(rep.Problems), rep.Problems[0]))
			}
			check(st.Close())
			closeObjects(st.Objects())
			rs = append(rs, res{el, float64(rep.Messages) / el, float64(raw) / el / 1e6})
			fmt.Fprintf(os.Stderr, "verify full=%v run %d: %.2f s, %d entries, %d messages\n", full, r+1, el, rep.Entries, rep.Messages)
		}
		slices.SortFunc(rs, func(a, b res) int { return cmpFloat(a.secs, b.secs) })
		return rs[len(rs)/2]
	}
	chain, full := measure(false), measure(true)
	fmt.Printf("\n| verify, %d messages | seconds | msgs/s | MB/s of mail | limit (1 core) | ratio to the limit |\n|---|---|---|---|---|---|\n", len(msgs))
	fmt.Printf("| `cairn verify` (chain, index, objects present) | %.2f | %.0f | %.0f | SHA-256 %.0f MB/s | %.2f |\n", chain.secs, chain.msgsPerS, chain.mbs, shaMB, chain.mbs/shaMB)
	fmt.Printf("| `cairn verify --full` (and every message decrypted, decompressed, hashed) | %.2f | %.0f | %.0f | decrypt + decompress + hash %.0f MB/s | %.2f |\n", full.secs, full.msgsPerS, full.mbs, fullLimit, full.mbs/fullLimit)
	fmt.Printf("\nMB/s counts the original mail bytes; the limits are one core's, measured now on the same messages (verify uses both cores). Medians of %d runs.\n", runs)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openRate is one core's rate, in MB/s of original mail, at undoing what
// the archive did to each message: age payload decryption (a known file
// key, no asymmetric step, as the archive reads), zstd decoding and
// SHA-256 of the result.
func openRate(msgs [][]byte) float64 {
	enc, err := zstd.NewWriter(nil, payload.EncoderOptions(payload.Fast)...)
	check(err)
	dec, err := zstd.NewReader(nil)
	check(err)
	id, err := age.GenerateX25519Identity()
	check(err)
	rcpt := &keyCatcher{r: id.Recipient()}
	sealed := make([][]byte, len(msgs))
	var total int64
	for i, m := range msgs {
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, rcpt)
		check(err)
		_, err = w.Write(enc.EncodeAll(m, nil))
		check(err)
		check(w.Close())
		sealed[i] = buf.Bytes()
		total += int64(len(m))
	}
	keys := rcpt.keys
	out := make([]byte, 0, 1<<20)
	t0 := time.Now()
	for i, c := range sealed {
		r, err := age.Decrypt(bytes.NewReader(c), age.NewInjectedFileKeyIdentity(keys[i]))
		check(err)
		z, err := io.ReadAll(r)
		check(err)
		out, err = dec.DecodeAll(z, out[:0])
		check(err)
		sha256.Sum256(out)
	}
	return float64(total) / time.Since(t0).Seconds() / 1e6
}

// keyCatcher wraps a recipient and remembers each file key it wraps.
type keyCatcher struct {
	r    age.Recipient
	keys [][]byte
}

func (k *keyCatcher) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	k.keys = append(k.keys, bytes.Clone(fileKey))
	return k.r.Wrap(fileKey)
}

// closeObjects releases a local store's lock, so the next run may open it.
func closeObjects(objs objstore.Store) {
	if c, ok := objs.(io.Closer); ok {
		check(c.Close())
	}
}

// openObjects opens the local store of the archive in d, in -layout.
func openObjects(d string) objstore.Store {
	var objs objstore.Store
	var err error
	if layout == "files" {
		objs, err = fs.Open(filepath.Join(d, "objects"))
	} else {
		objs, err = volume.Open(filepath.Join(d, "objects"))
	}
	check(err)
	return objs
}

func openArchive(ctx context.Context, d string) *archive.Store {
	objs := openObjects(d)
	ids, err := crypto.LoadIdentities(filepath.Join(d, "keys", "archive.key"))
	check(err)
	ring, err := crypto.LoadKeyring(ctx, objs, ids)
	check(err)
	sk, err := crypto.LoadSigningKey(filepath.Join(d, "keys", "ledger.key"))
	check(err)
	st, err := archive.Open(ctx, archive.Options{Dir: d, Objects: objs, Keys: ring, Signing: sk, LogID: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	check(err)
	return st
}

var layout string

type row struct {
	name, unit string
	value      float64
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func median(runs int, f func() float64) float64 {
	var xs []float64
	for i := 0; i < runs; i++ {
		xs = append(xs, f())
	}
	return med(xs)
}

func med(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func sha256Rate(msgs [][]byte) float64 {
	start := time.Now()
	var n int64
	for time.Since(start) < time.Second {
		for _, m := range msgs[:min(len(msgs), 2000)] {
			sha256.Sum256(m)
			n += int64(len(m))
		}
	}
	return float64(n) / time.Since(start).Seconds() / 1e6
}

func zstdRate(msgs [][]byte) float64 {
	e, _ := zstd.NewWriter(nil, append(payload.EncoderOptions(payload.Fast), zstd.WithEncoderConcurrency(1))...)
	var out []byte
	start := time.Now()
	var n int64
	for time.Since(start) < time.Second {
		for _, m := range msgs[:min(len(msgs), 2000)] {
			out = e.EncodeAll(m, out[:0])
			n += int64(len(m))
		}
	}
	return float64(n) / time.Since(start).Seconds() / 1e6
}

func ageRate() float64 {
	id, _ := age.GenerateX25519Identity()
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	start := time.Now()
	var n int64
	for time.Since(start) < time.Second {
		w, _ := age.Encrypt(io.Discard, id.Recipient())
		w.Write(buf)
		w.Close()
		n += int64(len(buf))
	}
	return float64(n) / time.Since(start).Seconds() / 1e6
}

// durableFiles measures the classic durable write: write, fsync, rename
// into a sharded folder, fsync the folder, from concurrent writers.
func durableFiles(dir string, size, writers int) float64 {
	d, err := os.MkdirTemp(dir, "files")
	check(err)
	for i := 0; i < 256; i++ {
		os.Mkdir(filepath.Join(d, fmt.Sprintf("%02x", i)), 0o755)
	}
	data := make([]byte, size)
	rand.Read(data)
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < 2*time.Second {
				i := n.Add(1)
				sub := filepath.Join(d, fmt.Sprintf("%02x", i%256))
				tmp := filepath.Join(sub, ".t"+strconv.FormatInt(i, 10))
				f, err := os.Create(tmp)
				check(err)
				f.Write(data)
				f.Sync()
				f.Close()
				os.Rename(tmp, filepath.Join(sub, strconv.FormatInt(i, 10)))
				sd, _ := os.Open(sub)
				sd.Sync()
				sd.Close()
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// ingest imports paths into a fresh archive and returns messages/s and MB/s.
func ingest(ctx context.Context, dir string, paths []string, workers int) (float64, float64, string) {
	d, err := os.MkdirTemp(dir, "archive")
	check(err)
	objs := openObjects(d)
	ids, err := crypto.CreateIdentities(filepath.Join(d, "keys", "archive.key"))
	check(err)
	ring, err := crypto.CreateKeyring(ctx, objs, ids, nil)
	check(err)
	sk, err := crypto.CreateSigningKey(filepath.Join(d, "keys", "ledger.key"), "bench.example/cairn")
	check(err)
	st, err := archive.Open(ctx, archive.Options{Dir: d, Objects: objs, Keys: ring, Signing: sk, LogID: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	check(err)
	start := time.Now()
	sum, err := importer.Run(ctx, st, paths, importer.Options{Workers: workers})
	check(err)
	check(st.Close()) // includes the final checkpoint: part of the cost
	el := time.Since(start).Seconds()
	closeObjects(objs)
	cs := st.Stats()
	if cs.Batches > 0 {
		fmt.Fprintf(os.Stderr, "  %d group commits, %.1f entries each; segment stage %v, index stage %v per commit\n",
			cs.Batches, float64(cs.Entries)/float64(cs.Batches), cs.SegmentTime/time.Duration(cs.Batches), cs.IndexTime/time.Duration(cs.Batches))
	}
	if sum.Failed > 0 {
		check(fmt.Errorf("%d messages failed", sum.Failed))
	}
	_ = bytes.MinRead
	return float64(sum.Messages()) / el, float64(sum.Bytes) / el / 1e6, d
}
