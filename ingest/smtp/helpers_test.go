package smtp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/crypto/certs"
	"github.com/cairn-archive/cairn/ingest"
)

// fakeArchiver is an in-memory ingest.Archiver. It is safe for concurrent
// use, can be told to fail, and can hold calls until released.
type fakeArchiver struct {
	mu      sync.Mutex
	seq     uint64
	stored  []stored
	failErr error         // returned by Archive while set
	hold    chan struct{} // when non-nil, Archive waits for it to be closed
	entered chan struct{} // when non-nil, Archive signals entry (non-blocking)
	calls   int
}

type stored struct {
	env *ingest.Envelope
	raw []byte
	seq uint64
}

func (f *fakeArchiver) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	f.mu.Lock()
	f.calls++
	hold, entered := f.hold, f.entered
	f.mu.Unlock()
	if entered != nil {
		select {
		case entered <- struct{}{}:
		default:
		}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ingest.Receipt{}, ctx.Err()
		}
	}
	if err := env.Validate(); err != nil {
		return ingest.Receipt{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failErr != nil {
		return ingest.Receipt{}, f.failErr
	}
	f.seq++
	f.stored = append(f.stored, stored{env: env, raw: append([]byte(nil), raw...), seq: f.seq})
	return ingest.Receipt{Seq: f.seq, MessageSeq: f.seq, SHA256: sha256.Sum256(raw)}, nil
}

func (f *fakeArchiver) setFail(err error) {
	f.mu.Lock()
	f.failErr = err
	f.mu.Unlock()
}

func (f *fakeArchiver) messages() []stored {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]stored(nil), f.stored...)
}

// noopArchiver acknowledges without storing: the receiver's own ceiling.
type noopArchiver struct{ seq atomicCounter }

type atomicCounter struct {
	mu sync.Mutex
	n  uint64
}

func (c *atomicCounter) next() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func (n *noopArchiver) Archive(_ context.Context, _ *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	s := n.seq.next()
	return ingest.Receipt{Seq: s, MessageSeq: s}, nil
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startServer runs a receiver on 127.0.0.1:0 and stops it when the test ends.
func startServer(t testing.TB, opts Options, a ingest.Archiver, rt Runtime) (*Server, string) {
	t.Helper()
	if rt.Logger == nil {
		rt.Logger = quietLogger()
	}
	if opts.Hostname == "" {
		opts.Hostname = "cairn.test"
	}
	s, err := New(opts, a, rt)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, l.Addr().String()
}

func testTLS(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	pair, err := certs.LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pair.Leaf)
	return &tls.Config{Certificates: []tls.Certificate{pair}}, pool
}

// client is a raw SMTP client over a socket, for probes that a real client
// library refuses to send.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// reply reads one (possibly multi-line) reply and returns it joined by "\n".
func (c *client) reply() (string, error) {
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return strings.Join(lines, "\n"), err
		}
		line = strings.TrimRight(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n"), nil
		}
	}
}

// expect reads one reply and fails unless it starts with prefix.
func (c *client) expect(prefix string) string {
	c.t.Helper()
	r, err := c.reply()
	if err != nil {
		c.t.Fatalf("reading reply (want %q): %v (got %q)", prefix, err, r)
	}
	if !strings.HasPrefix(r, prefix) {
		c.t.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatal(err)
	}
}

// closed reports whether the server has closed the connection (EOF or
// reset) within a second, with no further reply.
func (c *client) closed() (bool, string) {
	c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	r, err := c.reply()
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && r == "" {
		return true, ""
	}
	return false, r
}

func (c *client) hello() {
	c.t.Helper()
	c.expect("220 ")
	c.send("EHLO client.test\r\n")
	c.expect("250")
}

// deliver sends one message in lock step and returns the DATA reply.
func (c *client) deliver(from string, to []string, data string) string {
	c.t.Helper()
	c.send("MAIL FROM:<" + from + ">\r\n")
	c.expect("250")
	for _, r := range to {
		c.send("RCPT TO:<" + r + ">\r\n")
		c.expect("250")
	}
	c.send("DATA\r\n")
	c.expect("354")
	c.send(data + ".\r\n")
	r, err := c.reply()
	if err != nil {
		c.t.Fatalf("DATA reply: %v", err)
	}
	return r
}

func message(id string, body string) string {
	return fmt.Sprintf("From: a@example.com\r\nTo: b@example.com\r\nSubject: test %s\r\nMessage-ID: <%s@example.com>\r\n\r\n%s", id, id, body)
}

type (
	ingestEnvelope = ingest.Envelope
	ingestReceipt  = ingest.Receipt
)

func newReader(c net.Conn) *bufio.Reader {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return bufio.NewReader(c)
}
