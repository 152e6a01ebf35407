package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/export"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/retention"
)

// switchRecorder records into the audit log until it is told to fail.
type switchRecorder struct {
	l    *audit.Log
	fail atomic.Bool
}

var errAuditDown = errors.New("audit log down (test)")

func (r *switchRecorder) Record(ctx context.Context, ev audit.Event) (audit.Seq, error) {
	if r.fail.Load() {
		return 0, errAuditDown
	}
	return r.l.Record(ctx, ev)
}

// harness is an archive with messages, an audit log, accounts with a
// token per role, a retention manager and the API on a real listener.
type harness struct {
	t      *testing.T
	dir    string
	st     *archive.Store
	alog   *audit.Log
	rec    *switchRecorder
	acc    *auth.DB
	m      *retention.Manager
	srv    *Server
	http   *httptest.Server
	tokens map[string]string // role (or "scoped") -> token
	seqs   map[string]uint64 // subject -> message seq
	// ahead moves the retention manager's clock forward (nanoseconds).
	ahead atomic.Int64
}

func msg(from, to, subject, body string) []byte {
	return []byte("Date: Fri, 01 Mar 2024 10:00:00 +0000\r\nFrom: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@test>\r\n\r\n" + body + "\r\n")
}

func newHarness(t *testing.T, opts func(*Options)) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	objs, err := fs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/http")
	h := &harness{t: t, dir: dir, tokens: map[string]string{}, seqs: map[string]uint64{}}
	os.MkdirAll(data, 0o700)
	t.Cleanup(h.close)
	h.alog, err = audit.Open(audit.Options{Path: filepath.Join(data, "audit.db"), Origin: "test.example/audit", QueryKey: bytes.Repeat([]byte{7}, 32), KeepQueries: true})
	if err != nil {
		t.Fatal(err)
	}
	h.rec = &switchRecorder{l: h.alog} // the API and retention share it, as in cairn serve
	h.st, err = archive.Open(ctx, archive.Options{
		Dir: data, Objects: objs, Keys: ring, Signing: sk, LogID: "test",
		CheckpointEvery: 1 << 40, CheckpointInterval: time.Hour,
		Holds: retention.NewChecker(filepath.Join(data, "retention.db"), filepath.Join(data, "index.db"), ring.SearchKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []struct{ from, to, subject, body string }{
		{"alice@example.com", "bob@example.com", "q3 budget", "the budget for the third quarter"},
		{"carol@other.example", "dave@other.example", "merger talks", "confidential merger discussion"},
		{"bob@example.com", "erin@example.com", "lunch", "sandwiches at noon"},
	} {
		env := &ingest.Envelope{Source: ingest.SourceSMTP, Sender: m.from, ReceivedAt: time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC),
			Recipients: []ingest.Recipient{{Address: m.to, Kind: ingest.KindTo}}, Custodians: []string{m.to}}
		rc, err := h.st.Archive(ctx, env, msg(m.from, m.to, m.subject, m.body))
		if err != nil {
			t.Fatal(err)
		}
		h.seqs[m.subject] = rc.MessageSeq
	}
	h.m, err = retention.Open(ctx, retention.Options{
		Path: filepath.Join(data, "retention.db"), IndexPath: h.st.Index().Path(), Archive: h.st, Objects: objs,
		SearchKey: ring.SearchKey(), Audit: h.rec,
		Policy: retention.Policy{Default: retention.Rule{Name: "default", Keep: retention.Period{Years: 7}, From: retention.FromArchived, Erasable: true}},
		Now:    func() time.Time { return time.Now().Add(time.Duration(h.ahead.Load())) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.acc, err = auth.Open(filepath.Join(data, "access.db"), auth.Options{Limits: auth.LimitOptions{FreeFailures: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name  string
		role  auth.Role
		scope string
		token auth.Role
		key   string
	}{
		{"alice", auth.RoleAuditor, "all", auth.RoleAuditor, "auditor"},
		{"bob", auth.RoleAuditor, "custodian:bob@example.com", auth.RoleAuditor, "scoped"},
		{"cora", auth.RoleAuditor, "case:C-5", auth.RoleAuditor, "case"},
		{"lena", auth.RoleLegal, "all", auth.RoleLegal, "legal"},
		{"adam", auth.RoleAdmin, "all", auth.RoleAdmin, "admin"},
		{"adam", auth.RoleAdmin, "all", auth.RoleMetrics, "metrics"},
	} {
		sc, _ := auth.ParseScope(u.scope)
		if _, err := h.acc.Get(ctx, u.name); err != nil {
			if _, err := h.acc.Add(ctx, u.name, u.role, sc, "the right password"); err != nil {
				t.Fatal(err)
			}
		}
		tok, _, err := h.acc.CreateToken(ctx, u.name, u.key, u.token, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		h.tokens[u.key] = tok
	}
	o := Options{
		Archive: h.st, Accounts: h.acc, Audit: h.rec, SearchKey: ring.SearchKey(),
		ExportDir: filepath.Join(dir, "exports"),
		Export: func(ctx context.Context, actor audit.Actor, source audit.Source, req ExportRequest, out string) (*export.Result, error) {
			return export.Run(ctx, h.st, export.Options{Case: req.Case, Holds: h.m, Query: req.Query, Out: out, Format: req.Format,
				Actor: actor, Source: source, Audit: h.rec})
		},
		Retention: func() *retention.Manager { return h.m },
		Metrics:   NewMetrics(MetricsSources{Archive: h.st, Audit: h.alog}),
		Ready:     []Check{ArchiveCheck(h.st), IndexCheck(h.st), ObjectStoreCheck(objs)},
	}
	if opts != nil {
		opts(&o)
	}
	h.srv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	h.http = httptest.NewServer(h.srv.Handler())
	return h
}

func (h *harness) close() {
	if h.http != nil {
		h.http.Close()
	}
	if h.srv != nil {
		h.srv.Close()
	}
	if h.m != nil {
		h.m.Close()
	}
	if h.acc != nil {
		h.acc.Close()
	}
	if h.st != nil {
		h.st.Close()
	}
	if h.alog != nil {
		h.alog.Close()
	}
}

// do sends a request with the token of role ("" none); body is JSON
// encoded unless it is a string.
func (h *harness) do(method, path, role string, body any) (int, http.Header, []byte) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.http.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if role != "" {
		tok := h.tokens[role]
		if tok == "" {
			tok = role // a literal bad token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// events returns the audit events recorded after seq.
func (h *harness) events(after audit.Seq) []audit.Event {
	h.t.Helper()
	var out []audit.Event
	err := h.alog.Events(context.Background(), audit.Query{From: after + 1}, func(e *audit.Entry) error {
		out = append(out, e.Event)
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}
