package smtptest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Raw is a raw SMTP client over a socket for tests: it sends exactly the
// bytes a test gives it, for probes that a real client library refuses to
// send, and shows whole replies (a 250 carries the ledger sequence
// number). Conn and R may be replaced, after STARTTLS.
type Raw struct {
	T    testing.TB
	Conn net.Conn
	R    *bufio.Reader
}

// Dial connects to addr; every read and write must be done within
// deadline. The connection is closed when the test ends.
func Dial(t testing.TB, addr string, deadline time.Duration) *Raw {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(deadline))
	return &Raw{T: t, Conn: conn, R: bufio.NewReader(conn)}
}

// Reply reads one (possibly multi-line) reply, its lines joined by "\n".
func (c *Raw) Reply() (string, error) {
	var lines []string
	for {
		line, err := c.R.ReadString('\n')
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

// Expect reads one reply and fails the test unless it starts with prefix.
func (c *Raw) Expect(prefix string) string {
	c.T.Helper()
	r, err := c.Reply()
	if err != nil {
		c.T.Fatalf("reading reply (want %q): %v (got %q)", prefix, err, r)
	}
	if !strings.HasPrefix(r, prefix) {
		c.T.Fatalf("reply %q, want prefix %q", r, prefix)
	}
	return r
}

// Send writes s as it is.
func (c *Raw) Send(s string) {
	c.T.Helper()
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatal(err)
	}
}

// Hello reads the greeting and says EHLO name.
func (c *Raw) Hello(name string) {
	c.T.Helper()
	c.Expect("220 ")
	c.Send("EHLO " + name + "\r\n")
	c.Expect("250")
}

// Closed reports whether the server has closed the connection (EOF or
// reset) within two seconds, with no further reply; otherwise the reply.
func (c *Raw) Closed() (bool, string) {
	c.Conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	r, err := c.Reply()
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && r == "" {
		return true, ""
	}
	return false, r
}

// Deliver runs one transaction and returns the reply to the end of data,
// or to the first command refused. raw must use CRLF line endings; it is
// dot-stuffed here.
func (c *Raw) Deliver(from string, to []string, raw []byte) string {
	c.T.Helper()
	c.Send("MAIL FROM:<" + from + ">\r\n")
	if r := c.Expect(""); !strings.HasPrefix(r, "250") {
		return r
	}
	for _, rc := range to {
		c.Send("RCPT TO:<" + rc + ">\r\n")
		if r := c.Expect(""); !strings.HasPrefix(r, "250") {
			c.Send("RSET\r\n")
			c.Expect("250")
			return r
		}
	}
	c.Send("DATA\r\n")
	if r := c.Expect(""); !strings.HasPrefix(r, "354") {
		return r
	}
	c.Send(string(DotStuff(raw)) + ".\r\n")
	r, err := c.Reply()
	if err != nil {
		c.T.Fatalf("reply to the end of data: %v (got %q)", err, r)
	}
	return r
}

// Quit says QUIT, reads the reply and closes the connection.
func (c *Raw) Quit() {
	c.Send("QUIT\r\n")
	c.Reply()
	c.Conn.Close()
}

// DotStuff doubles a leading dot on every line (RFC 5321 §4.5.2) and ends
// the data with CRLF.
func DotStuff(raw []byte) []byte {
	var b bytes.Buffer
	lineStart := true
	for _, ch := range raw {
		if lineStart && ch == '.' {
			b.WriteByte('.')
		}
		b.WriteByte(ch)
		lineStart = ch == '\n'
	}
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes()
}
