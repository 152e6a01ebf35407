package smtp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/crypto/certs"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
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
	// ackWhenDurable records whether each call's context asked for the
	// answer once durable (ingest.AckWhenDurable).
	ackWhenDurable []bool
}

type stored struct {
	env *ingest.Envelope
	raw []byte
	seq uint64
}

func (f *fakeArchiver) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	f.mu.Lock()
	f.calls++
	f.ackWhenDurable = append(f.ackWhenDurable, ingest.AcksWhenDurable(ctx))
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

// client is smtptest.Raw with this package's lock-step deliver.
type client struct{ *smtptest.Raw }

func dial(t testing.TB, addr string) *client {
	t.Helper()
	return &client{smtptest.Dial(t, addr, 20*time.Second)}
}

// heloName is the name the raw sessions say EHLO with.
const heloName = "client.test"

// deliver sends one message in lock step and returns the DATA reply.
func (c *client) deliver(from string, to []string, data string) string {
	c.T.Helper()
	c.Send("MAIL FROM:<" + from + ">\r\n")
	c.Expect("250")
	for _, r := range to {
		c.Send("RCPT TO:<" + r + ">\r\n")
		c.Expect("250")
	}
	c.Send("DATA\r\n")
	c.Expect("354")
	c.Send(data + ".\r\n")
	r, err := c.Reply()
	if err != nil {
		c.T.Fatalf("DATA reply: %v", err)
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
