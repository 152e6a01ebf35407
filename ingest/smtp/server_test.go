package smtp

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/smtp"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/journal"
)

func TestDeliverWithNetSMTP(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{MaxMessageBytes: 1 << 20}, fa, Runtime{})

	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("mta.example.com"); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING"} {
		if ok, _ := c.Extension(ext); !ok {
			t.Errorf("extension %s not advertised", ext)
		}
	}
	if ok, size := c.Extension("SIZE"); !ok || size != "1048576" {
		t.Errorf("SIZE %q", size)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised without a certificate")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH advertised without TLS")
	}
	body := message("one", "Grüße, 8-bit body\r\n.leading dot\r\n")
	if err := c.Mail("a@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"b@example.com", "c@example.net"} {
		if err := c.Rcpt(r); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	msgs := fa.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages archived", len(msgs))
	}
	m := msgs[0]
	if string(m.raw) != body {
		t.Errorf("archived bytes differ:\n got %q\nwant %q", m.raw, body)
	}
	e := m.env
	if e.Source != ingest.SourceSMTP || e.Sender != "a@example.com" || len(e.Recipients) != 2 ||
		e.Recipients[1].Address != "c@example.net" || e.Recipients[1].Kind != ingest.KindRecipient {
		t.Errorf("envelope %+v", e)
	}
	if e.Meta["client_ip"] != "127.0.0.1" || e.Meta["helo"] != "mta.example.com" || e.ReceivedAt.IsZero() {
		t.Errorf("Meta %v", e.Meta)
	}
}

// The 250 names the ledger sequence number; a raw client sees the text.
func TestReplyCarriesSeq(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	for i := 1; i <= 3; i++ {
		r := c.deliver("a@example.com", []string{"b@example.com"}, message(fmt.Sprint(i), "x\r\n"))
		if want := fmt.Sprintf("250 2.0.0 Archived as seq %d", i); r != want {
			t.Errorf("reply %q, want %q", r, want)
		}
	}
}

func TestPipelining(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{AcceptRecipients: []string{"example.com"}}, fa, Runtime{})
	c := dial(t, addr)
	c.Expect("220 ")
	// RFC 2920: EHLO, then MAIL, RCPTs and DATA in one write; the data
	// after 354; then two more transactions pipelined to the end.
	c.Send("EHLO p.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<x@other.example>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
	c.Expect("250")
	c.Expect("250 2.0.0")
	c.Expect("250 2.0.0")
	c.Expect("550 5.1.1")
	c.Expect("250 2.0.0")
	c.Expect("354")
	c.Send(message("p1", "one\r\n") + ".\r\nRSET\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250 2.0.0 Archived as seq 1")
	c.Expect("250")
	c.Expect("250")
	c.Expect("250")
	c.Expect("354")
	c.Send(message("p2", "two\r\n") + ".\r\nQUIT\r\n")
	c.Expect("250 2.0.0 Archived as seq 2")
	c.Expect("221")
	msgs := fa.messages()
	if len(msgs) != 2 || len(msgs[0].env.Recipients) != 2 || msgs[1].env.Sender != "" {
		t.Fatalf("archived %+v", msgs)
	}
}

func TestRecipientsAccepted(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{AcceptRecipients: []string{"journal@archive.example", "@bcc.example", "keep.example"}}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	c.Send("MAIL FROM:<a@example.com>\r\n")
	c.Expect("250")
	for rcpt, want := range map[string]string{
		"journal@archive.example":         "250",
		"JOURNAL@Archive.Example":         "250",
		"journal+b=x.com@archive.example": "250",
		"other@archive.example":           "550 5.1.1",
		"anyone@bcc.example":              "250",
		"anyone@keep.example":             "250",
		"anyone@sub.keep.example":         "550 5.1.1",
	} {
		c.Send("RCPT TO:<" + rcpt + ">\r\n")
		if r := c.Expect(want[:3]); !strings.HasPrefix(r, want) {
			t.Errorf("%s: %q, want %q", rcpt, r, want)
		}
	}
}

func TestNetworkDenied(t *testing.T) {
	fa := &fakeArchiver{}
	s, addr := startServer(t, Options{AllowedNetworks: []string{"10.0.0.0/8", "192.0.2.1"}}, fa, Runtime{})
	c := dial(t, addr)
	c.Expect("554 5.7.1 cairn.test ")
	// RFC 5321 §3.1: 503 to anything but QUIT.
	c.Send("EHLO x\r\n")
	c.Expect("503 5.5.1")
	c.Send("MAIL FROM:<a@example.com>\r\n")
	c.Expect("503 5.5.1")
	c.Send("QUIT\r\n")
	c.Expect("221")
	if st := s.Stats(); st.Refused["network"] != 1 || st.Sessions != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestSizeLimit(t *testing.T) {
	fa := &fakeArchiver{}
	s, addr := startServer(t, Options{MaxMessageBytes: 4096, MaxBufferedBytes: 4096}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	// SIZE= over the limit is refused at MAIL (go-smtp, RFC 1870 §6.3).
	c.Send("MAIL FROM:<a@example.com> SIZE=5000\r\n")
	c.Expect("552 5.3.4")
	// A message that grows past it is refused at the end of data.
	big := message("big", strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 100))
	if r := c.deliver("a@example.com", []string{"b@example.com"}, big); !strings.HasPrefix(r, "552 5.3.4") {
		t.Errorf("oversize DATA: %q", r)
	}
	// The session goes on.
	if r := c.deliver("a@example.com", []string{"b@example.com"}, message("small", "ok\r\n")); !strings.HasPrefix(r, "250 ") {
		t.Errorf("next message: %q", r)
	}
	if n := len(fa.messages()); n != 1 {
		t.Errorf("%d messages archived, want 1", n)
	}
	if st := s.Stats(); st.Refused["size"] != 1 || st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

// SMTP smuggling: every variant must be data of one refused message; the
// "smuggled" transaction must never be archived or acknowledged.
func TestSmuggling(t *testing.T) {
	variants := map[string]string{
		"LF.CRLF":       "\n.\r\n",
		"LF.LF":         "\n.\n",
		"CR.CRLF":       "\r.\r\n",
		"CRCRLF.CRCRLF": "\r\r\n.\r\r\n",
		"bare LF line":  "\n",
		"bare CR line":  "\r",
	}
	for name, seq := range variants {
		t.Run(name, func(t *testing.T) {
			fa := &fakeArchiver{}
			s, addr := startServer(t, Options{}, fa, Runtime{})
			c := dial(t, addr)
			c.Hello(heloName)
			if r := c.deliver("a@example.com", []string{"b@example.com"}, message("legit", "first\r\n")); !strings.HasPrefix(r, "250 ") {
				t.Fatalf("legit message: %q", r)
			}
			smuggled := "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n" +
				"From: ceo@example.com\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
			c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
			c.Expect("250")
			c.Expect("250")
			c.Expect("354")
			c.Send(message("outer", "outer body") + seq + smuggled + ".\r\nQUIT\r\n")
			r := c.Expect("554 5.5.2")
			_ = r
			c.Expect("221")
			msgs := fa.messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages archived, want exactly 1", len(msgs))
			}
			if bytes.Contains(msgs[0].raw, []byte("smuggled")) || msgs[0].env.Sender != "a@example.com" {
				t.Fatalf("archived %q", msgs[0].raw)
			}
			if st := s.Stats(); st.Refused["line_ending"] != 1 || st.Accepted != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// The one sequence go-smtp hides: "<CRLF>.<CR>" not followed by LF. go-smtp
// drops the ".<CR>", so the bare CR is invisible to the receiver; it still
// cannot end the data early, so it never yields two messages.
func TestDotCRIsNotEndOfData(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("354")
	c.Send(message("dotcr", "x\r\n.\rMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<v@example.com>\r\nDATA\r\nsmuggled\r\n") + ".\r\nQUIT\r\n")
	c.Expect("250 ")
	c.Expect("221")
	if msgs := fa.messages(); len(msgs) != 1 || msgs[0].env.Sender != "a@example.com" {
		t.Fatalf("archived %d messages", len(msgs))
	}
}

// RFC 3207 §4.2: commands sent in clear after STARTTLS, in the same packet,
// must be discarded, not run inside the TLS session.
func TestSTARTTLSInjection(t *testing.T) {
	cfg, pool := testTLS(t)
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{}, fa, Runtime{TLSConfig: cfg})
	c := dial(t, addr)
	c.Expect("220 ")
	c.Send("EHLO x\r\n")
	if r := c.Expect("250"); !strings.Contains(r, "STARTTLS") {
		t.Fatalf("no STARTTLS in %q", r)
	}
	// One write: STARTTLS and an injected transaction.
	c.Send("STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\n")
	c.Expect("220")
	tc := tls.Client(c.Conn, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.Conn = tc
	c.R.Reset(tc)
	c.Send("EHLO x\r\n")
	r := c.Expect("250")
	if strings.Contains(r, "STARTTLS") {
		t.Error("STARTTLS advertised inside TLS")
	}
	// Had the injected MAIL run, this RCPT would be accepted.
	c.Send("RCPT TO:<b@example.com>\r\n")
	c.Expect("502 5.5.1")
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("354")
	c.Send(message("tls", "over tls\r\n") + ".\r\n")
	c.Expect("250 2.0.0 Archived as seq 1")
	msgs := fa.messages()
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0].env.Meta["tls"], "TLS 1.3") {
		t.Fatalf("archived %+v", msgs)
	}
}

func TestArchiveFailures(t *testing.T) {
	fa := &fakeArchiver{}
	s, addr := startServer(t, Options{}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	fa.setFail(fmt.Errorf("objstore: put: connection refused"))
	if r := c.deliver("a@example.com", []string{"b@example.com"}, message("f1", "x\r\n")); !strings.HasPrefix(r, "451 4.3.0") {
		t.Errorf("store down: %q", r)
	}
	fa.setFail(fmt.Errorf("archive: too many parts: %w", ingest.ErrRefused))
	if r := c.deliver("a@example.com", []string{"b@example.com"}, message("f2", "x\r\n")); !strings.HasPrefix(r, "554 5.3.0 Archive refused the message: archive: too many parts") {
		t.Errorf("refused: %q", r)
	}
	fa.setFail(nil)
	if r := c.deliver("a@example.com", []string{"b@example.com"}, message("f3", "x\r\n")); !strings.HasPrefix(r, "250 2.0.0 Archived as seq 1") {
		t.Errorf("recovered: %q", r)
	}
	st := s.Stats()
	if st.TempFailures["archive"] != 1 || st.Refused["archive_refused"] != 1 || st.Accepted != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestJournalReportOverSMTP(t *testing.T) {
	report, err := os.ReadFile("../journal/testdata/exchange-online-report.eml")
	if err != nil {
		t.Fatal(err)
	}
	original, err := os.ReadFile("../journal/testdata/exchange-online-report.original.eml")
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeArchiver{}
	_, addr := startServer(t, Options{Journal: journal.Options{ArchiveAddresses: []string{"journal@archive.example"}}}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	// Dot-stuff as a client must (RFC 5321 §4.5.2).
	data := regexp.MustCompile(`(?m)^\.`).ReplaceAllString(string(report), "..")
	if r := c.deliver("", []string{"journal@archive.example"}, data); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("DATA: %q", r)
	}
	m := fa.messages()[0]
	if !bytes.Equal(m.raw, original) {
		t.Errorf("archived bytes are not the attached original:\n%q", m.raw)
	}
	if m.env.Source != ingest.SourceJournal || m.env.Sender != "alice@contoso.com" || len(m.env.Recipients) != 8 {
		t.Errorf("envelope %+v", m.env)
	}
	if len(m.env.Evidence) == 0 || m.env.Meta["smtp_rcpt_to"] != "journal@archive.example" {
		t.Errorf("evidence %d bytes, meta %v", len(m.env.Evidence), m.env.Meta)
	}
}

// The receiver asks the archive to answer once the message is durable
// (ingest.AckWhenDurable), unless ack_indexed asks for the index too.
func TestAckWhenDurableUnlessAckIndexed(t *testing.T) {
	for _, indexed := range []bool{false, true} {
		fa := &fakeArchiver{}
		_, addr := startServer(t, Options{AckIndexed: indexed}, fa, Runtime{})
		if err := smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com"}, []byte(message("ack", "x\r\n"))); err != nil {
			t.Fatal(err)
		}
		fa.mu.Lock()
		got := fa.ackWhenDurable
		fa.mu.Unlock()
		if len(got) != 1 || got[0] == indexed {
			t.Errorf("ack_indexed %v: Archive contexts asking for the answer once durable: %v, want [%v]", indexed, got, !indexed)
		}
	}
}

// Each archived message gets one log line with its ledger sequence and
// what identifies it (DESIGN: "log lines per message with the ledger
// sequence").
func TestArchivedLogLine(t *testing.T) {
	fa := &fakeArchiver{}
	var buf syncBuffer
	_, addr := startServer(t, Options{}, fa, Runtime{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	raw := []byte(message("logged", "x\r\n"))
	if err := smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com", "c@example.com"}, raw); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(fa.messages()[0].raw)
	var line string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, `msg="smtp: archived"`) {
			line = l
		}
	}
	want := regexp.MustCompile(`^time=\S+ level=INFO msg="smtp: archived" seq=1 message_seq=1 sha256=` + hex.EncodeToString(sum[:8]) +
		` source=smtp from=a@example.com recipients=2 bytes=` + strconv.Itoa(len(fa.messages()[0].raw)) + ` client_ip=127\.0\.0\.1 latency=[0-9.]+[µm]?s$`)
	if !want.MatchString(line) {
		t.Errorf("log line %q\nwant %s", line, want)
	}
}

// syncBuffer is a bytes.Buffer a logger may write from any goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
