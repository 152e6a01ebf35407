package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/archive/objstore/volume"
	"github.com/cairn-archive/cairn/archive/payload"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// harness is an archive in a temp folder, reopenable.
type harness struct {
	t       testing.TB
	dir     string
	objs    *fs.Store
	ring    *crypto.Keyring
	signing *crypto.SigningKey
	st      *Store
	// compression of the next open
	compression payload.Compression
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	dir := t.TempDir()
	objs, err := fs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/cairn")
	h := &harness{t: t, dir: dir, objs: objs, ring: ring, signing: sk}
	h.open()
	t.Cleanup(func() {
		if h.st != nil {
			h.st.Close()
		}
	})
	return h
}

func (h *harness) options() Options {
	return Options{
		Dir:                h.dir,
		Objects:            h.objs,
		Keys:               h.ring,
		Signing:            h.signing,
		LogID:              "test",
		CheckpointEvery:    1 << 40,
		CheckpointInterval: time.Hour,
		Compression:        h.compression,
	}
}

func (h *harness) open() {
	h.t.Helper()
	st, err := Open(context.Background(), h.options())
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.st.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.open()
}

func (h *harness) path(key string) string {
	return filepath.Join(h.dir, "objects", filepath.FromSlash(key))
}

// rewrite replaces a stored file's bytes behind the store's back.
func (h *harness) rewrite(key string, data []byte) {
	h.t.Helper()
	p := h.path(key)
	os.Chmod(p, 0o640)
	if err := os.WriteFile(p, data, 0o440); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) read(key string) []byte {
	h.t.Helper()
	b, err := os.ReadFile(h.path(key))
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func env(custodian string) *ingest.Envelope {
	return &ingest.Envelope{
		Source:     ingest.SourceSMTP,
		Sender:     "sender@example.org",
		Recipients: []ingest.Recipient{{Address: custodian, Kind: ingest.KindTo}, {Address: "hidden@example.com", Kind: ingest.KindBcc}},
		ReceivedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	}
}

func (h *harness) archive(raw []byte, e *ingest.Envelope) ingest.Receipt {
	h.t.Helper()
	rc, err := h.st.Archive(context.Background(), e, raw)
	if err != nil {
		h.t.Fatal(err)
	}
	return rc
}

func (h *harness) cat(seq uint64) []byte {
	h.t.Helper()
	m, err := h.st.OpenMessage(context.Background(), seq)
	if err != nil {
		h.t.Fatal(err)
	}
	defer m.Close()
	b, err := m.Bytes()
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (h *harness) verify(full bool) *VerifyReport {
	h.t.Helper()
	rep, err := h.st.Verify(context.Background(), VerifyOptions{Full: full})
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

func TestArchiveReadBackAndDedup(t *testing.T) {
	h := newHarness(t)
	g := gen.New(1)
	var msgs [][]byte
	for i := 0; i < 50; i++ {
		msgs = append(msgs, g.Next(4000+i*300).Raw)
	}
	seqs := make([]uint64, len(msgs))
	for i, raw := range msgs {
		rc := h.archive(raw, env("alice@example.com"))
		if rc.Duplicate || rc.Seq != rc.MessageSeq {
			t.Fatalf("message %d: unexpected receipt %+v", i, rc)
		}
		if rc.SHA256 != sha256.Sum256(raw) {
			t.Fatalf("message %d: receipt hash", i)
		}
		seqs[i] = rc.Seq
	}
	// The same bytes again: one object, a second delivery.
	rc := h.archive(msgs[3], env("bob@example.com"))
	if !rc.Duplicate || rc.MessageSeq != seqs[3] || rc.Seq == seqs[3] {
		t.Fatalf("duplicate receipt %+v", rc)
	}
	cust, err := h.st.Index().Custodians(context.Background(), seqs[3])
	if err != nil || strings.Join(cust, ",") != "alice@example.com,bob@example.com,hidden@example.com" {
		t.Fatalf("custodians %v %v", cust, err)
	}
	for i, seq := range seqs {
		if got := h.cat(seq); !bytes.Equal(got, msgs[i]) {
			t.Fatalf("message %d differs after read back", i)
		}
	}
	// Resolve by delivery seq and by SHA-256.
	if s, err := h.st.Resolve(context.Background(), fmt.Sprint(rc.Seq)); err != nil || s != seqs[3] {
		t.Fatalf("resolve delivery: %d %v", s, err)
	}
	if s, err := h.st.Resolve(context.Background(), fmt.Sprintf("%x", rc.SHA256)); err != nil || s != seqs[3] {
		t.Fatalf("resolve sha: %d %v", s, err)
	}
	h.reopen()
	if rep := h.verify(true); !rep.OK() || rep.Messages != 50 || rep.Deliveries != 51 {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestDeliveryKeyIsIdempotent(t *testing.T) {
	h := newHarness(t)
	raw := gen.New(2).Next(3000).Raw
	e := env("alice@example.com")
	e.DeliveryKey = "import:/x/mbox@0"
	first := h.archive(raw, e)
	again := h.archive(raw, e)
	if !again.Replayed || again.Seq != first.Seq {
		t.Fatalf("replay receipt %+v, first %+v", again, first)
	}
	_, _, d, _ := h.st.Index().Counts(context.Background())
	if d != 1 {
		t.Fatalf("%d deliveries recorded, want 1", d)
	}
	// Other bytes under the same key are refused, not silently dropped.
	_, err := h.st.Archive(context.Background(), e, []byte("Subject: other\r\n\r\nother\r\n"))
	if !errors.Is(err, ingest.ErrRefused) {
		t.Fatalf("other bytes under a used key: %v", err)
	}
}

func TestConcurrentWritersShareCommits(t *testing.T) {
	h := newHarness(t)
	g := gen.New(3)
	const n = 400
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next(5000).Raw
	}
	var wg sync.WaitGroup
	receipts := make([]ingest.Receipt, n)
	errs := make([]error, n)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				// Every message twice, from two writers at once: exactly
				// one message entry each.
				receipts[i], errs[i] = h.st.Archive(context.Background(), env("a@example.com"), msgs[i])
			}
		}(w)
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 16 {
				if _, err := h.st.Archive(context.Background(), env("b@example.com"), msgs[i]); err != nil {
					t.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	entries, messages, deliveries, err := h.st.Index().Counts(context.Background())
	if err != nil || messages != n || deliveries != 2*n || entries != 2*n {
		t.Fatalf("counts: entries %d messages %d deliveries %d err %v", entries, messages, deliveries, err)
	}
	var segs int
	h.objs.List(context.Background(), "ledger/test/", func(objstore.Info) error { segs++; return nil })
	if segs >= 2*n {
		t.Fatalf("%d segments for %d entries: no group commit", segs, 2*n)
	}
	t.Logf("%d entries in %d segments", 2*n, segs)
	for i := 0; i < n; i += 37 {
		if !bytes.Equal(h.cat(receipts[i].MessageSeq), msgs[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
	h.reopen()
	if rep := h.verify(true); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

func TestNoPlaintextAtRest(t *testing.T) {
	h := newHarness(t)
	g := gen.New(4)
	var tokens []string
	for i := 0; i < 20; i++ {
		m := g.Next(10000)
		tokens = append(tokens, m.Token)
		h.archive(m.Raw, env("alice@example.com"))
	}
	h.st.Close()
	h.st = nil
	filepath.Walk(h.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, tok := range tokens {
			if bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(tok))) {
				t.Errorf("body word %q found in plaintext in %s", tok, p)
			}
		}
		return nil
	})
}

// TestCompressionSetting: Options.Compression decides how new objects are
// compressed (Compact's are smaller), and an archive that holds both kinds,
// after the setting changed, reads and verifies whole.
func TestCompressionSetting(t *testing.T) {
	g := gen.New(7)
	var msgs [][]byte
	for range 40 {
		msgs = append(msgs, g.Next(12000).Raw)
	}
	stored := map[payload.Compression]int64{}
	for _, c := range []payload.Compression{payload.Fast, payload.Compact} {
		h := newHarness(t)
		h.compression = c
		h.reopen()
		var seqs []uint64
		for _, m := range msgs[:30] {
			seqs = append(seqs, h.archive(m, env("alice@example.com")).Seq)
		}
		rep := h.verify(true)
		if !rep.OK() {
			t.Fatalf("%v: verify: %v", c, rep.Problems)
		}
		stored[c] = rep.Bytes
		// The setting changes; what is stored stays as it is.
		h.compression = 1 - c
		h.reopen()
		for _, m := range msgs[30:] {
			seqs = append(seqs, h.archive(m, env("alice@example.com")).Seq)
		}
		for i, seq := range seqs {
			if !bytes.Equal(h.cat(seq), msgs[i]) {
				t.Fatalf("%v then %v: message %d reads back other bytes", c, 1-c, i)
			}
		}
		if rep := h.verify(true); !rep.OK() || rep.Messages != 40 {
			t.Fatalf("%v then %v: verify: %d messages, %v", c, 1-c, rep.Messages, rep.Problems)
		}
	}
	if stored[payload.Compact] >= stored[payload.Fast] {
		t.Fatalf("compact objects %d bytes, fast %d: compact is not smaller", stored[payload.Compact], stored[payload.Fast])
	}
	t.Logf("30 messages: fast %d bytes, compact %d", stored[payload.Fast], stored[payload.Compact])
}

func TestOversizeRefused(t *testing.T) {
	h := newHarness(t)
	h.st.opts.MaxMessageSize = 1000
	_, err := h.st.Archive(context.Background(), env("a@example.com"), bytes.Repeat([]byte("x"), 1001))
	if !errors.Is(err, ingest.ErrRefused) {
		t.Fatalf("oversize: %v", err)
	}
}

// failingStore fails Puts of keys with a prefix while fail is set.
type failingStore struct {
	objstore.Store
	mu     sync.Mutex
	prefix string
}

func (f *failingStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	p := f.prefix
	f.mu.Unlock()
	if p != "" && strings.HasPrefix(key, p) {
		return fmt.Errorf("injected failure writing %s", key)
	}
	return f.Store.Put(ctx, key, r, size)
}

func (f *failingStore) set(prefix string) {
	f.mu.Lock()
	f.prefix = prefix
	f.mu.Unlock()
}

func TestStoreFailureAcknowledgesNothing(t *testing.T) {
	h := newHarness(t)
	fail := &failingStore{Store: h.objs}
	h.st.Close()
	opts := h.options()
	opts.Objects = fail
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	g := gen.New(5)
	for _, prefix := range []string{"keys/", "messages/", "ledger/"} {
		fail.set(prefix)
		raw := g.Next(3000).Raw
		if _, err := st.Archive(context.Background(), env("a@example.com"), raw); err == nil {
			t.Fatalf("failing %s: acknowledged", prefix)
		}
		fail.set("")
		// Retried after the store returns: archived once.
		rc, err := st.Archive(context.Background(), env("a@example.com"), raw)
		if err != nil || rc.Duplicate {
			t.Fatalf("retry after %s failure: %+v %v", prefix, rc, err)
		}
		if !bytes.Equal(h.cat(rc.Seq), raw) {
			t.Fatal("retried message differs")
		}
	}
	h.reopen()
	rep, err := h.st.Verify(context.Background(), VerifyOptions{Full: true, Orphans: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep.Problems, err)
	}
	if len(rep.Warnings) == 0 {
		t.Fatal("orphans of the failed writes not reported")
	}
}

// An index that fails after the segment is written: the writers are not
// acknowledged, later batches wait, and once the index works again it
// catches up from the ledger and a retry records the message once more as
// a delivery, never as a second copy.
func TestIndexFailureCatchesUp(t *testing.T) {
	h := newHarness(t)
	g := gen.New(9)
	first := g.Next(3000).Raw
	h.archive(first, env("a@example.com"))
	db := h.st.Index().DB()
	if _, err := db.Exec(`CREATE TRIGGER fail BEFORE INSERT ON entries BEGIN SELECT RAISE(ABORT, 'injected index failure'); END`); err != nil {
		t.Fatal(err)
	}
	raw := g.Next(3000).Raw
	if _, err := h.st.Archive(context.Background(), env("a@example.com"), raw); err == nil {
		t.Fatal("acknowledged with a failing index")
	}
	if _, err := h.st.Archive(context.Background(), env("a@example.com"), g.Next(3000).Raw); err == nil {
		t.Fatal("acknowledged while the index is behind")
	}
	if _, err := db.Exec(`DROP TRIGGER fail`); err != nil {
		t.Fatal(err)
	}
	rc, err := h.st.Archive(context.Background(), env("a@example.com"), raw)
	if err != nil {
		t.Fatal(err)
	}
	if !rc.Duplicate {
		t.Fatalf("the retry stored the bytes again: %+v", rc)
	}
	if got := h.cat(rc.MessageSeq); !bytes.Equal(got, raw) {
		t.Fatal("message differs")
	}
	entries, messages, deliveries, _ := h.st.Index().Counts(context.Background())
	if entries != 3 || messages != 2 || deliveries != 3 { // the third message never reached the ledger: its Archive refused while the index was behind
		t.Fatalf("entries %d messages %d deliveries %d", entries, messages, deliveries)
	}
	h.reopen()
	if rep := h.verify(true); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}

func shaSum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func walkFiles(dir string, fn func(path string, data []byte)) {
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		fn(p, b)
		return nil
	})
}

// The write path on the volume store, whose segment Put also flushes the
// batch's objects (no separate Sync): concurrent writers, read back,
// verify, reopen.
func TestOnVolumeStore(t *testing.T) {
	dir := t.TempDir()
	objs, err := volume.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	ctx := context.Background()
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/vol")
	opts := Options{Dir: dir, Objects: objs, Keys: ring, Signing: sk, LogID: "vol"}
	st, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	g := gen.New(91)
	msgs := make([][]byte, 300)
	for i := range msgs {
		msgs[i] = g.Next(4000).Raw
	}
	seqs := make([]uint64, len(msgs))
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(msgs); i += 16 {
				rc, err := st.Archive(ctx, env("v@example.com"), msgs[i])
				if err != nil {
					t.Error(err)
					return
				}
				seqs[i] = rc.Seq
			}
		}(w)
	}
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i, seq := range seqs {
		m, err := st.OpenMessage(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := m.Bytes()
		m.Close()
		if !bytes.Equal(b, msgs[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
	rep, err := st.Verify(ctx, VerifyOptions{Full: true, Orphans: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep.Problems, err)
	}
}

// FlushSearch right after Archive returns finds the message's words:
// it is free only when nothing was committed since the last flush.
func TestFlushSearchSeesWhatWasJustArchived(t *testing.T) {
	h := newHarness(t)
	h.st.Close()
	opts := h.options()
	// A slow hook after each index transaction: whatever the index stage
	// does after answering the writers happens after their next call.
	opts.OnIndexed = func(uint64) { time.Sleep(30 * time.Millisecond) }
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	ctx := context.Background()
	g := gen.New(12)
	for i := 0; i < 5; i++ {
		rc := h.archive(g.Next(3000).Raw, env("a@example.com"))
		if err := h.st.FlushSearch(ctx); err != nil {
			t.Fatal(err)
		}
		// fts reads docids from its content table: ask the full-text
		// index itself, with one of the message's tokens.
		db := h.st.Index().DB()
		var toks string
		if err := db.QueryRow(`SELECT tokens FROM fts_docs WHERE docid = ?`, int64(rc.Seq)).Scan(&toks); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM fts WHERE fts MATCH ? AND docid = ?`, strings.Fields(toks)[0], int64(rc.Seq)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("message %d not in the full-text index after FlushSearch", rc.Seq)
		}
		// Let the index stage finish and flush once more, so the next
		// message's check starts from a flush that covered everything.
		time.Sleep(60 * time.Millisecond)
		if err := h.st.FlushSearch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing new: the next flush does no work (and still succeeds).
	if err := h.st.FlushSearch(ctx); err != nil {
		t.Fatal(err)
	}
}

// closeCounter is an object store whose Close is counted.
type closeCounter struct {
	*fs.Store
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// An archive closes the object store it was handed over (OwnObjects), once,
// by either Close; never one it was only lent.
func TestOwnObjects(t *testing.T) {
	h := newHarness(t)
	h.st.Close()
	for _, own := range []bool{false, true} {
		for _, withCheckpoint := range []bool{false, true} {
			objs := &closeCounter{Store: h.objs}
			opts := h.options()
			opts.Objects, opts.OwnObjects = objs, own
			st, err := Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if withCheckpoint {
				err = st.Close()
			} else {
				err = st.CloseWithoutCheckpoint()
			}
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if want := map[bool]int{false: 0, true: 1}[own]; objs.closed != want {
				t.Errorf("own %v, checkpoint %v: object store closed %d times, want %d", own, withCheckpoint, objs.closed, want)
			}
		}
	}
	h.st = nil
}
