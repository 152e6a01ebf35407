package main

// cairn harvest run|status against go-imap's in-memory IMAP server on
// 127.0.0.1 (fast); the Dovecot and kill -9 checks are in
// harvest_integration_test.go.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/cairn-archive/cairn/ingest/harvest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

type memLiteral struct {
	*bytes.Reader
	n int64
}

func (l memLiteral) Size() int64 { return l.n }

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

// memIMAP serves one user's mailboxes from memory on 127.0.0.1.
func memIMAP(t *testing.T, user, pw string) (*imapmemserver.User, int) {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(user, pw)
	mem.AddUser(u)
	u.Create("INBOX", nil)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapESearch: {}, imap.CapIdle: {}, imap.CapUnselect: {}},
		InsecureAuth: true,
		Logger:       quietLog{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u, ln.Addr().(*net.TCPAddr).Port
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func memAppend(t *testing.T, u *imapmemserver.User, folder string, raw []byte) {
	t.Helper()
	u.Create(folder, nil)
	if _, err := u.Append(folder, memLiteral{bytes.NewReader(raw), int64(len(raw))}, &imap.AppendOptions{Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// harvestStatus runs `cairn harvest status --json`.
func harvestStatus(t *testing.T, dir string, args ...string) []harvest.SourceStatus {
	t.Helper()
	out := mustCLI(t, dir, append([]string{"--config", "c.yaml", "harvest", "status", "--json"}, args...)...)
	var st struct {
		Sources []harvest.SourceStatus `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return st.Sources
}

func TestHarvestRunOnceAndStatus(t *testing.T) {
	u, port := memIMAP(t, "alice@example.com", "s3cret")
	g := gen.New(71)
	g.CRLF = true
	var msgs [][]byte
	for i := 0; i < 120; i++ {
		raw := g.Next(3000 + i*31).Raw
		msgs = append(msgs, raw)
		memAppend(t, u, []string{"INBOX", "Projects", "Projects/Cairn", "Trash"}[i%4], raw)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "alice.pw"), []byte("s3cret\n"), 0o600)
	cfg := fmt.Sprintf(`harvest:
  batch_size: 7
  sources:
    - name: alice
      host: 127.0.0.1
      port: %d
      tls: none
      user: alice@example.com
      password_file: alice.pw
      exclude: [Trash]
    - name: off
      enabled: false
      host: 127.0.0.1
      port: 1
      tls: none
      user: bob@example.com
      password_env: NOPE
`, port)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o600)
	mustCLI(t, dir, "--config", "c.yaml", "init")

	// Before any run the status lists the configured sources.
	if st := harvestStatus(t, dir); len(st) != 2 || !st[0].LastEnd.IsZero() {
		t.Fatalf("status before a run: %+v", st)
	}
	out := mustCLI(t, dir, "--config", "c.yaml", "harvest", "run", "--once")
	if !strings.Contains(out, "alice: ok: archived 90,") {
		t.Fatalf("run: %s", out)
	}
	// The harvested messages come back byte for byte; Trash was excluded.
	for i, raw := range msgs {
		if i%4 == 3 {
			continue
		}
		sum := sha256Hex(raw)
		got := mustCLI(t, dir, "--config", "c.yaml", "cat", sum)
		if got != string(raw) {
			t.Fatalf("message %d differs", i)
		}
		if i > 12 {
			break // a sample: cat starts a process each time
		}
	}
	st := harvestStatus(t, dir)
	if st[0].Name != "alice" || st[0].LastSuccess.IsZero() || len(st[0].Folders) != 3 || !st[1].Disabled {
		t.Fatalf("status: %+v", st)
	}
	for _, f := range st[0].Folders {
		if f.Archived != 30 || f.LastUID != 30 || f.UIDValidity == 0 {
			t.Fatalf("folder %+v", f)
		}
	}
	text := mustCLI(t, dir, "--config", "c.yaml", "harvest", "status")
	for _, want := range []string{"source alice", "Projects/Cairn", "disabled", "UIDVALIDITY"} {
		if !strings.Contains(text, want) {
			t.Fatalf("status text lacks %q:\n%s", want, text)
		}
	}
	// Again: nothing new.
	memAppend(t, u, "Projects", g.Next(5000).Raw)
	out = mustCLI(t, dir, "--config", "c.yaml", "harvest", "run", "--once", "--source", "alice")
	if !strings.Contains(out, "archived 1,") {
		t.Fatalf("second run: %s", out)
	}
	if out := mustCLI(t, dir, "--config", "c.yaml", "verify", "--quiet"); !strings.Contains(out, "91 deliveries") {
		t.Fatalf("verify: %s", out)
	}
	// An unknown source is an error; a failing one exits 1 and says why.
	if _, errs, code := cli(t, dir, "--config", "c.yaml", "harvest", "run", "--once", "--source", "nope"); code != 2 || !strings.Contains(errs, `no source is named "nope"`) {
		t.Fatalf("unknown source: %d %s", code, errs)
	}
	os.WriteFile(filepath.Join(dir, "alice.pw"), []byte("wrong\n"), 0o600)
	out, _, code := cli(t, dir, "--config", "c.yaml", "harvest", "run", "--once", "--source", "alice")
	if code != 1 || !strings.Contains(out, "alice: FAILED") || !strings.Contains(out, "authentication") {
		t.Fatalf("bad password: exit %d\n%s", code, out)
	}
	if st := harvestStatus(t, dir, "--source", "alice"); len(st) != 1 || st[0].Failures == 0 || !strings.Contains(st[0].LastError, "authentication") {
		t.Fatalf("status after a failure: %+v", st)
	}
}

func TestHarvestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ yaml, want string }{
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u@example.com\n", "exactly one of password_file and password_env"},
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u@example.com\n      password_env: X\n      tls: ssl\n", `tls "ssl"`},
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u\n      password_env: X\n", "custodian"},
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u@example.com\n      auth: xoauth2\n      password_env: X\n", "token"},
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u@example.com\n      password_env: X\n      include: [\"a\\\\\"]\n", "pattern"},
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u@example.com\n      password_env: X\n      journal: move\n", "move_to"},
		{"harvest:\n  sources:\n    - name: a\n      host: h\n      user: u@example.com\n      password_env: X\n    - name: a\n      host: h\n      user: u@example.com\n      password_env: X\n", "second source"},
		{"harvest:\n  sources:\n    - name: a\n      hots: h\n", "hots"},
	} {
		os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(tc.yaml), 0o600)
		if _, errs, code := cli(t, dir, "--config", "c.yaml", "config", "check"); code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, %s", tc.yaml, code, errs)
		}
	}
}
