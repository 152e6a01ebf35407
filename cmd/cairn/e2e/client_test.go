//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// client is a raw SMTP client over a socket: it sends exactly the bytes a
// test gives it, for probes that a real client library refuses to send, and
// it shows the whole reply (the 250 carries the ledger sequence number).
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
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// reply reads one (possibly multi-line) reply, its lines joined by "\n".
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

// expect reads one reply and fails the test unless it starts with prefix.
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

func (c *client) hello() {
	c.t.Helper()
	c.expect("220 ")
	c.send("EHLO e2e.cairn.test\r\n")
	c.expect("250")
}

// deliver runs one transaction and returns the reply to the end of data
// (or to the first command refused). raw must use CRLF line endings; it is
// dot-stuffed here.
func (c *client) deliver(from string, to []string, raw []byte) string {
	c.t.Helper()
	c.send("MAIL FROM:<" + from + ">\r\n")
	if r := c.expect(""); !strings.HasPrefix(r, "250") {
		return r
	}
	for _, rc := range to {
		c.send("RCPT TO:<" + rc + ">\r\n")
		if r := c.expect(""); !strings.HasPrefix(r, "250") {
			c.send("RSET\r\n")
			c.expect("250")
			return r
		}
	}
	c.send("DATA\r\n")
	if r := c.expect(""); !strings.HasPrefix(r, "354") {
		return r
	}
	c.send(string(dotStuff(raw)) + ".\r\n")
	r, err := c.reply()
	if err != nil {
		c.t.Fatalf("reply to the end of data: %v (got %q)", err, r)
	}
	return r
}

func (c *client) quit() {
	c.send("QUIT\r\n")
	c.reply()
	c.conn.Close()
}

// dotStuff doubles a leading dot on every line (RFC 5321 §4.5.2) and ends
// the data with CRLF.
func dotStuff(raw []byte) []byte {
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

// deliverOne opens a session, delivers raw and returns the reply.
func deliverOne(t testing.TB, addr, from string, to []string, raw []byte) string {
	t.Helper()
	c := dial(t, addr)
	c.hello()
	r := c.deliver(from, to, raw)
	c.quit()
	return r
}
