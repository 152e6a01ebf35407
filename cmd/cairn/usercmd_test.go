package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestUserAndSearchCommands: accounts are added (generated or given
// password), listed, disabled and re-passworded; search finds by header
// and by body word; each change and search is in the audit log.
func TestUserAndSearchCommands(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	mustCLI(t, dir, append([]string{"import", "--custodian", "alice@example.com"}, corpusFiles(t)...)...)
	out := mustCLI(t, dir, "user", "add", "Carol", "--role", "legal", "--scope", "@example.com", "--scope", "case:ACME-1")
	if !regexp.MustCompile(`password: [a-z2-9]{5}(-[a-z2-9]{5}){4}\n`).MatchString(out) {
		t.Fatalf("user add printed %q", out)
	}
	cmd := exec.Command(cairnBin, "user", "add", "dave", "--role", "admin", "--password-stdin")
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "CAIRN_CONFIG=")
	cmd.Stdin = strings.NewReader("a long enough password\n")
	if b, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(b), "password:") {
		t.Fatalf("--password-stdin: %v %s", err, b)
	}
	if _, errs, code := cli(t, dir, "user", "add", "eve", "--role", "root"); code == 0 || !strings.Contains(errs, "auditor, legal or admin") {
		t.Fatalf("bad role: %d %s", code, errs)
	}
	if _, _, code := cli(t, dir, "user", "add", "carol", "--role", "auditor"); code == 0 {
		t.Fatal("duplicate user added")
	}
	mustCLI(t, dir, "user", "disable", "carol")
	mustCLI(t, dir, "user", "passwd", "dave")
	list := mustCLI(t, dir, "user", "list")
	for _, want := range []string{"carol", "legal", "domain:example.com,case:ACME-1", "disabled", "dave", "admin", "all", "enabled"} {
		if !strings.Contains(list, want) {
			t.Errorf("user list lacks %q:\n%s", want, list)
		}
	}
	hits := mustCLI(t, dir, "search", "SUBJECT", "undeliverable")
	if n := strings.Count(hits, "\n"); n != 1 || !strings.Contains(hits, "postmaster@example.com") {
		t.Fatalf("search SUBJECT: %q", hits)
	}
	if hits := mustCLI(t, dir, "search", "BODY attachment NOT FROM postmaster"); strings.Count(hits, "\n") < 3 {
		t.Fatalf("search BODY: %q", hits)
	}
	if _, errs, code := cli(t, dir, "search", "FROM"); code == 0 || !strings.Contains(errs, "syntax") {
		t.Fatalf("bad query: %d %s", code, errs)
	}
	tail := mustCLI(t, dir, "audit", "tail", "-n", "50")
	if c := strings.Count(tail, `"action":"user.change"`); c < 4 {
		t.Errorf("%d user.change events:\n%s", c, tail)
	}
	if c := strings.Count(tail, `"action":"message.search"`); c != 2 {
		t.Errorf("%d message.search events", c)
	}
}
