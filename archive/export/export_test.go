package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/export/manifest"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
	"github.com/cairn-archive/cairn/retention"
)

// fill archives n generated messages, each to one of three custodians,
// every fifth delivered a second time to another; it returns the raw
// bytes by message seq.
func fill(h *harness, seed uint64, n int) map[uint64][]byte {
	g := gen.New(seed)
	custodians := []string{"alice@example.com", "bob@example.com", "carol@example.com"}
	out := map[uint64][]byte{}
	for i := range n {
		m := g.Next(2500 + i*97)
		rc := h.archive(m.Raw, delivery(m.Sender, custodians[i%3]))
		out[rc.MessageSeq] = m.Raw
		if i%5 == 0 {
			h.archive(m.Raw, delivery(m.Sender, custodians[(i+1)%3]))
		}
	}
	return out
}

func verifyExport(t *testing.T, h *harness, dir string) *manifest.Report {
	t.Helper()
	rep, err := manifest.Verify(context.Background(), dir, h.signing.Verifier, manifest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func readManifest(t *testing.T, dir string) *manifest.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, manifest.FileManifest))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExportCase: an export of a case holds exactly what its holds cover,
// byte for byte, verifies, and is audited with its count and bytes.
func TestExportCase(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	raws := fill(h, 1, 40)
	if _, err := h.m.PlaceHold(ctx, tester, retention.HoldSpec{Case: "C-1", Reason: "Acme v. Corp", Custodians: []string{"alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, retention.HoldSpec{Case: "C-1", Reason: "and more", Query: "FROM example"}); err != nil {
		t.Fatal(err)
	}
	reports, err := h.m.ShowHold(ctx, "C-1")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(h.dir, "exports", "c1")
	opts := h.options(out)
	opts.Case = "C-1"
	var phases []string
	opts.Progress = func(p Progress) {
		if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
			phases = append(phases, p.Phase)
		}
	}
	res := h.export(opts)
	if rep := verifyExport(t, h, out); !rep.OK() {
		t.Fatalf("a fresh export does not verify: %v", rep.Problems)
	}
	if !slices.Equal(phases, []string{"select", "proofs", "write", "check"}) {
		t.Fatalf("progress phases %v", phases)
	}
	m := readManifest(t, out)
	if m.Selection.Case != "C-1" || len(m.Selection.Holds) != 2 || m.CreatedBy.User != "tester" || m.Layout != FormatEML {
		t.Fatalf("manifest header: %+v", m.Header)
	}
	// The union of the case's holds; alice's messages at least.
	alice := 0
	for _, msg := range m.Messages {
		if slices.Contains(msg.Custodians, "alice@example.com") {
			alice++
		}
		raw, err := os.ReadFile(filepath.Join(out, msg.File))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, raws[msg.Seq]) {
			t.Fatalf("message %d: exported bytes differ from the archived ones", msg.Seq)
		}
		if fi, _ := os.Stat(filepath.Join(out, msg.File)); fi.Mode().Perm() != 0o600 {
			t.Fatalf("message file mode %v", fi.Mode())
		}
	}
	if alice != int(reports[0].Messages) || res.Messages != int64(len(m.Messages)) || res.Messages < reports[0].Messages || res.Messages < reports[1].Messages {
		t.Fatalf("exported %d messages (%d of alice); the holds cover %d and %d", res.Messages, alice, reports[0].Messages, reports[1].Messages)
	}
	// Messages delivered twice carry both entries and both custodians.
	twice := 0
	for _, msg := range m.Messages {
		if len(msg.Entries) == 2 {
			twice++
			if len(msg.Custodians) != 2 {
				t.Fatalf("message %d: custodians %v", msg.Seq, msg.Custodians)
			}
		}
	}
	if twice == 0 {
		t.Fatal("no message with two deliveries exported")
	}
	evs := h.auditEvents()
	if len(evs) != 1 {
		t.Fatalf("%d export.create events", len(evs))
	}
	ev := evs[0]
	if ev.ID != m.AuditEvent || ev.Target.Case != "C-1" || ev.Details.Count != res.Messages || ev.Details.Bytes != res.Bytes || ev.Details.Format != "eml" || ev.Actor.User != "tester" {
		t.Fatalf("audit event %+v", ev)
	}
	if res.Checkpoint.Size != m.Checkpoint.Size || hex.EncodeToString(res.ManifestSHA256[:]) == "" {
		t.Fatalf("result %+v", res)
	}
	// Nothing but the export is left beside it.
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Fatalf("left beside the export: %v", ents)
	}
}

// TestCaseMatchesHold: a case export selects exactly what retention says
// the hold covers (the two evaluate the same criteria).
func TestCaseMatchesHold(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	fill(h, 2, 60)
	specs := []retention.HoldSpec{
		{Case: "custodian", Custodians: []string{"Bob@Example.com"}},
		{Case: "dates", From: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC)},
		{Case: "query", Query: "OR SUBJECT re BODY the"},
		{Case: "all", Custodians: []string{"carol@example.com", "alice@example.com"}, From: time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC), Query: "NOT LARGER 4000"},
	}
	for _, s := range specs {
		s.Reason = "test"
		if _, err := h.m.PlaceHold(ctx, tester, s); err != nil {
			t.Fatal(err)
		}
		rs, err := h.m.ShowHold(ctx, s.Case)
		if err != nil {
			t.Fatal(err)
		}
		opts := h.options(filepath.Join(h.dir, "unused"))
		opts.Case = s.Case
		if err := opts.validate(); err != nil {
			t.Fatal(err)
		}
		msgs, _, err := selectMessages(ctx, h.st, &opts)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(msgs)) != rs[0].Messages || len(msgs) == 0 {
			t.Fatalf("case %s: export selects %d messages, the hold covers %d", s.Case, len(msgs), rs[0].Messages)
		}
	}
	// A released case holds nothing.
	if _, err := h.m.ReleaseHold(ctx, tester, "dates", "done"); err != nil {
		t.Fatal(err)
	}
	opts := h.options(filepath.Join(h.dir, "x"))
	opts.Case = "dates"
	if _, err := Run(ctx, h.st, opts); !errors.Is(err, ErrNoActiveHold) {
		t.Fatalf("export of a released case: %v", err)
	}
	opts.Case = "nonesuch"
	if _, err := Run(ctx, h.st, opts); !errors.Is(err, retention.ErrNoHold) {
		t.Fatalf("export of an unknown case: %v", err)
	}
}

// collector is an ingest.Archiver that keeps what it is given.
type collector struct {
	mu   sync.Mutex
	raws map[string][]byte // by the import's offset
}

func (c *collector) Archive(_ context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raws[env.Meta["offset"]] = bytes.Clone(raw)
	return ingest.Receipt{SHA256: sha256.Sum256(raw)}, nil
}

// TestExportQueryMbox: an export by query in the mbox layout verifies, and
// Cairn's own mbox importer reads back exactly the archived bytes.
func TestExportQueryMbox(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	raws := fill(h, 3, 30)
	// Lines an mbox must quote, and no final line ending.
	tricky := []byte("From: x@example.com\nSubject: quoting\n\nFrom the start\n>From quoted\n>>From twice\nFrom end")
	rc := h.archive(tricky, delivery("x@example.com", "dave@example.com"))
	raws[rc.MessageSeq] = tricky
	crlf := gen.New(9)
	crlf.CRLF = true
	cm := crlf.Next(3000)
	rc = h.archive(cm.Raw, delivery(cm.Sender, "dave@example.com"))
	raws[rc.MessageSeq] = cm.Raw

	out := filepath.Join(h.dir, "q")
	opts := h.options(out)
	opts.Query = "OR TO dave@example.com FROM example"
	opts.Format = FormatMbox
	res := h.export(opts)
	if rep := verifyExport(t, h, out); !rep.OK() {
		t.Fatalf("mbox export does not verify: %v", rep.Problems)
	}
	m := readManifest(t, out)
	if m.Selection.Query != opts.Query || m.Layout != FormatMbox || int64(len(m.Messages)) != res.Messages {
		t.Fatalf("manifest: %+v", m.Header)
	}
	var sawTricky bool
	for _, msg := range m.Messages {
		if msg.Mbox.EOLAdded {
			sawTricky = true
		}
	}
	if !sawTricky {
		t.Fatal("the message without a final line ending is not marked eol_added")
	}
	ev := h.auditEvents()[0]
	if ev.Details.Query != "" || ev.Details.QueryHMAC == "" || ev.Details.Format != "mbox" {
		t.Fatalf("the audit event keeps the query as a keyed hash: %+v", ev.Details)
	}

	// The importer's mbox reader gives back each message as archived
	// (the unterminated one with the line ending mbox had to add).
	c := &collector{raws: map[string][]byte{}}
	sum, err := importer.Run(ctx, c, []string{filepath.Join(out, manifest.FileMbox)}, importer.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.raws) != len(m.Messages) {
		t.Fatalf("the importer read %d messages of %d: %+v", len(c.raws), len(m.Messages), sum)
	}
	offsets := make([]string, 0, len(c.raws))
	for k := range c.raws {
		offsets = append(offsets, k)
	}
	sort.Slice(offsets, func(i, j int) bool {
		return len(offsets[i]) < len(offsets[j]) || len(offsets[i]) == len(offsets[j]) && offsets[i] < offsets[j]
	})
	for i, msg := range m.Messages {
		got := c.raws[offsets[i]]
		want := raws[msg.Seq]
		if msg.Mbox.EOLAdded {
			want = append(bytes.Clone(want), '\n')
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: the importer read %d bytes, %d were archived", msg.Seq, len(got), len(want))
		}
	}
}

// TestExportReadOnly: with the archive written by another process, the
// export proves against the newest stored checkpoint and refuses messages
// it does not cover; deliveries after it are left out.
func TestExportReadOnly(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	raws := fill(h, 4, 10)
	var first uint64
	for seq := range raws {
		first = seq
		break
	}
	h.reopen(false) // Close signed a checkpoint of everything so far
	rc := h.archive(raws[first], delivery("late@example.com", "erin@example.com"))
	h.m.Close()
	h.st.CloseWithoutCheckpoint() // no checkpoint covers the delivery
	h.m, h.st = nil, nil
	h.open(true)

	// The later delivery is past the checkpoint: the message is exported
	// without it.
	out := filepath.Join(h.dir, "ro")
	opts := h.options(out)
	opts.Query = "ALL"
	res := h.export(opts)
	if rep := verifyExport(t, h, out); !rep.OK() {
		t.Fatalf("read-only export: %v", rep.Problems)
	}
	m := readManifest(t, out)
	for _, msg := range m.Messages {
		for _, e := range msg.Entries {
			if e.Seq == rc.Seq {
				t.Fatal("a delivery after the checkpoint was exported")
			}
		}
	}
	if res.Messages != int64(len(raws)) {
		t.Fatalf("exported %d of %d", res.Messages, len(raws))
	}

	// A message newer than every checkpoint is refused, clearly.
	h.reopen(false)
	g := gen.New(99)
	h.archive(g.Next(3000).Raw, delivery("new@example.com", "erin@example.com"))
	// A reader beside the writer, which has not yet published.
	ro, err := archive.Open(ctx, archive.Options{
		Dir: h.data(), Objects: h.objs, Keys: h.ring, Signing: h.signing, LogID: "test", ReadOnly: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.CloseWithoutCheckpoint()
	opts = h.options(filepath.Join(h.dir, "ro2"))
	opts.Query = "ALL"
	_, err = Run(ctx, ro, opts)
	if !errors.Is(err, ErrUncovered) || !strings.Contains(err.Error(), "checkpoint") {
		t.Fatalf("an uncovered message: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "ro2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused export left its folder")
	}
	// Once the writer publishes, the export goes through (it waits).
	go func() {
		time.Sleep(300 * time.Millisecond)
		h.st.PublishCheckpoint(context.Background())
	}()
	opts.CheckpointWait = 10 * time.Second
	if _, err := Run(ctx, ro, opts); err != nil {
		t.Fatal(err)
	}
}

// failingAudit refuses every event.
type failingAudit struct{}

func (failingAudit) Record(context.Context, audit.Event) (audit.Seq, error) {
	return 0, errors.New("audit database unavailable")
}

// TestExportFailsClosed: no audit, no export; an existing folder is never
// written into.
func TestExportFailsClosed(t *testing.T) {
	h := newHarness(t)
	fill(h, 5, 3)
	out := filepath.Join(h.dir, "x")
	opts := h.options(out)
	opts.Query = "ALL"
	opts.Audit = failingAudit{}
	if _, err := Run(context.Background(), h.st, opts); err == nil || !strings.Contains(err.Error(), "audit") {
		t.Fatalf("export without audit: %v", err)
	}
	ents, _ := os.ReadDir(h.dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "x") {
			t.Fatalf("an unaudited export wrote %s", e.Name())
		}
	}
	opts = h.options(h.data())
	opts.Query = "ALL"
	if _, err := Run(context.Background(), h.st, opts); !errors.Is(err, ErrExists) {
		t.Fatalf("export into a non-empty folder: %v", err)
	}
	os.Mkdir(out, 0o700)
	opts = h.options(out)
	opts.Query = "ALL"
	h.export(opts) // an empty folder is fine
	for _, bad := range []Options{{Out: out, Audit: h.alog}, {Out: out, Audit: h.alog, Query: "ALL", Case: "C"}, {Out: out, Query: "ALL"}, {Out: out, Query: "ALL", Audit: h.alog, Format: "pst"}, {Out: out, Case: "C", Audit: h.alog}} {
		if _, err := Run(context.Background(), h.st, bad); err == nil {
			t.Fatalf("options %+v accepted", bad)
		}
	}
}
