//go:build integration

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

// Issue 3, check 6: protocol abuse against the real `cairn serve`, one
// probe of each kind (the unit tests in ingest/smtp cover every variant).
//
// SMTP smuggling: a DATA that hides an end-of-data sequence a lenient
// receiver would honour ("\n.\r\n" and the others) followed by a second,
// forged transaction must be one refused message (554 5.5.2), never two;
// nothing from the forged sender reaches the archive.
//
// STARTTLS injection (RFC 3207 §4.2): commands sent in clear in the same
// packet as STARTTLS must be discarded, not run inside the TLS session.
func TestProtocolProbes(t *testing.T) {
	in := newInstance(t, config{})
	in.start()

	smuggled := "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n" +
		"From: ceo@example.com\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
	c := dial(t, in.smtpAddr)
	c.Hello(heloName)
	legit := smtptest.Message("probe", 1, 512)
	if r := c.Deliver("a@example.com", []string{"b@example.com"}, legit); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("legitimate message: %q", r)
	}
	for _, seq := range []string{"\n.\r\n", "\n.\n", "\r.\r\n", "\r\r\n.\r\r\n"} {
		c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
		c.Expect("250")
		c.Expect("250")
		c.Expect("354")
		c.Send("From: a@example.com\r\nSubject: outer\r\n\r\nouter body" + seq + smuggled + ".\r\n")
		if r := c.Expect("5"); !strings.HasPrefix(r, "554 5.5.2 ") {
			t.Errorf("smuggling with %q: reply %q, want 554 5.5.2", seq, r)
		}
	}
	c.Send("QUIT\r\n")
	c.Expect("221")

	// STARTTLS with an injected transaction in the same write.
	certPEM, err := os.ReadFile(filepath.Join(in.data, "tls", "cert.pem"))
	if err != nil {
		t.Fatalf("serve's self-signed certificate: %v", err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("tls/cert.pem holds no PEM block")
	}
	c = dial(t, in.smtpAddr)
	c.Expect("220 ")
	c.Send("EHLO e2e.cairn.test\r\n")
	if r := c.Expect("250"); !strings.Contains(r, "STARTTLS") {
		t.Fatalf("STARTTLS not offered: %q", r)
	}
	c.Send("STARTTLS\r\nMAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\n")
	c.Expect("220")
	tc := tls.Client(c.Conn, &tls.Config{
		// The embedded default's certificate is self-signed: pin it.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], block.Bytes) {
				return errors.New("not the certificate in <data_dir>/tls/cert.pem")
			}
			return nil
		},
	})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	c.Conn = tc
	c.R.Reset(tc)
	c.Send("EHLO e2e.cairn.test\r\n")
	c.Expect("250")
	// Had the injected MAIL run, this RCPT would be accepted.
	c.Send("RCPT TO:<b@example.com>\r\n")
	if r := c.Expect("5"); !strings.HasPrefix(r, "502 ") && !strings.HasPrefix(r, "503 ") {
		t.Errorf("RCPT without MAIL inside TLS: %q, want 502/503 (the injected MAIL was run)", r)
	}
	overTLS := smtptest.Message("probe", 2, 512)
	r := c.Deliver("a@example.com", []string{"b@example.com"}, overTLS)
	if !strings.HasPrefix(r, "250 ") {
		t.Fatalf("message over TLS: %q", r)
	}
	c.Quit()
	tlsSeq, ok := smtptest.ParseSeq(r)
	if !ok {
		t.Fatalf("no ledger sequence number in %q", r)
	}

	// The TLS message came last: once the index lists it, it lists both.
	db := in.waitIndexed(t, tlsSeq)
	if n := queryInt(t, db, `SELECT COUNT(*) FROM deliveries`); n != 2 {
		t.Errorf("%d deliveries, want 2 (the legitimate message and the one over TLS)", n)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM deliveries WHERE sender != 'a@example.com'`); n != 0 {
		t.Errorf("%d deliveries from a forged sender", n)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM recipients WHERE addr = 'victim@example.com'`); n != 0 {
		t.Errorf("the injected recipient is in the archive")
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM messages WHERE subject IN ('smuggled', 'outer')`); n != 0 {
		t.Errorf("%d smuggled or refused messages archived", n)
	}
	if d := readDelivery(t, in, int(tlsSeq)); !strings.HasPrefix(d.env.Meta["tls"], "TLS 1.3") {
		t.Errorf("message over STARTTLS: meta %v", d.env.Meta)
	}
	if got := in.cat("1"); got != nil && !bytes.Equal(got, overTLS) {
		t.Errorf("cairn cat 1: %q", got)
	}
	in.stop()
	t.Log(in.verify())
}
