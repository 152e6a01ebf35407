//go:build integration

package e2e

// The IMAP view (issue 4) driven by real clients against `cairn serve`:
// mbsync (isync) pulls every folder, a Python imaplib script checks each
// command, neomutt in tmux reads and fails to delete or move, Thunderbird
// (thunderbird_test.go) syncs for offline use. scripts/imap-clients.sh
// installs the clients; a test fails when one is missing.

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// requireTools fails the test when a program is missing.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s is not installed: run scripts/imap-clients.sh (apt-get isync neomutt tmux thunderbird)", n)
		}
	}
}

// imapArchive is an archive built from the shared corpus and generated
// mail, served by cairn serve with the IMAP view on a free port.
type imapArchive struct {
	*instance
	imapAddr string
	password string
	// originals: SHA-256 of each imported message, with CRLF as LF (how
	// mbsync stores mail) -> the message.
	originals map[[32]byte][]byte
	objects   map[string][32]byte // object store before any client ran
	entries   int
}

func newIMAPArchive(t *testing.T, generated int) *imapArchive {
	t.Helper()
	imapAddr := freeAddr(t)
	in := newInstance(t, config{"imap.enabled": true, "imap.listen": imapAddr})
	a := &imapArchive{instance: in, imapAddr: imapAddr, originals: map[[32]byte][]byte{}}
	in.mustCLI("init")
	files, _ := filepath.Glob(filepath.Join(repoRoot, "..", "shared", "corpus", "enmime", "*.raw"))
	if len(files) == 0 {
		t.Fatal("corpus not found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		a.addOriginal(b)
	}
	in.mustCLI(append([]string{"import", "--custodian", "alice@example.com"}, files...)...)
	// Generated mail for two custodians, LF line ends as Maildir keeps it.
	g := gen.New(42)
	for i, cust := range []string{"bob@example.org", "carol@example.net"} {
		md, err := gen.CreateMaildir(filepath.Join(in.dir, fmt.Sprintf("maildir%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < generated/2; j++ {
			m := g.Next(2500 + (j%7)*3000)
			a.addOriginal(m.Raw)
			if _, err := md.Deliver(m.Raw, m.Date, ""); err != nil {
				t.Fatal(err)
			}
		}
		in.mustCLI("import", "--custodian", cust, md.Dir)
	}
	in.start()
	log := in.log()
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no bootstrap password in the serve log:\n%s", tail(log, 30))
	}
	a.password = m[1]
	a.objects = snapshotObjects(t, in.data)
	a.entries = queryInt(t, in.db(), `SELECT COUNT(*) FROM entries`)
	return a
}

func (a *imapArchive) addOriginal(raw []byte) {
	lf := bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	a.originals[sha256.Sum256(lf)] = raw
}

// snapshotObjects hashes every object of the archive's store except the
// audit log's own (which grows with every access), by key.
func snapshotObjects(t *testing.T, data string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	eachObject(t, filepath.Join(data, "objects"), func(key string, b []byte) {
		if !strings.HasPrefix(key, "audit/") {
			out[key] = sha256.Sum256(b)
		}
	})
	return out
}

// unchanged checks that every object the archive held before the clients
// ran is still there, byte for byte, that the ledger grew by exactly
// added entries, and that verify --full passes.
func (a *imapArchive) unchanged(t *testing.T, added int) {
	t.Helper()
	now := snapshotObjects(t, a.data)
	for p, h := range a.objects {
		if now[p] != h {
			t.Errorf("object %s changed or vanished", p)
		}
	}
	if n := queryInt(t, a.db(), `SELECT COUNT(*) FROM entries`); n != a.entries+added {
		t.Errorf("ledger has %d entries, want %d", n, a.entries+added)
	}
	t.Logf("after the clients: %s", a.verify())
}

func TestIMAPClients(t *testing.T) {
	requireTools(t, "mbsync", "neomutt", "tmux", "python3")
	n := 400
	if s := os.Getenv("CAIRN_E2E_IMAP_MESSAGES"); s != "" {
		fmt.Sscan(s, &n)
	}
	a := newIMAPArchive(t, n)
	t.Run("mbsync", func(t *testing.T) { testMbsync(t, a) })
	t.Run("imaplib", func(t *testing.T) { testImaplib(t, a) })
	t.Run("neomutt", func(t *testing.T) { testNeomutt(t, a) })
	// imaplib archived one message through SMTP (its IDLE check); nothing
	// else changed.
	a.unchanged(t, 1)
}

// mbsyncConfig writes an mbsyncrc that pulls the folders matching patterns
// (mbsync syntax) from the view at host:port into a fresh Maildir, with
// extra lines in the account section; it returns the file and the Maildir.
func mbsyncConfig(t *testing.T, host, port, user, pw, patterns, extra string) (rc, store string) {
	t.Helper()
	dir := t.TempDir()
	rc = filepath.Join(dir, "mbsyncrc")
	store = filepath.Join(dir, "store")
	os.MkdirAll(store, 0o700)
	conf := fmt.Sprintf(`IMAPAccount cairn
Host %s
Port %s
User %s
Pass "%s"
SSLType None
AuthMechs LOGIN
%s
IMAPStore cairn
Account cairn

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel pull
Far :cairn:
Near :local:
Patterns %s
Create Near
Sync Pull
SyncState *
`, host, port, user, pw, extra, store, store, patterns)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return rc, store
}

// testMbsync pulls every folder into a Maildir and compares each message
// with the original. mbsync stores LF line ends and inserts one X-TUID
// header line (its own bookkeeping); it refuses, with a warning, messages
// whose header has no end (no blank line), which the corpus has two of.
func testMbsync(t *testing.T, a *imapArchive) {
	host, port, _ := strings.Cut(a.imapAddr, ":")
	rc, store := mbsyncConfig(t, host, port, "auditor", a.password, "*", "PipelineDepth 50\n")
	start := time.Now()
	out, err := exec.Command("mbsync", "-c", rc, "-a").CombinedOutput()
	if err != nil {
		t.Fatalf("mbsync: %v\n%s", err, out)
	}
	t.Logf("mbsync pulled every folder in %s", time.Since(start).Round(time.Millisecond))
	skipped := strings.Count(string(out), "has incomplete header; skipping")
	tuid := regexp.MustCompile(`(?m)^X-TUID: [A-Za-z0-9+/]{12}\n`)
	folders := map[string]int{}
	err = filepath.Walk(store, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || strings.HasPrefix(fi.Name(), ".") {
			return err
		}
		d := filepath.Base(filepath.Dir(p))
		if d != "new" && d != "cur" {
			return nil
		}
		rel, _ := filepath.Rel(store, filepath.Dir(filepath.Dir(p)))
		folders[rel]++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b = tuid.ReplaceAll(b, nil)
		if _, ok := a.originals[sha256.Sum256(b)]; !ok {
			t.Errorf("%s matches no original message", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every folder holds as many messages as the server has, less those
	// mbsync refuses (no header end: the corpus has two, in alice's mail).
	headerless := 0
	for _, raw := range a.originals {
		if !bytes.Contains(raw, []byte("\n\n")) && !bytes.Contains(raw, []byte("\n\r\n")) {
			headerless++
		}
	}
	db := a.db()
	total := queryInt(t, db, `SELECT COUNT(*) FROM messages WHERE state = 0`)
	if got := folders["INBOX"]; got != total-headerless {
		t.Errorf("INBOX: %d messages pulled, want %d of %d (mbsync refuses %d without a header end)", got, total-headerless, total, headerless)
	}
	for _, cust := range []string{"alice@example.com", "bob@example.org", "carol@example.net"} {
		want := queryInt(t, db, `SELECT COUNT(*) FROM custodians WHERE addr = ?`, cust)
		if cust == "alice@example.com" {
			want -= headerless
		}
		if got := folders["Custodians/"+cust]; got != want {
			t.Errorf("Custodians/%s: %d messages pulled, want %d", cust, got, want)
		}
	}
	var names []string
	for f := range folders {
		names = append(names, f)
	}
	sort.Strings(names)
	if len(names) < 5 {
		t.Errorf("folders pulled: %v", names)
	}
	t.Logf("folders pulled: %v; mbsync refused %d messages without a header end", names, skipped)
}

// testImaplib runs scripts/imap_check.py.
func testImaplib(t *testing.T, a *imapArchive) {
	host, port, _ := strings.Cut(a.imapAddr, ":")
	cmd := exec.Command("python3", filepath.Join(repoRoot, "scripts", "imap_check.py"), host, port, "auditor", a.password, a.smtpAddr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("imap_check.py: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}

// testNeomutt opens INBOX in neomutt (in a tmux session), reads a message,
// then tries to delete one and to save (move) one elsewhere: both refused.
func testNeomutt(t *testing.T, a *imapArchive) {
	dir := t.TempDir()
	rc := filepath.Join(dir, "muttrc")
	host, port, _ := strings.Cut(a.imapAddr, ":")
	os.WriteFile(rc, []byte(fmt.Sprintf(`set folder="imap://auditor@%s:%s/"
set imap_pass="%s"
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set confirmappend=no
set confirmcreate=no
set delete=yes
set quit=yes
set wait_key=no
set sort=date
set mail_check=600
`, host, port, a.password)), 0o600)
	sock := "cairn-e2e-" + fmt.Sprint(os.Getpid())
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	logf := filepath.Join(dir, "neomutt.log")
	cmd := exec.Command("tmux", "-L", sock, "new-session", "-d", "-s", "nm", "-x", "200", "-y", "50",
		fmt.Sprintf("TERM=xterm-256color neomutt -n -F %s -d 2 -l %s", rc, logf))
	cmd.Env = append(os.Environ(), "TERM=xterm-256color")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v\n%s", err, out)
	}
	defer exec.Command("tmux", "-L", sock, "kill-server").Run()
	screen := func() string { return tmux("capture-pane", "-p", "-t", "nm") }
	waitFor := func(what string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := screen()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("neomutt: no %s within 30 s; screen:\n%s", what, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	index := waitFor("index", func(s string) bool { return strings.Contains(s, "+INBOX [Msgs:") })
	msgs := regexp.MustCompile(`\[Msgs:(\d+)`).FindStringSubmatch(index)[1]
	// Read the first message.
	tmux("send-keys", "-t", "nm", "Enter")
	waitFor("a message", func(s string) bool { return strings.Contains(s, "Date:") && strings.Contains(s, "From:") })
	tmux("send-keys", "-t", "nm", "q")
	waitFor("the index again", func(s string) bool { return strings.Contains(s, "+INBOX [Msgs:") })
	// Delete one and sync: refused by the server.
	tmux("send-keys", "-t", "nm", "d")
	tmux("send-keys", "-t", "nm", "$")
	time.Sleep(2 * time.Second)
	// Save (copy and delete) one to another folder: refused.
	tmux("send-keys", "-t", "nm", "j", "s")
	time.Sleep(500 * time.Millisecond)
	tmux("send-keys", "-t", "nm", "C-u", "=Trash", "Enter")
	waitFor("an error saving", func(s string) bool { return strings.Contains(s, "Error saving") || strings.Contains(s, "NOPERM") })
	tmux("send-keys", "-t", "nm", "q")
	time.Sleep(time.Second)
	log, _ := os.ReadFile(logf + "0")
	if len(log) == 0 {
		log, _ = os.ReadFile(logf)
	}
	if !bytes.Contains(log, []byte("NOPERM")) {
		t.Errorf("neomutt's log shows no NO [NOPERM] answer")
	}
	if bytes.Contains(log, []byte("TRYCREATE")) {
		t.Errorf("the server answered TRYCREATE")
	}
	// INBOX still holds every message.
	c := exec.Command("python3", "-c", fmt.Sprintf(`import imaplib; M=imaplib.IMAP4(%q,%s); M.login("auditor",%q); print(M.select("INBOX",readonly=True)[1][0].decode())`, host, port, a.password))
	out, err := c.Output()
	if err != nil {
		t.Fatal(err)
	}
	holds := strings.TrimSpace(string(out))
	var shown, held int
	fmt.Sscan(msgs, &shown)
	fmt.Sscan(holds, &held)
	// neomutt leaves out the corpus's "Not an RFC-822 Document" (no header
	// at all: its HEADER.FIELDS is empty); every other message shows.
	if shown < held-1 {
		t.Errorf("neomutt showed %d messages of %d", shown, held)
	}
	t.Logf("neomutt showed %d messages; INBOX holds %d after its delete and move attempts", shown, held)
}
