package export

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/retention"
)

// harness is an archive, an audit log and a retention manager in a temp
// folder.
type harness struct {
	t       testing.TB
	dir     string
	objs    *fs.Store
	ring    *crypto.Keyring
	signing *crypto.SigningKey
	st      *archive.Store
	alog    *audit.Log
	m       *retention.Manager
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
	os.MkdirAll(h.data(), 0o700)
	h.alog, err = audit.Open(audit.Options{Path: filepath.Join(h.data(), "audit.db"), Origin: "test.example/audit", QueryKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	h.open(false)
	t.Cleanup(h.close)
	return h
}

func (h *harness) data() string { return filepath.Join(h.dir, "data") }

// open opens the archive (read-only: as while cairn serve writes it) and
// the retention manager.
func (h *harness) open(readOnly bool) {
	h.t.Helper()
	st, err := archive.Open(context.Background(), archive.Options{
		Dir: h.data(), Objects: h.objs, Keys: h.ring, Signing: h.signing, LogID: "test",
		CheckpointEvery: 1 << 40, CheckpointInterval: time.Hour, ReadOnly: readOnly,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.st = st
	ropts := retention.Options{
		Path: filepath.Join(h.data(), "retention.db"), IndexPath: filepath.Join(h.data(), "index.db"),
		Objects: h.objs, SearchKey: h.ring.SearchKey(), Audit: h.alog,
		Policy: retention.Policy{Default: retention.Rule{Name: "keep", Keep: retention.Period{Years: 7}, From: retention.FromDate}},
	}
	if !readOnly {
		ropts.Archive = st
	}
	h.m, err = retention.Open(context.Background(), ropts)
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) close() {
	if h.m != nil {
		h.m.Close()
		h.m = nil
	}
	if h.st != nil {
		if h.st.ReadOnly() {
			h.st.CloseWithoutCheckpoint()
		} else {
			h.st.Close()
		}
		h.st = nil
	}
	if h.alog != nil {
		h.alog.Close()
		h.alog = nil
	}
}

// reopen reopens the archive and the manager, keeping the audit log.
func (h *harness) reopen(readOnly bool) {
	h.t.Helper()
	a := h.alog
	h.alog = nil
	h.close()
	h.alog = a
	h.open(readOnly)
}

var tester = retention.Caller{Actor: audit.Actor{User: "tester", Role: "legal", AuthMech: "test"}, Source: audit.Source{Service: "test"}}

func delivery(sender string, custodians ...string) *ingest.Envelope {
	var rs []ingest.Recipient
	for _, c := range custodians {
		rs = append(rs, ingest.Recipient{Address: c, Kind: ingest.KindTo})
	}
	rs = append(rs, ingest.Recipient{Address: "hidden@example.com", Kind: ingest.KindBcc})
	return &ingest.Envelope{Source: ingest.SourceSMTP, Sender: sender, Recipients: rs, Custodians: custodians,
		ReceivedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
}

func (h *harness) archive(raw []byte, env *ingest.Envelope) ingest.Receipt {
	h.t.Helper()
	rc, err := h.st.Archive(context.Background(), env, raw)
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

func (h *harness) options(out string) Options {
	return Options{Out: out, Holds: h.m, Audit: h.alog, Actor: tester.Actor, Source: tester.Source}
}

func (h *harness) export(opts Options) *Result {
	h.t.Helper()
	res, err := Run(context.Background(), h.st, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// auditEvents returns the export.create events recorded.
func (h *harness) auditEvents() []audit.Event {
	h.t.Helper()
	var out []audit.Event
	err := h.alog.Events(context.Background(), audit.Query{}, func(e *audit.Entry) error {
		if e.Event.Action == audit.ActionExport {
			out = append(out, e.Event)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}
