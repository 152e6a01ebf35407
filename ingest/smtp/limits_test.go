package smtp

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/netip"
	"net/smtp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

func TestSessionCaps(t *testing.T) {
	fa := &fakeArchiver{}
	s, addr := startServer(t, Options{MaxSessions: 3, MaxSessionsPerIP: 2}, fa, Runtime{})
	a, b := dial(t, addr), dial(t, addr)
	a.Expect("220 ")
	b.Expect("220 ")
	c := dial(t, addr)
	c.Expect("421 4.7.0")
	if closed, r := c.Closed(); !closed {
		t.Errorf("connection over the per-IP cap stays open: %q", r)
	}
	// Another loopback address is another client.
	d1, err := net.Dial("tcp", strings.Replace(addr, "127.0.0.1", "127.0.0.2", 1))
	if err != nil {
		t.Skip("127.0.0.2 not routable here:", err)
	}
	d := &client{&smtptest.Raw{T: t, Conn: d1}}
	d.R = newReader(d1)
	d.Expect("220 ")
	e1, _ := net.Dial("tcp", strings.Replace(addr, "127.0.0.1", "127.0.0.3", 1))
	e := &client{&smtptest.Raw{T: t, Conn: e1, R: newReader(e1)}}
	e.Expect("421 4.4.5")
	// When a session ends, its slot is free again.
	a.Send("QUIT\r\n")
	a.Expect("221")
	waitFor(t, func() bool { return s.Stats().SessionsOpen == 2 })
	f := dial(t, addr)
	f.Expect("220 ")
	st := s.Stats()
	if st.TempFailures["sessions_per_ip"] != 1 || st.TempFailures["sessions"] != 1 || st.Sessions != 4 {
		t.Errorf("stats %+v", st)
	}
	d1.Close()
	e1.Close()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Memory for messages is shared: when it is used up, a message gets 452
// 4.3.1 (temporary) instead of exhausting memory.
func TestMemoryBudget(t *testing.T) {
	fa := &fakeArchiver{hold: make(chan struct{}), entered: make(chan struct{}, 1)}
	s, addr := startServer(t, Options{MaxMessageBytes: 64 << 10, MaxBufferedBytes: 64 << 10}, fa, Runtime{})
	a := dial(t, addr)
	a.Hello(heloName)
	a.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	a.Expect("250")
	a.Expect("250")
	a.Expect("354")
	// 40 KiB: its buffer grows to the whole budget, held while it is archived.
	a.Send(message("held", strings.Repeat(strings.Repeat("x", 78)+"\r\n", 512)) + ".\r\n")
	<-fa.entered

	b := dial(t, addr)
	b.Hello(heloName)
	if r := b.deliver("a@example.com", []string{"b@example.com"}, message("second", "y\r\n")); !strings.HasPrefix(r, "452 4.3.1") {
		t.Errorf("second message: %q", r)
	}
	close(fa.hold)
	a.Expect("250 ")
	if r := b.deliver("a@example.com", []string{"b@example.com"}, message("third", "z\r\n")); !strings.HasPrefix(r, "250 ") {
		t.Errorf("after release: %q", r)
	}
	if st := s.Stats(); st.TempFailures["memory"] != 1 {
		t.Errorf("stats %+v", st)
	}
	if used := s.budget.used.Load(); used != 0 {
		t.Errorf("budget still holds %d bytes", used)
	}
}

func TestLineTooLong(t *testing.T) {
	fa := &fakeArchiver{}
	s, addr := startServer(t, Options{MaxLineLength: 1000}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("354")
	c.Send(message("long", strings.Repeat("x", 1200)+"\r\n") + ".\r\n")
	c.Expect("500 5.5.2 Line too long")
	if closed, r := c.Closed(); !closed && !strings.HasPrefix(r, "500") {
		t.Errorf("after a too long line: %q", r)
	}
	if len(fa.messages()) != 0 || s.Stats().Refused["line_length"] != 1 {
		t.Error("a message with a too long line was archived")
	}
	// A command line too long closes the connection (go-smtp).
	c2 := dial(t, addr)
	c2.Expect("220 ")
	c2.Send("EHLO " + strings.Repeat("h", 2000) + "\r\n")
	c2.Expect("500 5.4.0")
}

func TestCommandTimeout(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{CommandTimeout: time.Second, DataTimeout: time.Second}, fa, Runtime{})
	c := dial(t, addr)
	c.Expect("220 ")
	// The server's deadline for the next command starts when it reads
	// again, after its EHLO reply: start before sending EHLO, so that
	// reading the reply late cannot shorten the measured time. The upper
	// bound leaves room for a loaded machine; without the deadline the
	// session would stay open until the client's own (20 s).
	start := time.Now()
	c.Send("EHLO " + heloName + "\r\n")
	c.Expect("250")
	c.Expect("421 4.4.2")
	if d := time.Since(start); d < 900*time.Millisecond || d > 10*time.Second {
		t.Errorf("idle session closed %v after EHLO, want about CommandTimeout (1 s)", d)
	}
	// A stalled message: the data timeout applies per read.
	c2 := dial(t, addr)
	c2.Hello(heloName)
	c2.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c2.Expect("250")
	c2.Expect("250")
	c2.Expect("354")
	c2.Send("Subject: stalled\r\n\r\npart")
	c2.Expect("421 4.4.2")
	if len(fa.messages()) != 0 {
		t.Error("a stalled message was archived")
	}
}

func TestBDAT(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	msg := message("bdat", "chunked\r\n")
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Send(fmt.Sprintf("BDAT %d\r\n%s", 10, msg[:10]))
	c.Expect("250 2.0.0 Continue")
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(msg)-10, msg[10:]))
	c.Expect("250 2.0.0 Archived as seq 1")
	// A bare LF is refused in BDAT too (BINARYMIME is not offered).
	bad := "Subject: x\r\n\r\nbare\nLF\r\n"
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(bad), bad))
	c.Expect("554 5.5.2")
	if msgs := fa.messages(); len(msgs) != 1 || string(msgs[0].raw) != msg {
		t.Fatalf("archived %d", len(msgs))
	}
}

func TestImplicitTLS(t *testing.T) {
	cfg, pool := testTLS(t)
	fa := &fakeArchiver{}
	s, err := New(Options{Hostname: "cairn.test"}, fa, Runtime{TLSConfig: cfg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go s.ServeTLS(l)
	defer s.Close()
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{&smtptest.Raw{T: t, Conn: conn, R: newReader(conn)}}
	c.Expect("220 ")
	c.Send("EHLO x\r\n")
	if r := c.Expect("250"); strings.Contains(r, "STARTTLS") {
		t.Errorf("STARTTLS offered on implicit TLS: %q", r)
	}
	if r := c.deliver("a@example.com", []string{"b@example.com"}, message("tls", "x\r\n")); !strings.HasPrefix(r, "250 ") {
		t.Fatal(r)
	}
	if m := fa.messages(); len(m) != 1 || m[0].env.Meta["tls"] == "" {
		t.Fatal("not archived with TLS meta")
	}
}

type fakeAuth struct{ down bool }

func (f *fakeAuth) Authenticate(_ context.Context, user, pass string) error {
	if f.down {
		return errors.New("user store unavailable")
	}
	if user == "exchange" && pass == "s3cret" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidCredentials, user)
}

func TestAuth(t *testing.T) {
	cfg, pool := testTLS(t)
	fa := &fakeArchiver{}
	auth := &fakeAuth{}
	s, addr := startServer(t, Options{AuthRequired: true}, fa, Runtime{TLSConfig: cfg, Authenticator: auth})

	startTLS := func() *client {
		c := dial(t, addr)
		c.Hello(heloName)
		c.Send("MAIL FROM:<a@example.com>\r\n")
		c.Expect("530 5.7.0") // RFC 4954 §6
		c.Send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00s3cret")) + "\r\n")
		c.Expect("5") // no AUTH before TLS
		c.Send("STARTTLS\r\n")
		c.Expect("220")
		tc := tls.Client(c.Conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		c.Conn, c.R = tc, newReader(tc)
		c.Send("EHLO x\r\n")
		if r := c.Expect("250"); !strings.Contains(r, "AUTH PLAIN LOGIN") {
			t.Fatalf("EHLO over TLS: %q", r)
		}
		return c
	}

	// PLAIN with the right password.
	c := startTLS()
	c.Send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00s3cret")) + "\r\n")
	c.Expect("235")
	if r := c.deliver("a@example.com", []string{"b@example.com"}, message("auth", "x\r\n")); !strings.HasPrefix(r, "250 ") {
		t.Fatal(r)
	}
	if m := fa.messages(); m[0].env.Meta["auth"] != "exchange" {
		t.Errorf("Meta %v", m[0].env.Meta)
	}

	// LOGIN, step by step.
	c = startTLS()
	c.Send("AUTH LOGIN\r\n")
	c.Expect("334 " + base64.StdEncoding.EncodeToString([]byte("Username:")))
	c.Send(base64.StdEncoding.EncodeToString([]byte("exchange")) + "\r\n")
	c.Expect("334 " + base64.StdEncoding.EncodeToString([]byte("Password:")))
	c.Send(base64.StdEncoding.EncodeToString([]byte("s3cret")) + "\r\n")
	c.Expect("235")

	// Wrong passwords: 535 each time, and the third closes the connection.
	c = startTLS()
	for i := 0; i < maxAuthFailures; i++ {
		c.Send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00wrong")) + "\r\n")
		c.Expect("535 5.7.8")
	}
	if closed, r := c.Closed(); !closed {
		t.Errorf("still open after %d failures: %q", maxAuthFailures, r)
	}
	// A proxy authorization identity is refused.
	c = startTLS()
	c.Send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("admin\x00exchange\x00s3cret")) + "\r\n")
	c.Expect("535 5.7.8")
	// The user store being down is temporary.
	auth.down = true
	c.Send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00exchange\x00s3cret")) + "\r\n")
	c.Expect("454 4.7.0")
	auth.down = false

	if st := s.Stats(); st.Refused["auth_failed"] != maxAuthFailures+1 || st.Refused["auth_required"] != 4 {
		t.Errorf("stats %+v", st.Refused)
	}
}

// Invariant 1 under concurrency: with an archive that fails at random,
// every 250 is for a message the archive holds, and every message it holds
// got its 250.
func TestNo250WithoutArchive(t *testing.T) {
	fa := &flakyArchiver{fakeArchiver: &fakeArchiver{}}
	_, addr := startServer(t, Options{}, fa, Runtime{})
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; i < 25; i++ {
				id := fmt.Sprintf("w%d-m%d", w, i)
				if err := c.Mail("a@example.com"); err != nil {
					t.Error(err)
					return
				}
				c.Rcpt("b@example.com")
				wc, err := c.Data()
				if err != nil {
					t.Error(err)
					return
				}
				wc.Write([]byte(message(id, "x\r\n")))
				if err := wc.Close(); err == nil {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				} else if !strings.HasPrefix(err.Error(), "451 ") {
					t.Errorf("%s: %v", id, err)
				}
			}
		}(w)
	}
	wg.Wait()
	stored := map[string]bool{}
	for _, m := range fa.messages() {
		var id string
		fmt.Sscanf(string(m.raw[strings.Index(string(m.raw), "Subject: test ")+len("Subject: test "):]), "%s", &id)
		stored[id] = true
	}
	if len(acked) == 0 || len(acked) == 200 {
		t.Fatalf("%d of 200 acknowledged; the flaky archive should fail some", len(acked))
	}
	for id := range acked {
		if !stored[id] {
			t.Errorf("%s acknowledged but not archived", id)
		}
	}
	for id := range stored {
		if !acked[id] {
			t.Errorf("%s archived but not acknowledged", id)
		}
	}
}

type flakyArchiver struct {
	*fakeArchiver
	mu  sync.Mutex
	rnd *rand.Rand
}

func (f *flakyArchiver) Archive(ctx context.Context, env *ingestEnvelope, raw []byte) (ingestReceipt, error) {
	f.mu.Lock()
	if f.rnd == nil {
		f.rnd = rand.New(rand.NewSource(1))
	}
	fail := f.rnd.Intn(3) == 0
	f.mu.Unlock()
	if fail {
		return ingestReceipt{}, errors.New("objstore: unavailable")
	}
	return f.fakeArchiver.Archive(ctx, env, raw)
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2:bbbb::2"},
		{"192.0.2.1", "192.0.2.1"},
	} {
		if clientKey(netip.MustParseAddr(tc.a)) != clientKey(netip.MustParseAddr(tc.b)) {
			t.Errorf("%s and %s should count as one client", tc.a, tc.b)
		}
	}
	if clientKey(netip.MustParseAddr("192.0.2.1")) == clientKey(netip.MustParseAddr("192.0.2.2")) {
		t.Error("two IPv4 addresses counted as one client")
	}
	if clientKey(netip.MustParseAddr("2001:db8:1:2::1")) == clientKey(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("two IPv6 /64s counted as one client")
	}
}

// RFC 5321 §4.5.3.1.10: past the recipient limit, 452 4.5.3 (go-smtp), and
// the limit is advertised (RFC 9422 LIMITS RCPTMAX).
func TestMaxRecipients(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{MaxRecipients: 2}, fa, Runtime{})
	c := dial(t, addr)
	c.Expect("220 ")
	c.Send("EHLO x\r\n")
	if r := c.Expect("250"); !strings.Contains(r, "LIMITS RCPTMAX=2") {
		t.Errorf("EHLO: %q", r)
	}
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("250")
	c.Expect("452 4.5.3")
}
