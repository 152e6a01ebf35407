package imapview

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/crypto/certs"
	"github.com/cairn-archive/cairn/imapview/internal/testarchive"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// fixture is an archive with messages, accounts and a running server on
// 127.0.0.1:0 (plain, with STARTTLS) and a second listener for IMAPS.
type fixture struct {
	t        testing.TB
	a        *testarchive.Archive
	srv      *Server
	addr     string // plain + STARTTLS
	tlsAddr  string // IMAPS
	roots    *x509.CertPool
	msgs     map[uint64][]byte // message seq -> original bytes
	gen      []gen.Message
	genSeqs  []uint64
	password string // of "auditor" (scope all)
}

const (
	custA = "alice@example.com"
	custB = "bob@example.org"
)

func corpus(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("../../shared/corpus/enmime/*.raw")
	if len(files) == 0 {
		files, _ = filepath.Glob("../archive/message/testdata/enmime/*.raw")
	}
	if len(files) == 0 {
		t.Fatal("no corpus found")
	}
	sort.Strings(files)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

type fixtureOpts struct {
	remote    bool // clients count as not on loopback
	corpus    bool
	generated int
	opts      func(*Options)
	wrap      func(net.Listener) net.Listener // of the plain listener
}

func newFixture(t testing.TB, fo fixtureOpts) *fixture {
	t.Helper()
	a := testarchive.New(t)
	f := &fixture{t: t, a: a, msgs: map[uint64][]byte{}}
	base := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	if fo.corpus {
		for i, raw := range corpus(t) {
			cust := custA
			if i%3 == 0 {
				cust = custB
			}
			seq := a.Add(t, raw, base.Add(time.Duration(i)*time.Hour), cust)
			f.msgs[seq] = raw
		}
	}
	g := gen.New(7)
	g.CRLF = true
	for i := 0; i < fo.generated; i++ {
		m := g.Next(3000 + (i%5)*4000)
		// Two months apart, so the Dates/ folders have several months.
		seq := a.Add(t, m.Raw, base.AddDate(0, i%2+1, 0).Add(time.Duration(i)*time.Minute), custA)
		f.msgs[seq] = m.Raw
		f.gen = append(f.gen, m)
		f.genSeqs = append(f.genSeqs, seq)
	}
	f.password = a.User(t, "auditor", auth.RoleAuditor)
	dir := t.TempDir()
	cert, err := certs.LoadOrCreate(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(cert.Leaf)
	opts := Options{
		Store:        a.Store,
		Accounts:     a.Accounts,
		Audit:        a.Audit,
		TLS:          &tls.Config{Certificates: []tls.Certificate{cert}},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		PollInterval: 50 * time.Millisecond,
	}
	if testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if fo.opts != nil {
		fo.opts(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = srv
	if fo.remote {
		srv.isLocal = func(net.Addr) bool { return false }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr, f.tlsAddr = ln.Addr().String(), tln.Addr().String()
	if fo.wrap != nil {
		ln = fo.wrap(ln)
	}
	go srv.Serve(ln)
	go srv.ServeTLS(tln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// client dials the plain listener (loopback: login allowed without TLS)
// and logs in as user.
func (f *fixture) client(user, password string) *imapclient.Client {
	f.t.Helper()
	c, err := imapclient.DialInsecure(f.addr, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		f.t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func (f *fixture) auditor() *imapclient.Client { return f.client("auditor", f.password) }

// raw is a line-level connection for protocol abuse tests.
type raw struct {
	t    testing.TB
	conn net.Conn
	buf  []byte
}

func (f *fixture) raw() *raw {
	f.t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	r := &raw{t: f.t, conn: c}
	r.until("* OK")
	return r
}

// inbox is a raw connection of the auditor's with INBOX examined.
func (f *fixture) inbox() *raw {
	f.t.Helper()
	r := f.raw()
	r.login("auditor", f.password)
	r.send("S EXAMINE INBOX\r\n")
	r.until("S OK")
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	r.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(r.conn, s); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

// until reads until a line starting with prefix arrives and returns
// everything read up to and including it.
func (r *raw) until(prefix string) string {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var out bytes.Buffer
	for {
		if i := bytes.IndexByte(r.buf, '\n'); i >= 0 {
			line := r.buf[:i+1]
			r.buf = r.buf[i+1:]
			out.Write(line)
			if bytes.HasPrefix(line, []byte(prefix)) {
				return out.String()
			}
			continue
		}
		tmp := make([]byte, 64<<10)
		n, err := r.conn.Read(tmp)
		r.buf = append(r.buf, tmp[:n]...)
		if err != nil {
			r.t.Fatalf("waiting for %q: %v; read %q", prefix, err, out.String()+string(r.buf))
		}
	}
}

func (r *raw) login(user, pw string) {
	r.t.Helper()
	r.send("L LOGIN " + user + " \"" + pw + "\"\r\n")
	if s := r.until("L "); !containsLine(s, "L OK") {
		r.t.Fatalf("login: %s", s)
	}
}

func containsLine(s, prefix string) bool {
	for _, l := range bytes.Split([]byte(s), []byte("\n")) {
		if bytes.HasPrefix(l, []byte(prefix)) {
			return true
		}
	}
	return false
}

func seqOfUID(uid imap.UID) uint64 { return uint64(uid) - 1 }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

var zeroTime time.Time

func archiveVerifyFull() archive.VerifyOptions {
	return archive.VerifyOptions{Full: true, Orphans: true}
}
