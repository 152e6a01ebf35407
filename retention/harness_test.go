package retention

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest"
)

// clock is a fake clock tests move forward.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// harness is an archive, an audit log and a Manager in a temp folder.
type harness struct {
	t       testing.TB
	dir     string
	objs    objstore.Store
	ring    *crypto.Keyring
	signing *crypto.SigningKey
	st      *archive.Store
	alog    *audit.Log
	m       *Manager
	clock   *clock
	policy  Policy
	mode    objstore.LockMode
}

func testPolicy() Policy {
	return Policy{Default: Rule{Name: "default-7y", Keep: Period{Years: 7}, From: FromDate}}
}

// newHarness makes a harness on the filesystem store; wrap, if set,
// replaces the object store (a fake Object Lock store, on the harness's
// clock). On a Locker, retention dates are GOVERNANCE.
func newHarness(t testing.TB, p Policy, wrap func(objstore.Store, *clock) objstore.Store) *harness {
	t.Helper()
	dir := t.TempDir()
	fsStore, err := fs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	var objs objstore.Store = fsStore
	var mode objstore.LockMode
	if wrap != nil {
		objs = wrap(fsStore, clk)
		if _, ok := objs.(objstore.Locker); ok {
			mode = objstore.Governance
		}
	}
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/retention")
	h := &harness{t: t, dir: dir, objs: objs, ring: ring, signing: sk, policy: p, clock: clk, mode: mode}
	os.MkdirAll(h.data(), 0o700)
	alog, err := audit.Open(audit.Options{Path: filepath.Join(dir, "data", "audit.db"), Origin: "test.example/audit", QueryKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	h.alog = alog
	h.openArchive()
	h.openManager()
	t.Cleanup(h.close)
	return h
}

func (h *harness) data() string { return filepath.Join(h.dir, "data") }

func (h *harness) openArchive() {
	h.t.Helper()
	st, err := archive.Open(context.Background(), archive.Options{
		Dir: h.data(), Objects: h.objs, Keys: h.ring, Signing: h.signing, LogID: "test",
		CheckpointEvery: 1 << 40, CheckpointInterval: time.Hour,
		Holds: NewChecker(filepath.Join(h.data(), "retention.db"), filepath.Join(h.data(), "index.db"), h.ring.SearchKey()),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
}

func (h *harness) options() Options {
	return Options{
		Path:      filepath.Join(h.data(), "retention.db"),
		IndexPath: filepath.Join(h.data(), "index.db"),
		Archive:   h.st,
		Objects:   h.objs,
		SearchKey: h.ring.SearchKey(),
		Audit:     h.alog,
		Policy:    h.policy,
		LockMode:  h.mode,
		Now:       h.clock.now,
		Workers:   4,
	}
}

func (h *harness) openManager() {
	h.t.Helper()
	m, err := Open(context.Background(), h.options())
	if err != nil {
		h.t.Fatal(err)
	}
	h.m = m
}

func (h *harness) reopenManager() {
	h.t.Helper()
	h.m.Close()
	h.openManager()
}

func (h *harness) close() {
	if h.m != nil {
		h.m.Close()
		h.m = nil
	}
	if h.st != nil {
		h.st.Close()
		h.st = nil
	}
	if h.alog != nil {
		h.alog.Close()
		h.alog = nil
	}
}

var tester = Caller{Actor: audit.Actor{User: "tester", Role: "legal", AuthMech: "test"}, Source: audit.Source{Service: "test"}}

// envelope is a delivery to custodian from sender.
func envelope(source, sender string, custodians []string, recipients ...ingest.Recipient) *ingest.Envelope {
	if source == "" {
		source = ingest.SourceSMTP
	}
	if len(recipients) == 0 {
		for _, c := range custodians {
			recipients = append(recipients, ingest.Recipient{Address: c, Kind: ingest.KindTo})
		}
	}
	return &ingest.Envelope{Source: source, Sender: sender, Recipients: recipients, Custodians: custodians,
		ReceivedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
}

func (h *harness) archive(raw []byte, env *ingest.Envelope) uint64 {
	h.t.Helper()
	rc, err := h.st.Archive(context.Background(), env, raw)
	if err != nil {
		h.t.Fatal(err)
	}
	return rc.MessageSeq
}

// msg is a small message with a Date field (empty: none).
func msg(date, from, to, subject, body string, extra ...string) []byte {
	var b strings.Builder
	if date != "" {
		b.WriteString("Date: " + date + "\r\n")
	}
	b.WriteString("From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\n")
	for _, x := range extra {
		b.WriteString(x + "\r\n")
	}
	b.WriteString("Message-ID: <" + subject + "@test>\r\n\r\n" + body + "\r\n")
	return []byte(b.String())
}

// auditActions returns the actions recorded in the audit log, in order.
func (h *harness) auditEvents() []audit.Event {
	h.t.Helper()
	var out []audit.Event
	err := h.alog.Events(context.Background(), audit.Query{}, func(e *audit.Entry) error {
		out = append(out, e.Event)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// holdEvents returns the hold events of the ledger, in order.
func (h *harness) holdEvents() []ledger.Event {
	h.t.Helper()
	var out []ledger.Event
	err := h.st.Index().EachEntry(context.Background(), func(seq uint64, line []byte) error {
		e, err := ledger.ParseEntry(line)
		if err != nil {
			return err
		}
		if e.Kind == ledger.KindEvent && e.Event != nil && strings.HasPrefix(e.Event.Type, "hold.") {
			out = append(out, *e.Event)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) state(seq uint64) string {
	h.t.Helper()
	row, err := h.st.Index().Message(context.Background(), seq)
	if err != nil {
		h.t.Fatal(err)
	}
	return map[int]string{0: "active", 1: "disposed", 2: "erased"}[row.State]
}

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
