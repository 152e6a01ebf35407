//go:build integration

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/export/manifest"
)

// The HTTP API of a real cairn serve, driven with curl: every documented
// endpoint with no token, a bad token and a token of each role; the
// metrics scraped and parsed by the Prometheus text parser; TLS and the
// refusal to listen in clear beyond loopback; the throttle.

// requireCurl returns curl's path, installing it when missing; the test
// fails, never skips, without it.
func requireCurl(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("curl"); err == nil {
		return p
	}
	cmd := exec.Command("sh", "-c", "apt-get update -qq && apt-get install -y -qq --no-install-recommends curl ca-certificates")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl is not installed and apt-get could not install it: %v\n%s", err, out)
	}
	p, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not installed")
	}
	return p
}

type curlResult struct {
	code   int
	header string
	body   []byte
}

// curl sends one request; token "" sends none.
func curl(t *testing.T, bin, method, url, token string, body any, extra ...string) curlResult {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-sS", "-X", method, "-o", filepath.Join(dir, "body"), "-D", filepath.Join(dir, "head"), "-w", "%{http_code}", "--max-time", "120"}
	args = append(args, extra...)
	if token != "" {
		args = append(args, "-H", "Authorization: Bearer "+token)
	}
	var stdin io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			b, _ = json.Marshal(body)
		}
		args = append(args, "-H", "Content-Type: application/json", "--data-binary", "@-")
		stdin = bytes.NewReader(b)
	}
	cmd := exec.Command(bin, append(args, url)...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl %s %s: %v %s", method, url, err, stderr.String())
	}
	var code int
	fmt.Sscanf(string(out), "%d", &code)
	b, _ := os.ReadFile(filepath.Join(dir, "body"))
	h, _ := os.ReadFile(filepath.Join(dir, "head"))
	return curlResult{code: code, header: string(h), body: b}
}

// httpInstance is cairn serve with the HTTP API on a free port, accounts
// of every role and a token each.
type httpInstance struct {
	*instance
	curl   string
	base   string
	tokens map[string]string // metrics, auditor, legal, admin
	audit  *sql.DB
}

func newHTTPInstance(t *testing.T, extra config) *httpInstance {
	t.Helper()
	addr := freeAddr(t)
	c := config{"http.enabled": true, "http.listen": addr, "accounts.login.free_failures": 100000}
	for k, v := range extra {
		c[k] = v
	}
	in := newInstance(t, c)
	in.mustCLI("init")
	h := &httpInstance{instance: in, curl: requireCurl(t), base: "http://" + addr, tokens: map[string]string{}}
	for _, u := range []struct{ name, role string }{{"aud", "auditor"}, {"leg", "legal"}, {"adm", "admin"}, {"victim", "auditor"}} {
		cmd := exec.Command(cairnBin, "--config", in.cfg, "user", "add", u.name, "--role", u.role, "--password-stdin")
		cmd.Env = env()
		cmd.Stdin = strings.NewReader("the right password\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("user add %s: %v %s", u.name, err, out)
		}
	}
	for role, args := range map[string][]string{
		"auditor": {"aud"}, "legal": {"leg"}, "admin": {"adm"}, "metrics": {"adm", "--role", "metrics", "--label", "prometheus"},
	} {
		out := in.mustCLI(append([]string{"user", "token", "create"}, args...)...)
		h.tokens[role] = strings.TrimSpace(string(out))
		if !strings.HasPrefix(h.tokens[role], "cairn_") {
			t.Fatalf("token create printed %q", out)
		}
	}
	in.start()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(in.data, "audit.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h.audit = db
	return h
}

// lastEvents returns the audit events after seq, and the new head.
func (h *httpInstance) eventsAfter(t *testing.T, seq int) ([]map[string]any, int) {
	t.Helper()
	rows, err := h.audit.Query(`SELECT seq, body FROM events WHERE seq > ? ORDER BY seq`, seq)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		json.Unmarshal(b, &ev)
		out = append(out, ev)
	}
	return out, seq
}

func (h *httpInstance) head(t *testing.T) int {
	t.Helper()
	var n sql.NullInt64
	if err := h.audit.QueryRow(`SELECT MAX(seq) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return int(n.Int64)
}

func TestHTTPAPIWithCurl(t *testing.T) {
	h := newHTTPInstance(t, nil)
	for i, to := range []string{"bob@example.com", "carol@example.com"} {
		raw := []byte(fmt.Sprintf("From: alice@example.com\r\nTo: %s\r\nSubject: budget %d\r\nMessage-ID: <http-%d@test>\r\nDate: Fri, 01 Mar 2024 10:00:00 +0000\r\n\r\nthe quarterly budget\r\n", to, i, i))
		h.deliverIndexed(t, "alice@example.com", []string{to}, raw)
	}
	// The API's own description says which roles each operation allows.
	r := curl(t, h.curl, "GET", h.base+"/openapi.json", "", nil)
	if r.code != 200 {
		t.Fatalf("/openapi.json: %d", r.code)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Roles []string `json:"x-cairn-roles"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}

	legal := h.tokens["legal"]
	placeHold := func(c string) {
		if r := curl(t, h.curl, "POST", h.base+"/api/v1/holds", legal, map[string]any{"case": c, "reason": "e2e", "custodians": []string{"bob@example.com"}}); r.code != 201 {
			t.Fatalf("place hold %s: %d %s", c, r.code, r.body)
		}
	}
	placeHold("C-X")
	r = curl(t, h.curl, "POST", h.base+"/api/v1/exports", legal, map[string]any{"case": "C-X"})
	var exp struct {
		ID, Download string
		Messages     int64
	}
	if r.code != 201 || json.Unmarshal(r.body, &exp) != nil || exp.Messages != 1 {
		t.Fatalf("export: %d %s", r.code, r.body)
	}
	type sample struct {
		path  string
		body  any
		ok    int
		setup func()
	}
	samples := map[string]sample{
		"GET /healthz":                       {path: "/healthz", ok: 200},
		"GET /readyz":                        {path: "/readyz", ok: 200},
		"GET /openapi.json":                  {path: "/openapi.json", ok: 200},
		"GET /metrics":                       {path: "/metrics", ok: 200},
		"GET /api/v1/whoami":                 {path: "/api/v1/whoami", ok: 200},
		"POST /api/v1/search":                {path: "/api/v1/search", body: map[string]any{"query": "SUBJECT budget"}, ok: 200},
		"GET /api/v1/messages/{id}":          {path: "/api/v1/messages/0", ok: 200},
		"GET /api/v1/holds":                  {path: "/api/v1/holds", ok: 200},
		"POST /api/v1/holds":                 {path: "/api/v1/holds", body: map[string]any{"case": "C-1", "reason": "e2e", "query": "ALL"}, ok: 201},
		"GET /api/v1/holds/{id}":             {path: "/api/v1/holds/C-X", ok: 200},
		"POST /api/v1/holds/{id}/release":    {path: "/api/v1/holds/C-R/release", body: map[string]any{"reason": "settled"}, ok: 200, setup: func() { placeHold("C-R") }},
		"POST /api/v1/erasures":              {path: "/api/v1/erasures", body: map[string]any{"subject": "carol@example.com", "reason": "GDPR 1", "dry_run": true}, ok: 200},
		"GET /api/v1/retention/explain/{id}": {path: "/api/v1/retention/explain/0", ok: 200},
		"POST /api/v1/retention/run":         {path: "/api/v1/retention/run", body: map[string]any{"dry_run": true}, ok: 200},
		"POST /api/v1/exports":               {path: "/api/v1/exports", body: map[string]any{"query": "SUBJECT budget", "format": "mbox"}, ok: 201},
		"GET /api/v1/exports/{id}":           {path: exp.Download, ok: 200},
		"GET /api/v1/users":                  {path: "/api/v1/users", ok: 200},
		"POST /api/v1/users":                 {path: "/api/v1/users", body: map[string]any{"name": "newbie", "role": "auditor"}, ok: 201},
		"POST /api/v1/users/{name}/disable":  {path: "/api/v1/users/victim/disable", ok: 200},
		"POST /api/v1/users/{name}/enable":   {path: "/api/v1/users/victim/enable", ok: 200},
	}
	var ops []string
	for p, methods := range doc.Paths {
		for m := range methods {
			ops = append(ops, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(ops)
	callers := []string{"", "bad", "metrics", "auditor", "legal", "admin"}
	calls := 0
	for _, op := range ops {
		method, path, _ := strings.Cut(op, " ")
		sm, ok := samples[op]
		if !ok {
			t.Errorf("%s is documented but this test does not call it", op)
			continue
		}
		roles := doc.Paths[path][strings.ToLower(method)].Roles
		for _, who := range callers {
			want := sm.ok
			tok := h.tokens[who]
			switch {
			case len(roles) == 0: // public
			case who == "":
				want = 401
			case who == "bad":
				tok, want = "cairn_aaaaaaaaaaaaa_"+strings.Repeat("b", 32), 401
			case !slices.Contains(roles, who):
				want = 403
			case sm.setup != nil:
				sm.setup()
			}
			if who == "bad" && len(roles) == 0 {
				tok = "cairn_aaaaaaaaaaaaa_" + strings.Repeat("b", 32)
			}
			before := h.head(t)
			r := curl(t, h.curl, method, h.base+sm.path, tok, sm.body)
			calls++
			if r.code != want {
				t.Errorf("%s as %q: %d, want %d: %.300s", op, who, r.code, want, r.body)
				continue
			}
			evs, _ := h.eventsAfter(t, before)
			fromHTTP := 0
			for _, ev := range evs {
				if src, _ := ev["source"].(map[string]any); src != nil && src["service"] == "http" {
					fromHTTP++
				}
			}
			switch {
			case len(roles) == 0 && fromHTTP > 0:
				t.Errorf("%s (public) as %q was audited: %v", op, who, evs)
			case len(roles) > 0 && fromHTTP == 0:
				t.Errorf("%s as %q answered %d with no audit event from the http service", op, who, r.code)
			}
		}
	}
	t.Logf("%d curl calls over %d documented operations", calls, len(ops))

	// The message, byte for byte; the export's download verifies anywhere.
	r = curl(t, h.curl, "GET", h.base+"/api/v1/messages/0", h.tokens["auditor"], nil)
	if !bytes.Contains(r.body, []byte("Subject: budget 0")) || !strings.Contains(r.header, "message/rfc822") {
		t.Fatalf("message: %s %s", r.header, r.body)
	}
	r = curl(t, h.curl, "GET", h.base+exp.Download, legal, nil)
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(r.body))
	for {
		th, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the download is not a tar: %v", err)
		}
		p := filepath.Join(dir, filepath.FromSlash(th.Name))
		os.MkdirAll(filepath.Dir(p), 0o700)
		b, _ := io.ReadAll(tr)
		os.WriteFile(p, b, 0o600)
	}
	pub, err := os.ReadFile(filepath.Join(h.data, "keys", "ledger.key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := manifest.Verify(context.Background(), filepath.Join(dir, exp.ID), v, manifest.Options{})
	if err != nil || !rep.OK() {
		t.Fatalf("the downloaded export does not verify: %v %+v", err, rep)
	}

	// Metrics, after a verify run, parsed as Prometheus parses them.
	h.mustCLI("verify", "--quiet")
	r = curl(t, h.curl, "GET", h.base+"/metrics", h.tokens["metrics"], nil)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v", err)
	}
	sum := func(name string, match func(map[string]string) bool) (float64, bool) {
		f, ok := fams[name]
		if !ok {
			return 0, false
		}
		var s float64
		for _, m := range f.Metric {
			l := map[string]string{}
			for _, lp := range m.Label {
				l[lp.GetName()] = lp.GetValue()
			}
			if match != nil && !match(l) {
				continue
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s += m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				s += m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				s += float64(m.Histogram.GetSampleCount())
			}
		}
		return s, true
	}
	for _, c := range []struct {
		name  string
		match func(map[string]string) bool
		min   float64
	}{
		{"cairn_archive_messages_archived_total", nil, 2},
		{"cairn_archive_message_bytes_archived_total", nil, 200},
		{"cairn_ledger_entries_total", func(l map[string]string) bool { return l["kind"] == "event" }, 1}, // hold events
		{"cairn_smtp_replies_total", func(l map[string]string) bool { return l["code"] == "250" }, 2},
		{"cairn_ingest_latency_seconds", func(l map[string]string) bool { return l["source"] == "smtp" }, 2},
		{"cairn_smtp_sessions_total", nil, 2},
		{"cairn_audit_sink_lag_events", func(l map[string]string) bool { return l["sink"] == "jsonl" }, 0},
		{"cairn_audit_sink_delivered_total", func(l map[string]string) bool { return l["sink"] == "jsonl" }, 1},
		{"cairn_audit_events_total", func(l map[string]string) bool { return l["service"] == "http" }, float64(calls / 2)},
		{"cairn_http_requests_total", nil, float64(calls)},
		{"cairn_http_auth_failures_total", func(l map[string]string) bool { return l["reason"] == "forbidden" }, 1},
		{"cairn_verify_last_success", nil, 1},
		{"cairn_retention_disposed_total", nil, 0},
		{"go_goroutines", nil, 1},
	} {
		v, ok := sum(c.name, c.match)
		if !ok || v < c.min {
			t.Errorf("%s: %v (present %v), want at least %v", c.name, v, ok, c.min)
		}
	}
	if fams["cairn_ingest_latency_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Error("ingest latency is not a histogram")
	}
	h.stop()
	h.verify()
}

// A non-loopback listener without TLS is refused, by config check and by
// serve; with TLS (the self-signed certificate) curl reaches the API over
// HTTPS only.
func TestHTTPTLS(t *testing.T) {
	bin := requireCurl(t)
	in := newInstance(t, config{"http.enabled": true, "http.listen": "0.0.0.0:" + strings.Split(freeAddr(t), ":")[1]})
	if _, errb, code := in.cli("config", "check"); code == 0 || !strings.Contains(string(errb), "not a loopback address") {
		t.Fatalf("config check of 0.0.0.0 without TLS: exit %d %s", code, errb)
	}
	cmd := exec.Command(cairnBin, "--config", in.cfg, "serve")
	cmd.Env = env()
	done := make(chan []byte, 1)
	go func() { out, _ := cmd.CombinedOutput(); done <- out }()
	select {
	case out := <-done:
		if !strings.Contains(string(out), "not a loopback address") {
			t.Fatalf("serve on 0.0.0.0 without TLS: %s", out)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve started on 0.0.0.0 without TLS")
	}

	addr := freeAddr(t)
	h := newHTTPInstance(t, config{"http.listen": addr, "http.tls_self_signed": true})
	if r := curl(t, bin, "GET", "https://"+addr+"/healthz", "", nil, "--cacert", filepath.Join(h.data, "tls", "cert.pem")); r.code != 200 {
		t.Fatalf("https with the pinned certificate: %d %s", r.code, r.body)
	}
	r := curl(t, bin, "GET", "https://"+addr+"/api/v1/whoami", h.tokens["auditor"], nil, "-k")
	if r.code != 200 || !strings.Contains(string(r.body), `"role": "auditor"`) {
		t.Fatalf("whoami over https: %d %s", r.code, r.body)
	}
	evs, _ := h.eventsAfter(t, 0)
	tlsSeen := false
	for _, ev := range evs {
		if src, _ := ev["source"].(map[string]any); src != nil && src["service"] == "http" && src["tls"] == true {
			tlsSeen = true
		}
	}
	if !tlsSeen {
		t.Error("the audit event does not record TLS")
	}
	if r := curl(t, bin, "GET", "http://"+addr+"/healthz", "", nil); r.code == 200 {
		t.Fatal("plain HTTP answered on the TLS listener")
	}
	h.stop()
}

// Failed token attempts from one address are throttled: 429 with
// Retry-After, even for a good token, until the delay has passed.
func TestHTTPThrottle(t *testing.T) {
	h := newHTTPInstance(t, config{"accounts.login.free_failures": 2, "accounts.login.base_delay": "30s"})
	for i := 0; i < 3; i++ {
		if r := curl(t, h.curl, "GET", h.base+"/api/v1/whoami", fmt.Sprintf("cairn_wrong%d", i), nil); r.code != 401 {
			t.Fatalf("bad token %d: %d", i, r.code)
		}
	}
	r := curl(t, h.curl, "GET", h.base+"/api/v1/whoami", h.tokens["admin"], nil)
	if r.code != 429 || !strings.Contains(strings.ToLower(r.header), "retry-after:") {
		t.Fatalf("after failures: %d %s", r.code, r.header)
	}
	h.stop()
}
