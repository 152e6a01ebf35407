package httpapi

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/export/manifest"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/retention"
)

// sample is one call of a route that its roles should see succeed.
type sample struct {
	path  string
	body  any
	ok    int    // the status an allowed role gets
	setup func() // before each allowed call
}

func (h *harness) samples() map[string]sample {
	ctx := context.Background()
	q3 := strconv.FormatUint(h.seqs["q3 budget"], 10)
	// An export to download.
	setupCaller := retention.Caller{Actor: audit.Actor{User: "setup"}, Source: audit.Source{Service: "test"}}
	if _, err := h.m.PlaceHold(ctx, setupCaller, retention.HoldSpec{Case: "C-dl", Reason: "r", Custodians: []string{"bob@example.com"}}); err != nil {
		h.t.Fatal(err)
	}
	dl, _ := uuid.NewV7()
	if _, err := h.srv.opts.Export(ctx, setupCaller.Actor, setupCaller.Source, ExportRequest{Case: "C-dl"}, filepath.Join(h.srv.opts.ExportDir, dl.String())); err != nil {
		h.t.Fatal(err)
	}
	return map[string]sample{
		"GET /metrics":              {path: "/metrics", ok: 200},
		"GET /api/v1/whoami":        {path: "/api/v1/whoami", ok: 200},
		"POST /api/v1/search":       {path: "/api/v1/search", body: map[string]any{"query": "SUBJECT budget"}, ok: 200},
		"GET /api/v1/messages/{id}": {path: "/api/v1/messages/" + q3, ok: 200},
		"GET /api/v1/holds":         {path: "/api/v1/holds?all=true", ok: 200},
		"POST /api/v1/holds":        {path: "/api/v1/holds", body: map[string]any{"case": "C-1", "reason": "litigation", "custodians": []string{"bob@example.com"}}, ok: 201},
		"GET /api/v1/holds/{id}":    {path: "/api/v1/holds/C-1", ok: 200},
		"POST /api/v1/holds/{id}/release": {path: "/api/v1/holds/C-2/release", body: map[string]any{"reason": "settled"}, ok: 200, setup: func() {
			if _, err := h.m.PlaceHold(ctx, retention.Caller{Actor: audit.Actor{User: "setup"}}, retention.HoldSpec{Case: "C-2", Reason: "r", Query: "ALL"}); err != nil {
				h.t.Fatal(err)
			}
		}},
		"POST /api/v1/erasures":              {path: "/api/v1/erasures", body: map[string]any{"subject": "erin@example.com", "reason": "GDPR request 7", "dry_run": true}, ok: 200},
		"GET /api/v1/retention/explain/{id}": {path: "/api/v1/retention/explain/" + q3, ok: 200},
		"POST /api/v1/retention/run":         {path: "/api/v1/retention/run", body: map[string]any{"dry_run": true}, ok: 200},
		"POST /api/v1/exports":               {path: "/api/v1/exports", body: map[string]any{"case": "C-dl", "format": "mbox"}, ok: 201},
		"GET /api/v1/exports/{id}":           {path: "/api/v1/exports/" + dl.String(), ok: 200},
		"GET /api/v1/users":                  {path: "/api/v1/users", ok: 200},
		"POST /api/v1/users":                 {path: "/api/v1/users", body: map[string]any{"name": "newbie", "role": "auditor", "scope": []string{"domain:example.com"}}, ok: 201},
		"POST /api/v1/users/{name}/disable": {path: "/api/v1/users/victim/disable", ok: 200, setup: func() {
			h.acc.Add(ctx, "victim", auth.RoleAuditor, auth.ScopeAll, "the right password")
		}},
		"POST /api/v1/users/{name}/enable": {path: "/api/v1/users/victim/enable", ok: 200},
	}
}

// Every authenticated route answers 401 without a token or with a bad
// one, 403 to a role it does not allow, its success to the roles it
// allows; each of these calls is in the audit log.
func TestRolesEveryRoute(t *testing.T) {
	h := newHarness(t, nil)
	samples := h.samples()
	callers := []string{"", "cairn_badtokenxxxxx_yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", "metrics", "auditor", "scoped", "legal", "admin"}
	roleOf := map[string]auth.Role{"metrics": auth.RoleMetrics, "auditor": auth.RoleAuditor, "scoped": auth.RoleAuditor, "legal": auth.RoleLegal, "admin": auth.RoleAdmin}
	for _, rt := range h.srv.Routes() {
		if rt.Public() {
			continue
		}
		key := rt.Method + " " + rt.Path
		sm, ok := samples[key]
		if !ok {
			t.Errorf("route %s has no sample call in this test", key)
			continue
		}
		for _, who := range callers {
			want := sm.ok
			role, known := roleOf[who]
			switch {
			case !known:
				want = http.StatusUnauthorized
			case !slices.Contains(rt.Roles, role):
				want = http.StatusForbidden
			case sm.setup != nil:
				sm.setup()
			}
			head := h.alog.Head()
			code, hdr, body := h.do(rt.Method, sm.path, who, sm.body)
			if code != want {
				t.Errorf("%s as %q: %d, want %d: %s", key, who, code, want, body)
				continue
			}
			if code == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s as %q: 401 without a Bearer challenge", key, who)
			}
			evs := h.events(head)
			if len(evs) == 0 {
				t.Errorf("%s as %q: answered %d with no audit event", key, who, code)
				continue
			}
			mine := false
			for _, ev := range evs {
				if ev.Source.Service != "http" {
					continue
				}
				mine = true
				if known && ev.Actor.AuthMech != "bearer" {
					t.Errorf("%s as %q: event actor %+v", key, who, ev.Actor)
				}
				if code >= 400 && ev.Outcome != audit.OutcomeFailure {
					t.Errorf("%s as %q: answered %d, audited %s %s", key, who, code, ev.Action, ev.Outcome)
				}
				if code < 300 && known && (ev.Actor.Role != string(role) || ev.Outcome != audit.OutcomeSuccess) {
					t.Errorf("%s as %q: answered %d, audited %+v %s", key, who, code, ev.Actor, ev.Outcome)
				}
			}
			if !mine {
				t.Errorf("%s as %q: no event from the http service among %+v", key, who, evs)
			}
		}
	}
	for k := range samples {
		found := false
		for _, rt := range h.srv.Routes() {
			found = found || rt.Method+" "+rt.Path == k
		}
		if !found {
			t.Errorf("sample %s names no route", k)
		}
	}
}

// When the audit log refuses events, every call fails with 503 and
// nothing is read or changed.
func TestAuditFailClosed(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	samples := h.samples()
	h.rec.fail.Store(true)
	for _, rt := range h.srv.Routes() {
		if rt.Public() {
			continue
		}
		sm := samples[rt.Method+" "+rt.Path]
		if sm.setup != nil {
			h.rec.fail.Store(false)
			sm.setup()
			h.rec.fail.Store(true)
		}
		for _, who := range []string{"", "admin", "auditor"} {
			code, _, body := h.do(rt.Method, sm.path, who, sm.body)
			if code != http.StatusServiceUnavailable {
				t.Errorf("%s %s as %q with the audit log down: %d %s", rt.Method, sm.path, who, code, body)
			}
			if strings.Contains(string(body), "budget") || strings.Contains(string(body), "newbie") {
				t.Errorf("%s %s: data left the server unaudited: %s", rt.Method, sm.path, body)
			}
		}
	}
	// Nothing changed.
	if _, err := h.acc.Get(ctx, "newbie"); err == nil {
		t.Error("an account was added unaudited")
	}
	holds, _ := h.m.ListHolds(ctx, true)
	for _, hd := range holds {
		if hd.Case == "C-1" {
			t.Error("a hold was placed unaudited")
		}
	}
	if u, _ := h.acc.Get(ctx, "victim"); u != nil && u.Disabled {
		t.Error("an account was disabled unaudited")
	}
}

// A scoped auditor sees its custodians' messages only; a message outside
// the scope is answered as a missing one.
func TestScope(t *testing.T) {
	h := newHarness(t, nil)
	var res searchResult
	code, _, body := h.do("POST", "/api/v1/search", "scoped", map[string]any{"query": "ALL"})
	if code != 200 || json.Unmarshal(body, &res) != nil {
		t.Fatalf("search: %d %s", code, body)
	}
	if res.Count != 1 || res.Matches[0].Subject != "q3 budget" {
		t.Fatalf("scoped search: %s", body)
	}
	code, _, body = h.do("POST", "/api/v1/search", "auditor", map[string]any{"query": "ALL"})
	json.Unmarshal(body, &res)
	if code != 200 || res.Count != 3 {
		t.Fatalf("unscoped search: %s", body)
	}
	merger := strconv.FormatUint(h.seqs["merger talks"], 10)
	if code, _, _ := h.do("GET", "/api/v1/messages/"+merger, "scoped", nil); code != http.StatusNotFound {
		t.Fatalf("out-of-scope message: %d", code)
	}
	if code, _, _ := h.do("GET", "/api/v1/messages/999", "auditor", nil); code != http.StatusNotFound {
		t.Fatalf("missing message: %d", code)
	}
	code, hdr, body := h.do("GET", "/api/v1/messages/"+merger, "auditor", nil)
	if code != 200 || hdr.Get("Content-Type") != "message/rfc822" || string(body) != string(msg("carol@other.example", "dave@other.example", "merger talks", "confidential merger discussion")) {
		t.Fatalf("message: %d %q %q", code, hdr.Get("Content-Type"), body)
	}
	// Phrase search, confirmed against the stored text.
	code, _, body = h.do("POST", "/api/v1/search", "auditor", map[string]any{"query": `BODY "merger discussion"`})
	json.Unmarshal(body, &res)
	if code != 200 || res.Count != 1 {
		t.Fatalf("phrase search: %s", body)
	}
	code, _, body = h.do("POST", "/api/v1/search", "auditor", map[string]any{"query": `BODY "discussion merger"`})
	json.Unmarshal(body, &res)
	if code != 200 || res.Count != 0 {
		t.Fatalf("phrase search, words reversed: %s", body)
	}
	// Bad requests are refused, and audited as failures.
	head := h.alog.Head()
	for _, b := range []any{"", "{", `{"query":"FROM"}`, `{"query":"ALL","extra":1}`, `{"query":"ALL"}{}`, map[string]any{"query": "ALL", "limit": -1}} {
		if code, _, body := h.do("POST", "/api/v1/search", "auditor", b); code != http.StatusBadRequest {
			t.Errorf("body %v: %d %s", b, code, body)
		}
	}
	if evs := h.events(head); len(evs) != 6 || evs[0].Outcome != audit.OutcomeFailure || evs[0].Action != audit.ActionSearch {
		t.Errorf("bad requests audited as %+v", evs)
	}
}

// Holds, an erasure and an explanation through the API, by the legal
// role: the audit events name the API caller.
func TestLegalWorkflow(t *testing.T) {
	h := newHarness(t, nil)
	head := h.alog.Head()
	code, _, body := h.do("POST", "/api/v1/holds", "legal", map[string]any{"case": "C-9", "reason": "suit", "custodians": []string{"erin@example.com"}, "from": "2024-01-01"})
	if code != 201 {
		t.Fatalf("place: %d %s", code, body)
	}
	var hold retention.HoldReport
	json.Unmarshal(body, &hold)
	if hold.Messages != 1 || hold.PlacedBy != "lena" {
		t.Fatalf("hold %s", body)
	}
	// The held message is kept from erasure, the other erased.
	code, _, body = h.do("POST", "/api/v1/erasures", "legal", map[string]any{"subject": "bob@example.com", "reason": "GDPR 12"})
	var rep retention.ErasureReport
	json.Unmarshal(body, &rep)
	if code != 200 || len(rep.Erased) != 1 || len(rep.Kept) != 1 || !strings.Contains(rep.Kept[0].Why, "C-9") {
		t.Fatalf("erase: %d %s", code, body)
	}
	lunch := strconv.FormatUint(h.seqs["lunch"], 10)
	code, _, body = h.do("GET", "/api/v1/retention/explain/"+lunch, "legal", nil)
	if code != 200 || !strings.Contains(string(body), `"case": "C-9"`) {
		t.Fatalf("explain: %d %s", code, body)
	}
	q3 := strconv.FormatUint(h.seqs["q3 budget"], 10)
	if code, _, body := h.do("GET", "/api/v1/messages/"+q3, "auditor", nil); code != http.StatusGone {
		t.Fatalf("erased message: %d %s", code, body)
	}
	if code, _, body := h.do("POST", "/api/v1/erasures", "legal", map[string]any{"subject": "bob@example.com", "reason": "bob@example.com asked"}); code != 400 {
		t.Fatalf("personal data in the reason: %d %s", code, body)
	}
	if code, _, body := h.do("POST", "/api/v1/holds/C-9/release", "legal", map[string]any{"reason": "settled"}); code != 200 {
		t.Fatalf("release: %d %s", code, body)
	}
	if code, _, _ := h.do("POST", "/api/v1/holds/C-9/release", "legal", map[string]any{"reason": "again"}); code != 404 {
		t.Fatalf("release again: %d", code)
	}
	var actions []string
	for _, ev := range h.events(head) {
		if ev.Actor.User == "lena" {
			actions = append(actions, string(ev.Action)+"/"+string(ev.Outcome))
		}
		if ev.Actor.User == "lena" && (ev.Source.Service != "http" || ev.Actor.Session == "") {
			t.Errorf("event %+v", ev)
		}
	}
	for _, want := range []string{"hold.place/success", "erasure.execute/success", "auth.login/success", "hold.release/success", "hold.release/failure"} {
		if !slices.Contains(actions, want) {
			t.Errorf("no %s among %v", want, actions)
		}
	}
}

func TestUsersAndTokens(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	code, _, body := h.do("POST", "/api/v1/users", "admin", map[string]any{"name": "Judy", "role": "legal"})
	var added addUserResult
	json.Unmarshal(body, &added)
	if code != 201 || added.User.Name != "judy" || len(added.Password) != 29 {
		t.Fatalf("add: %d %s", code, body)
	}
	if code, _, _ := h.do("POST", "/api/v1/users", "admin", map[string]any{"name": "judy", "role": "legal"}); code != http.StatusConflict {
		t.Fatalf("add twice: %d", code)
	}
	if code, _, _ := h.do("POST", "/api/v1/users", "admin", map[string]any{"name": "x", "role": "root"}); code != 400 {
		t.Fatalf("bad role: %d", code)
	}
	// Disabling an account ends its tokens at once.
	if code, _, body := h.do("POST", "/api/v1/users/lena/disable", "admin", nil); code != 200 || !strings.Contains(string(body), `"disabled": true`) {
		t.Fatalf("disable: %d %s", code, body)
	}
	if code, _, _ := h.do("GET", "/api/v1/holds", "legal", nil); code != http.StatusUnauthorized {
		t.Fatalf("disabled account's token: %d", code)
	}
	h.do("POST", "/api/v1/users/lena/enable", "admin", nil)
	if code, _, _ := h.do("GET", "/api/v1/holds", "legal", nil); code != 200 {
		t.Fatalf("enabled again: %d", code)
	}
	if code, _, _ := h.do("POST", "/api/v1/users/nobody/disable", "admin", nil); code != 404 {
		t.Fatalf("disable unknown: %d", code)
	}
	// A revoked token is refused.
	p, err := h.acc.AuthenticateToken(ctx, h.tokens["auditor"], netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	h.acc.RevokeToken(ctx, p.Token.ID)
	if code, _, _ := h.do("GET", "/api/v1/whoami", "auditor", nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked: %d", code)
	}
	code, _, body = h.do("GET", "/api/v1/whoami", "scoped", nil)
	if code != 200 || !strings.Contains(string(body), `"scope": "custodian:bob@example.com"`) {
		t.Fatalf("whoami: %d %s", code, body)
	}
}

// Failed authentications from one address are throttled: 429 with
// Retry-After, even for a good token, and audited.
func TestThrottle(t *testing.T) {
	h := newHarness(t, nil)
	h.acc.Close()
	acc, err := auth.Open(h.acc.Path(), auth.Options{Limits: auth.LimitOptions{FreeFailures: 3, BaseDelay: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	h.acc = acc
	h.srv.opts.Accounts = acc
	for i := 0; i < 3; i++ {
		if code, _, _ := h.do("GET", "/api/v1/whoami", fmt.Sprintf("cairn_wrong%d", i), nil); code != 401 {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	h.do("GET", "/api/v1/whoami", "cairn_wrong", nil)
	head := h.alog.Head()
	code, hdr, body := h.do("GET", "/api/v1/whoami", "admin", nil)
	if code != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
		t.Fatalf("throttled: %d %v %s", code, hdr, body)
	}
	if evs := h.events(head); len(evs) != 1 || evs[0].Action != audit.ActionLoginFailure || !strings.Contains(evs[0].Reason, "throttled") {
		t.Fatalf("throttled call audited as %+v", evs)
	}
}

func TestProbes(t *testing.T) {
	h := newHarness(t, nil)
	head := h.alog.Head()
	if code, _, body := h.do("GET", "/healthz", "", nil); code != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	code, _, body := h.do("GET", "/readyz", "", nil)
	if code != 200 || !strings.Contains(string(body), `"objects": "ok"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _, _ := h.do("GET", "/nope", "", nil); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
	if code, _, _ := h.do("DELETE", "/api/v1/holds", "admin", nil); code != http.StatusMethodNotAllowed {
		t.Fatalf("wrong method: %d", code)
	}
	if evs := h.events(head); len(evs) != 0 {
		t.Fatalf("probes audited: %+v", evs)
	}
	// A failing check makes the server unready.
	h2 := newHarness(t, func(o *Options) {
		o.Ready = append(o.Ready, Check{Name: "services", Check: func(context.Context) error { return fmt.Errorf("smtp not started") }})
	})
	code, _, body = h2.do("GET", "/readyz", "", nil)
	if code != 503 || !strings.Contains(string(body), "smtp not started") {
		t.Fatalf("unready: %d %s", code, body)
	}
}

func TestCheckListen(t *testing.T) {
	for _, c := range []struct {
		addr string
		tls  bool
		ok   bool
	}{
		{"127.0.0.1:8080", false, true}, {"[::1]:8080", false, true}, {"localhost:8080", false, true},
		{"127.8.9.1:80", false, true}, {"0.0.0.0:8080", false, false}, {":8080", false, false},
		{"192.0.2.1:443", false, false}, {"archive.example.com:443", false, false}, {"0.0.0.0:8443", true, true},
	} {
		if err := CheckListen(c.addr, c.tls); (err == nil) != c.ok {
			t.Errorf("CheckListen(%s, %v): %v", c.addr, c.tls, err)
		}
	}
}

// An export made through the API, downloaded as a tar and unpacked,
// verifies with the archive's public key alone; a scoped account cannot
// export by query nor download another case's export.
func TestExportRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	if code, _, body := h.do("POST", "/api/v1/holds", "legal", map[string]any{"case": "C-7", "reason": "suit", "custodians": []string{"bob@example.com", "dave@other.example"}}); code != 201 {
		t.Fatalf("hold: %d %s", code, body)
	}
	code, _, body := h.do("POST", "/api/v1/exports", "legal", map[string]any{"case": "C-7"})
	var res exportResult
	if code != 201 || json.Unmarshal(body, &res) != nil || res.Messages != 3 { // bob sent "lunch": a custodian's sent mail is held too
		t.Fatalf("export: %d %s", code, body)
	}
	code, hdr, tarball := h.do("GET", res.Download, "legal", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("download: %d %s", code, tarball)
	}
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(tarball))
	for {
		th, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(th.Name, res.ID+"/") || strings.Contains(th.Name, "..") {
			t.Fatalf("tar entry %q", th.Name)
		}
		p := filepath.Join(dir, filepath.FromSlash(th.Name))
		os.MkdirAll(filepath.Dir(p), 0o700)
		b, _ := io.ReadAll(tr)
		os.WriteFile(p, b, 0o600)
	}
	v, err := note.NewVerifier(h.st.SigningKey().VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := manifest.Verify(ctx, filepath.Join(dir, res.ID), v, manifest.Options{})
	if err != nil || !rep.OK() || rep.Messages != 3 {
		t.Fatalf("verify the download: %v %+v", err, rep)
	}
	// Errors: bad requests, a case without an active hold, scope.
	for _, c := range []struct {
		body any
		want int
	}{
		{map[string]any{}, 400}, {map[string]any{"case": "C-7", "query": "ALL"}, 400}, {map[string]any{"query": "FROM"}, 400},
		{map[string]any{"case": "C-7", "format": "pst"}, 400}, {map[string]any{"case": "nope"}, 404},
	} {
		if code, _, body := h.do("POST", "/api/v1/exports", "legal", c.body); code != c.want {
			t.Errorf("export %v: %d %s, want %d", c.body, code, body, c.want)
		}
	}
	h.acc.Add(ctx, "sl", auth.RoleLegal, auth.Scope{Cases: []string{"C-8"}}, "the right password")
	tok, _, _ := h.acc.CreateToken(ctx, "sl", "", auth.RoleLegal, time.Time{})
	h.tokens["scoped-legal"] = tok
	if code, _, _ := h.do("POST", "/api/v1/exports", "scoped-legal", map[string]any{"query": "ALL"}); code != 403 {
		t.Errorf("scoped query export: %d", code)
	}
	if code, _, _ := h.do("GET", res.Download, "scoped-legal", nil); code != 404 {
		t.Errorf("scoped download of another case: %d", code)
	}
	for _, bad := range []string{"../../etc", "not-a-uuid", "01a216f9-e7de-7736-839c-e5136d188833"} {
		if code, _, _ := h.do("GET", "/api/v1/exports/"+bad, "legal", nil); code != 404 {
			t.Errorf("download %q: %d", bad, code)
		}
	}
}

// Search pages through the matches with after/next, whatever their number.
func TestSearchPages(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxResults = 2 })
	var seen []uint64
	var after *uint64
	for page := 0; page < 5; page++ {
		body := map[string]any{"query": "ALL", "limit": 2}
		if after != nil {
			body["after"] = *after
		}
		code, _, b := h.do("POST", "/api/v1/search", "auditor", body)
		var res searchResult
		if code != 200 || json.Unmarshal(b, &res) != nil || res.Count != 3 {
			t.Fatalf("page %d: %d %s", page, code, b)
		}
		for _, m := range res.Matches {
			seen = append(seen, m.Seq)
		}
		if res.Next == nil {
			break
		}
		after = res.Next
	}
	if len(seen) != 3 || seen[0] >= seen[1] || seen[1] >= seen[2] {
		t.Fatalf("pages gave %v", seen)
	}
	if code, _, _ := h.do("POST", "/api/v1/search", "auditor", map[string]any{"query": "ALL", "limit": 3}); code != 400 {
		t.Fatalf("limit over max_results: %d", code)
	}
}

// An account scoped to a case sees, through the API, exactly what the
// case's active holds keep: nothing before the hold, the held messages
// after it, nothing again once it is released.
func TestCaseScope(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	count := func() int {
		t.Helper()
		var res searchResult
		code, _, body := h.do("POST", "/api/v1/search", "case", map[string]any{"query": "ALL"})
		if code != 200 || json.Unmarshal(body, &res) != nil {
			t.Fatalf("search: %d %s", code, body)
		}
		return res.Count
	}
	merger := strconv.FormatUint(h.seqs["merger talks"], 10)
	budget := strconv.FormatUint(h.seqs["q3 budget"], 10)
	if n := count(); n != 0 {
		t.Fatalf("before any hold the case-scoped account sees %d messages", n)
	}
	if _, err := h.m.PlaceHold(ctx, retention.Caller{Actor: audit.Actor{User: "lena", Role: "legal"}}, retention.HoldSpec{Case: "C-5", Reason: "test", Custodians: []string{"dave@other.example"}}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("with the hold the case-scoped account sees %d messages, want 1", n)
	}
	if code, _, _ := h.do("GET", "/api/v1/messages/"+merger, "case", nil); code != 200 {
		t.Fatalf("held message: %d", code)
	}
	if code, _, _ := h.do("GET", "/api/v1/messages/"+budget, "case", nil); code != http.StatusNotFound {
		t.Fatalf("message outside the case: %d", code)
	}
	if _, err := h.m.ReleaseHold(ctx, retention.Caller{Actor: audit.Actor{User: "lena", Role: "legal"}}, "C-5", "settled"); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 0 {
		t.Fatalf("after the release the case-scoped account sees %d messages", n)
	}
}

// POST /api/v1/retention/run runs the schedule's run now: a dry run
// changes nothing and is audited as a read; a real run disposes of what
// the policy no longer keeps (not what a hold keeps), each disposal
// audited under the caller, and the call with its counts.
func TestRetentionRunNow(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	setup := retention.Caller{Actor: audit.Actor{User: "setup"}, Source: audit.Source{Service: "test"}}
	if _, err := h.m.PlaceHold(ctx, setup, retention.HoldSpec{Case: "C-keep", Reason: "suit", Custodians: []string{"erin@example.com"}}); err != nil {
		t.Fatal(err)
	}
	q3 := strconv.FormatUint(h.seqs["q3 budget"], 10)
	lunch := strconv.FormatUint(h.seqs["lunch"], 10)

	// Within the 7 years: nothing to dispose.
	code, _, body := h.do("POST", "/api/v1/retention/run", "admin", map[string]any{})
	var rep retention.RunReport
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil || rep.Checked != 3 || len(rep.Disposed) != 0 {
		t.Fatalf("run within the period: %d %s", code, body)
	}

	h.ahead.Store(int64(8 * 365 * 24 * time.Hour))
	head := h.alog.Head()
	code, _, body = h.do("POST", "/api/v1/retention/run", "legal", map[string]any{"dry_run": true})
	rep = retention.RunReport{}
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil || !rep.DryRun || len(rep.Disposed) != 2 || rep.Held != 1 {
		t.Fatalf("dry run: %d %s", code, body)
	}
	if code, _, _ := h.do("GET", "/api/v1/messages/"+q3, "auditor", nil); code != 200 {
		t.Fatalf("a dry run disposed of message %s: %d", q3, code)
	}
	var dry []string
	for _, ev := range h.events(head) {
		if ev.Actor.User == "lena" {
			dry = append(dry, string(ev.Action)+"/"+ev.Actor.User+"/"+ev.Details.Note)
		}
	}
	if !slices.Contains(dry, "auth.login/lena/POST /api/v1/retention/run: retention dry run: 3 checked, would dispose 2, would erase 0, 1 held, 0 failed") || len(dry) != 1 {
		t.Fatalf("a dry run's events: %q", dry)
	}

	head = h.alog.Head()
	code, _, body = h.do("POST", "/api/v1/retention/run", "admin", map[string]any{})
	rep = retention.RunReport{}
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil || rep.DryRun || len(rep.Disposed) != 2 || rep.Held != 1 || len(rep.Failed) != 0 {
		t.Fatalf("run: %d %s", code, body)
	}
	for _, d := range rep.Disposed {
		if d.Tombstone == 0 {
			t.Fatalf("disposal without a tombstone: %s", body)
		}
	}
	if code, _, _ := h.do("GET", "/api/v1/messages/"+q3, "auditor", nil); code != http.StatusGone {
		t.Fatalf("disposed message %s: %d", q3, code)
	}
	if code, _, _ := h.do("GET", "/api/v1/messages/"+lunch, "auditor", nil); code != 200 {
		t.Fatalf("held message %s: %d", lunch, code)
	}
	disposals, summary := 0, false
	for _, ev := range h.events(head) {
		if ev.Action == audit.ActionDispose && ev.Actor.User == "adam" && ev.Outcome == audit.OutcomeSuccess {
			if ev.Source.Service == "http" && strings.Contains(ev.Details.Note, "disposed 2") {
				summary = true
			} else {
				disposals++
			}
		}
	}
	if disposals != 2 || !summary {
		t.Fatalf("audit: %d disposals by adam, summary %v", disposals, summary)
	}
	// Nothing left to do: a second run disposes of nothing.
	code, _, body = h.do("POST", "/api/v1/retention/run", "admin", map[string]any{})
	rep = retention.RunReport{}
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil || len(rep.Disposed) != 0 || rep.Held != 1 {
		t.Fatalf("second run: %d %s", code, body)
	}
	if code, _, _ := h.do("POST", "/api/v1/retention/run", "auditor", map[string]any{}); code != http.StatusForbidden {
		t.Fatalf("auditor ran retention: %d", code)
	}
	if code, _, _ := h.do("POST", "/api/v1/retention/run", "admin", map[string]any{"dry_run": true, "now": "2040-01-01"}); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", code)
	}
}
