//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// A session in the IMAP view of a real cairn serve, driven by Python's
// imaplib (a failed login, login, SELECT, FETCH, SEARCH, STORE of an
// annotation), yields exactly the expected audit events, in order, each
// with the right actor, source and target, in the real audit log.
func TestIMAPSessionAuditTrail(t *testing.T) {
	h, imapAddr := newIMAPHTTPInstance(t)
	for i, to := range []string{"bob@example.com", "carol@example.com"} {
		h.deliverFromAlice(t, "trail", i, to)
	}
	head := h.head(t)
	host, port, _ := strings.Cut(imapAddr, ":")
	script := `
import imaplib, json, sys
host, port = sys.argv[1], int(sys.argv[2])
M = imaplib.IMAP4(host, port)
try:
    M.login("aud", "a wrong password")
    sys.exit("the wrong password was accepted")
except imaplib.IMAP4.error:
    pass
M = imaplib.IMAP4(host, port)
M.login("aud", "the right password")
typ, _ = M.select("INBOX")
assert typ == "OK", typ
typ, data = M.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK", typ
typ, data = M.uid("SEARCH", None, 'FROM "alice"')
uids = data[0].decode().split()
assert len(uids) == 2, data
typ, _ = M.uid("STORE", uids[0], "+FLAGS", "($Reviewed)")
assert typ == "OK", typ
M.logout()
print(json.dumps({"uids": uids}))
`
	out, err := exec.Command("python3", "-c", script, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib session: %v\n%s", err, out)
	}
	var res struct{ UIDs []string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("imaplib printed %q", out)
	}
	uidSet := res.UIDs[0] + ":" + res.UIDs[1]

	evs, _ := h.eventsAfter(t, head)
	var got []map[string]any
	for _, ev := range evs {
		if ev["action"] != "checkpoint.publish" { // the system's own, on a timer
			got = append(got, ev)
		}
	}
	str := func(ev map[string]any, path ...string) string {
		var v any = ev
		for _, p := range path {
			m, _ := v.(map[string]any)
			v = m[p]
		}
		if v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}
	type want struct {
		action, outcome, user, role, folder, uids string
	}
	wants := []want{
		{"auth.failure", "failure", "aud", "", "", ""},
		{"auth.login", "success", "aud", "auditor", "", ""},
		{"mailbox.select", "success", "aud", "auditor", "INBOX", ""},
		{"message.fetch", "success", "aud", "auditor", "INBOX", uidSet},
		{"message.search", "success", "aud", "auditor", "INBOX", ""},
		{"message.flag", "success", "aud", "auditor", "INBOX", res.UIDs[0]},
	}
	if len(got) != len(wants) {
		var names []string
		for _, ev := range got {
			names = append(names, str(ev, "action"))
		}
		t.Fatalf("audit events after the session: %v, want %d: %+v", names, len(wants), wants)
	}
	session := ""
	for i, w := range wants {
		ev := got[i]
		check := func(what, have, want string) {
			if have != want {
				t.Errorf("event %d (%s): %s = %q, want %q\n%v", i, w.action, what, have, want, ev)
			}
		}
		check("action", str(ev, "action"), w.action)
		check("outcome", str(ev, "outcome"), w.outcome)
		check("actor.user", str(ev, "actor", "user"), w.user)
		check("source.service", str(ev, "source", "service"), "imap")
		check("source.ip", str(ev, "source", "ip"), "127.0.0.1")
		if w.role != "" {
			check("actor.role", str(ev, "actor", "role"), w.role)
		}
		if w.folder != "" {
			check("target.folder", str(ev, "target", "folder"), w.folder)
		}
		if w.uids != "" {
			check("target.uids", str(ev, "target", "uids"), w.uids)
		}
		// Every event of the logged-in connection names the same session.
		if i >= 1 {
			s := str(ev, "actor", "session")
			if s == "" {
				t.Errorf("event %d (%s) names no session", i, w.action)
			} else if session == "" {
				session = s
			} else if s != session {
				t.Errorf("event %d (%s): session %q, the login's was %q", i, w.action, s, session)
			}
		}
	}
	if p := str(got[3], "details", "parts"); !strings.Contains(p, "HEADER.FIELDS") {
		t.Errorf("fetch event parts %q do not name the header fields fetched", p)
	}
	if c := str(got[4], "details", "count"); c != "2" {
		t.Errorf("search event count %q, want 2", c)
	}
	if q, hq := str(got[4], "details", "query"), str(got[4], "details", "query_hmac"); q == "" && hq == "" {
		t.Errorf("search event carries neither the query nor its HMAC: %v", got[4])
	}
	if f := str(got[5], "details", "flags"); !strings.Contains(f, "$Reviewed") {
		t.Errorf("flag event flags %q, want +$Reviewed", f)
	}
	if stdout, stderr, code := h.cli("audit", "verify"); code != 0 {
		t.Fatalf("cairn audit verify: exit %d\n%s%s", code, stdout, stderr)
	}
}

// newIMAPHTTPInstance is cairn serve with the HTTP API and the IMAP view;
// it returns the view's address too.
func newIMAPHTTPInstance(t *testing.T) (*httpInstance, string) {
	t.Helper()
	imapAddr := freeAddr(t)
	return newHTTPInstance(t, config{"imap.enabled": true, "imap.listen": imapAddr}), imapAddr
}

// deliverFromAlice sends message "<label> <i>" from alice to to by SMTP.
func (h *httpInstance) deliverFromAlice(t *testing.T, label string, i int, to string) {
	t.Helper()
	raw := []byte(fmt.Sprintf("From: alice@example.com\r\nTo: %s\r\nSubject: %s %d\r\nMessage-ID: <%s-%d@test>\r\nDate: Fri, 01 Mar 2024 10:00:00 +0000\r\n\r\nminutes of the meeting\r\n", to, label, i, label, i))
	h.deliverIndexed(t, "alice@example.com", []string{to}, raw)
}
