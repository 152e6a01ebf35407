// Package dovecottest runs a private Dovecot on 127.0.0.1 for tests and
// benchmarks, through scripts/dovecot.sh: installed with apt-get when
// missing, configured in a temp folder (passwd-file users, Maildir), and
// stopped when the test ends. A test that cannot get Dovecot fails; it
// never skips.
package dovecottest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
	"github.com/cairn-archive/cairn/internal/freeport"
)

// Options configure an instance.
type Options struct {
	// Users maps login names to passwords.
	Users map[string]string
	// TLS adds an implicit-TLS port and offers STARTTLS on the plain one,
	// with a certificate for 127.0.0.1 from a private CA (Server.CAFile).
	TLS bool
	// Separator is the hierarchy separator shown over IMAP; default ".".
	Separator string
	// OAuthIntrospect, when set, enables XOAUTH2 and OAUTHBEARER checked
	// against this RFC 7662 introspection URL.
	OAuthIntrospect string
}

// Server is a running instance.
type Server struct {
	t       testing.TB
	Dir     string
	Port    int // plain IMAP (and STARTTLS with TLS)
	TLSPort int // implicit TLS, 0 without TLS
	CAFile  string
	script  string
}

// Script returns the path of scripts/dovecot.sh, found from the working
// directory up to the module root.
func Script() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "dovecot.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return "", fmt.Errorf("dovecottest: %s has no scripts/dovecot.sh", dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("dovecottest: scripts/dovecot.sh not found above the working directory")
		}
		dir = parent
	}
}

// Install installs Dovecot (and mbsync when mbsync is set) or fails t.
func Install(t testing.TB, mbsync bool) string {
	t.Helper()
	script, err := Script()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{script, "install"}
	if mbsync {
		args = append(args, "--mbsync")
	}
	if out, err := exec.Command("bash", args...).CombinedOutput(); err != nil {
		t.Fatalf("scripts/dovecot.sh install: %v\n%s", err, out)
	}
	return script
}

// FreePort returns a TCP port that was free a moment ago, from below the
// kernel's ephemeral range (internal/freeport says why).
func FreePort(t testing.TB) int {
	t.Helper()
	return freeport.Port(t)
}

// Start configures and starts an instance in a new temp folder; it is
// stopped when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	script := Install(t, false)
	dir, err := os.MkdirTemp("", "cairn-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, Dir: dir, Port: FreePort(t), script: script}
	args := []string{"instance", dir, "--port", fmt.Sprint(s.Port)}
	if opts.TLS {
		s.TLSPort = FreePort(t)
		s.CAFile = filepath.Join(dir, "tls", "ca.pem")
		args = append(args, "--tls-port", fmt.Sprint(s.TLSPort))
	}
	if opts.Separator != "" {
		args = append(args, "--separator", opts.Separator)
	}
	if opts.OAuthIntrospect != "" {
		args = append(args, "--oauth-introspect", opts.OAuthIntrospect)
	}
	for u, p := range opts.Users {
		args = append(args, "--user", u+":"+p)
	}
	s.run(args...)
	t.Cleanup(func() {
		s.Stop()
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("dovecot instance kept in %s (log: dovecot.log)", dir)
		}
	})
	s.Start()
	return s
}

func (s *Server) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command("bash", append([]string{s.script}, args...)...)
	// A daemon that keeps the output pipe open must not hang the test.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("scripts/dovecot.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Start starts (or restarts) the instance and waits until it listens.
func (s *Server) Start() { s.run("start", s.Dir) }

// Stop stops the instance; connected clients are disconnected.
func (s *Server) Stop() {
	exec.Command("bash", s.script, "stop", s.Dir).Run()
}

// Addr is the plain IMAP address.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// AddUser adds a user (the instance may be running).
func (s *Server) AddUser(name, password string) { s.run("adduser", s.Dir, name, password) }

// Maildir returns the user's Maildir (the INBOX).
func (s *Server) Maildir(user string) string { return s.run("maildir", s.Dir, user) }

// Folder returns the Maildir of a user's folder, "/" between levels
// (Maildir++ on disk: .A.B), created if missing.
func (s *Server) Folder(user, folder string) *gen.Maildir {
	s.t.Helper()
	md, err := gen.CreateMaildir(s.Maildir(user))
	if err != nil {
		s.t.Fatal(err)
	}
	if folder == "" || strings.EqualFold(folder, "INBOX") {
		return md
	}
	sub, err := md.Subfolder(folder)
	if err != nil {
		s.t.Fatal(err)
	}
	return sub
}

// Chown gives every file written into Maildirs by the test (as root) to
// the mail user, as Dovecot needs; call it after writing files directly.
func (s *Server) Chown() { s.run("chown", s.Dir) }

// Client logs in as user with the password.
func (s *Server) Client(user, password string) *imapclient.Client {
	s.t.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := c.Login(user, password).Wait(); err != nil {
		c.Close()
		s.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

// Append delivers raw into a user's folder over IMAP (creating the folder)
// with the given internal date and flags, and returns its UID.
func Append(t testing.TB, c *imapclient.Client, folder string, raw []byte, date time.Time, flags ...imap.Flag) uint32 {
	t.Helper()
	c.Create(folder, nil).Wait() // exists already: fine
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Time: date, Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := cmd.Wait()
	if err != nil {
		t.Fatalf("append to %s: %v", folder, err)
	}
	return uint32(d.UID)
}

// Message is one message as Dovecot serves it.
type Message struct {
	UID   uint32
	Flags []imap.Flag
	Date  time.Time
	Raw   []byte
}

// FetchAll returns every message of a folder as BODY.PEEK[] gives it,
// without changing any flag (EXAMINE).
func FetchAll(t testing.TB, c *imapclient.Client, folder string) (uidValidity uint32, msgs []Message) {
	t.Helper()
	sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("examine %s: %v", folder, err)
	}
	if sel.NumMessages == 0 {
		return sel.UIDValidity, nil
	}
	cmd := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	for {
		m := cmd.Next()
		if m == nil {
			break
		}
		b, err := m.Collect()
		if err != nil {
			t.Fatal(err)
		}
		var raw []byte
		for _, sec := range b.BodySection {
			raw = bytes.Clone(sec.Bytes)
		}
		msgs = append(msgs, Message{UID: uint32(b.UID), Flags: b.Flags, Date: b.InternalDate, Raw: raw})
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("fetch %s: %v", folder, err)
	}
	return sel.UIDValidity, msgs
}

// CRLF turns bare LF line endings into CRLF, as Dovecot does when it
// serves a Maildir file stored with LF.
func CRLF(b []byte) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/40)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out.WriteByte('\r')
		}
		out.WriteByte(c)
	}
	return out.Bytes()
}
