//go:build integration

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A hold placed through the HTTP API of a real cairn serve becomes a
// Cases/<id> folder in the IMAP view holding exactly the held messages
// (also one archived after the hold), and an account scoped to the case
// sees those messages and nothing else; after the release the folder is
// gone. Driven with Python imaplib. A second hold for the case that brings
// in an older message gives it the folder's next UID under the same
// UIDVALIDITY, so that mbsync, which synced the folder before, pulls it
// like new mail.
func TestIMAPCaseFolders(t *testing.T) {
	h, imapAddr := newIMAPHTTPInstance(t)
	deliver := func(i int, to string) { h.deliverFromAlice(t, "case", i, to) }
	deliver(0, "bob@example.com")
	deliver(1, "carol@example.com")
	deliver(2, "bob@example.com")
	if r := curl(t, h.curl, "POST", h.base+"/api/v1/holds", h.tokens["legal"], map[string]any{"case": "C-9", "reason": "e2e", "custodians": []string{"bob@example.com"}}); r.code != 201 {
		t.Fatalf("place hold: %d %s", r.code, r.body)
	}
	deliver(3, "bob@example.com") // after the hold: held too
	deliver(4, "dave@example.com")
	cmd := exec.Command(cairnBin, "--config", h.cfg, "user", "add", "casey", "--role", "auditor", "--scope", "case:C-9", "--password-stdin")
	cmd.Env = env()
	cmd.Stdin = strings.NewReader("the case password\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("user add casey: %v %s", err, out)
	}

	host, port, _ := strings.Cut(imapAddr, ":")
	script := `
import imaplib, json, sys
host, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
M = imaplib.IMAP4(host, port)
M.login(user, pw)
typ, data = M.list()
folders = sorted(l.decode().rsplit(' ', 1)[1].strip('"') for l in data if l)
out = {"folders": folders}
for f in ("INBOX", "Cases/C-9"):
    typ, data = M.select(f, readonly=True)
    if typ != "OK":
        out[f] = None
        continue
    typ, data = M.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])") if int(data[0]) else ("OK", [])
    out[f] = sorted(p[1].decode().strip() for p in data if isinstance(p, tuple))
M.logout()
print(json.dumps(out))
`
	session := func(user, pw string) map[string]any {
		t.Helper()
		out, err := exec.Command("python3", "-c", script, host, port, user, pw).CombinedOutput()
		if err != nil {
			t.Fatalf("imaplib as %s: %v\n%s", user, err, out)
		}
		var res map[string]any
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("imaplib printed %q", out)
		}
		return res
	}
	held := "[Subject: case 0 Subject: case 2 Subject: case 3]"
	aud := session("aud", "the right password")
	if !strings.Contains(fmt.Sprint(aud["folders"]), "Cases/C-9") {
		t.Errorf("auditor's LIST has no Cases/C-9: %v", aud["folders"])
	}
	if got := fmt.Sprint(aud["Cases/C-9"]); got != held {
		t.Errorf("auditor's Cases/C-9: %s, want %s", got, held)
	}
	if n := len(aud["INBOX"].([]any)); n != 5 {
		t.Errorf("auditor's INBOX: %d messages, want 5", n)
	}
	casey := session("casey", "the case password")
	if got := fmt.Sprint(casey["INBOX"]); got != held {
		t.Errorf("case-scoped INBOX: %s, want only the held %s", got, held)
	}
	if got := fmt.Sprint(casey["Cases/C-9"]); got != held {
		t.Errorf("case-scoped Cases/C-9: %s, want %s", got, held)
	}

	// mbsync keeps Cases/C-9 in a Maildir; a second hold (carol) adds the
	// older message 1. UIDVALIDITY stays, UIDNEXT grows by one, and the
	// next mbsync run pulls the newcomer.
	requireTools(t, "mbsync")
	pull := mbsyncCase(t, host, port, "aud", "the right password", "Cases/C-9")
	if n := pull(); n != 3 {
		t.Fatalf("mbsync pulled %d messages of Cases/C-9, want 3", n)
	}
	before := caseStatus(t, host, port, "aud", "the right password", "Cases/C-9")
	if r := curl(t, h.curl, "POST", h.base+"/api/v1/holds", h.tokens["legal"], map[string]any{"case": "C-9", "reason": "e2e, widened", "custodians": []string{"carol@example.com"}}); r.code != 201 {
		t.Fatalf("place the second hold: %d %s", r.code, r.body)
	}
	after := caseStatus(t, host, port, "aud", "the right password", "Cases/C-9")
	if after[0] != before[0] || after[1] != before[1]+1 || before[2] != 3 || after[2] != 4 {
		t.Errorf("STATUS Cases/C-9 (UIDVALIDITY UIDNEXT MESSAGES) %v before the second hold, %v after; want the same UIDVALIDITY, UIDNEXT one greater, 3 then 4 messages", before, after)
	}
	if n := pull(); n != 4 {
		t.Errorf("after the second hold, mbsync has %d messages of Cases/C-9, want 4", n)
	}
	held = "[Subject: case 0 Subject: case 1 Subject: case 2 Subject: case 3]"
	if got := fmt.Sprint(session("aud", "the right password")["Cases/C-9"]); got != held {
		t.Errorf("Cases/C-9 after the second hold: %s, want %s", got, held)
	}
	if got := fmt.Sprint(session("casey", "the case password")["INBOX"]); got != held {
		t.Errorf("case-scoped INBOX after the second hold: %s, want %s", got, held)
	}

	if r := curl(t, h.curl, "POST", h.base+"/api/v1/holds/C-9/release", h.tokens["legal"], map[string]any{"reason": "settled"}); r.code != 200 {
		t.Fatalf("release: %d %s", r.code, r.body)
	}
	aud = session("aud", "the right password")
	if strings.Contains(fmt.Sprint(aud["folders"]), "Cases/C-9") || aud["Cases/C-9"] != nil {
		t.Errorf("after the release, Cases/C-9 is still there: %v", aud)
	}
	casey = session("casey", "the case password")
	if n := len(casey["INBOX"].([]any)); n != 0 {
		t.Errorf("after the release, the case-scoped INBOX shows %d messages", n)
	}
}

// caseStatus returns STATUS (UIDVALIDITY UIDNEXT MESSAGES) of folder,
// asked with Python imaplib.
func caseStatus(t *testing.T, host, port, user, pw, folder string) [3]int64 {
	t.Helper()
	script := `
import imaplib, re, sys
M = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
M.login(sys.argv[3], sys.argv[4])
typ, data = M.status('"%s"' % sys.argv[5], "(UIDVALIDITY UIDNEXT MESSAGES)")
assert typ == "OK", data
d = dict(re.findall(r"(UIDVALIDITY|UIDNEXT|MESSAGES) (\d+)", data[0].decode()))
print(d["UIDVALIDITY"], d["UIDNEXT"], d["MESSAGES"])
M.logout()
`
	out, err := exec.Command("python3", "-c", script, host, port, user, pw, folder).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib STATUS %s: %v\n%s", folder, err, out)
	}
	var st [3]int64
	if _, err := fmt.Sscan(string(out), &st[0], &st[1], &st[2]); err != nil {
		t.Fatalf("imaplib STATUS printed %q", out)
	}
	return st
}

// mbsyncCase returns a function that runs mbsync to pull folder into one
// Maildir (kept across calls, with mbsync's sync state) and counts the
// messages there.
func mbsyncCase(t *testing.T, host, port, user, pw, folder string) func() int {
	t.Helper()
	rc, store := mbsyncConfig(t, host, port, user, pw, `"`+folder+`"`, "")
	return func() int {
		t.Helper()
		if out, err := exec.Command("mbsync", "-c", rc, "-a").CombinedOutput(); err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
		n := 0
		for _, sub := range []string{"new", "cur"} {
			es, _ := os.ReadDir(filepath.Join(store, folder, sub))
			n += len(es)
		}
		return n
	}
}
