// Package smtptest drives an SMTP receiver the way Cairn's end-to-end
// checks need: many sessions sending numbered messages, and an exact record
// of which ones were answered 250 and with which ledger sequence number. A
// test kills the server, stops the object store or restarts it while Load
// runs, and then checks that every acknowledged message is in the archive
// byte for byte (Message returns the bytes sent).
//
// It speaks plain SMTP over net/textproto (net/smtp hides the text of the
// reply to DATA, which carries the sequence number).
package smtptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadOptions says what Load sends.
type LoadOptions struct {
	Addr     string        // host:port of the receiver
	Sessions int           // parallel sessions; default 1
	Messages int           // messages in total, numbered 0..Messages-1
	BodySize int           // approximate body bytes per message; default 10240
	From     string        // MAIL FROM; default "load@cairn.test"
	To       []string      // RCPT TO; default "archive@cairn.test"
	Run      string        // identifies this run in Message-IDs; default a timestamp
	Timeout  time.Duration // per command; default 30s
	// Retry resends a message that got a 4xx reply or lost its connection,
	// as a sending MTA does, until it is acknowledged, refused with 5xx, or
	// ctx ends; the pause between tries is RetryDelay (default 200ms).
	Retry      bool
	RetryDelay time.Duration
	// PerSession sends every message of a session over one connection
	// (like smtp-source -d); otherwise each message opens a new one.
	PerSession bool
}

// Ack is one message the receiver acknowledged.
type Ack struct {
	N         int    // the message's number
	MessageID string // its Message-ID, without angle brackets
	Seq       uint64 // from "Archived as seq N"; 0 if the reply had none
	Reply     string // the whole 250 reply
}

// Result is what Load saw. Every message is in exactly one of Acked,
// Refused (5xx) or Unacknowledged (4xx or a broken connection, and no later
// 250).
type Result struct {
	Acked          []Ack
	Refused        map[int]string // message number -> 5xx reply
	Unacknowledged []int
	TempFailures   int // 4xx replies seen, retries included
	ConnFailures   int // connections that failed or broke, retries included
	Duration       time.Duration
}

// Message returns the exact bytes Load sends as message n of run (CRLF line
// endings, no dot-stuffing), so a checker can compare what the archive holds.
func Message(run string, n, bodySize int) []byte {
	if bodySize <= 0 {
		bodySize = 10240
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: Load <load@cairn.test>\r\nTo: archive@cairn.test\r\n")
	fmt.Fprintf(&b, "Subject: load %s %d\r\nMessage-ID: <%s>\r\n", run, n, MessageID(run, n))
	fmt.Fprintf(&b, "Date: Thu, 26 Nov 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=us-ascii\r\n\r\n")
	line := 0
	for b.Len() < bodySize {
		// Distinct lines, so compression and deduplication see real text,
		// and one line starts with a dot to exercise dot-stuffing.
		if line == 3 {
			fmt.Fprintf(&b, ".%s line %d of message %d\r\n", run, line, n)
		} else {
			fmt.Fprintf(&b, "%s line %d of message %d: the quick brown fox jumps over the lazy dog\r\n", run, line, n)
		}
		line++
	}
	return []byte(b.String())
}

// MessageID returns the Message-ID (without brackets) of message n of run.
func MessageID(run string, n int) string {
	return fmt.Sprintf("%s.%d@load.cairn.test", run, n)
}

var seqRe = regexp.MustCompile(`\bseq (\d+)\b`)

// ParseSeq returns the ledger sequence number in a receiver's 250 reply.
func ParseSeq(reply string) (uint64, bool) {
	m := seqRe.FindStringSubmatch(reply)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	return n, err == nil
}

// Load sends the messages and reports every reply. It returns an error only
// for bad options; failures of the receiver are in the Result.
func Load(ctx context.Context, o LoadOptions) (Result, error) {
	if o.Addr == "" || o.Messages <= 0 {
		return Result{}, errors.New("smtptest: Addr and Messages are required")
	}
	if o.Sessions <= 0 {
		o.Sessions = 1
	}
	if o.BodySize <= 0 {
		o.BodySize = 10240
	}
	if o.From == "" {
		o.From = "load@cairn.test"
	}
	if len(o.To) == 0 {
		o.To = []string{"archive@cairn.test"}
	}
	if o.Run == "" {
		o.Run = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 200 * time.Millisecond
	}

	start := time.Now()
	var (
		mu   sync.Mutex
		res  = Result{Refused: map[int]string{}}
		next atomic.Int64
		wg   sync.WaitGroup
	)
	record := func(f func(r *Result)) {
		mu.Lock()
		f(&res)
		mu.Unlock()
	}
	for s := 0; s < o.Sessions; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *conn
			defer func() { c.close() }()
			for {
				n := int(next.Add(1) - 1)
				if n >= o.Messages {
					c.quit()
					return
				}
				msg := Message(o.Run, n, o.BodySize)
				for {
					retry := func() bool { return o.Retry && ctx.Err() == nil && sleep(ctx, o.RetryDelay) }
					if c == nil {
						var err error
						if c, err = dial(ctx, o); err != nil {
							record(func(r *Result) { r.ConnFailures++ })
							if retry() {
								continue
							}
							record(func(r *Result) { r.Unacknowledged = append(r.Unacknowledged, n) })
							break
						}
					}
					code, text, err := c.send(o, msg)
					if err != nil {
						c.close()
						c = nil
						record(func(r *Result) { r.ConnFailures++ })
						if retry() {
							continue
						}
						record(func(r *Result) { r.Unacknowledged = append(r.Unacknowledged, n) })
						break
					}
					if !o.PerSession {
						c.quit()
						c = nil
					}
					if code == 250 {
						seq, _ := ParseSeq(text)
						record(func(r *Result) {
							r.Acked = append(r.Acked, Ack{N: n, MessageID: MessageID(o.Run, n), Seq: seq, Reply: text})
						})
						break
					}
					if code >= 500 {
						record(func(r *Result) { r.Refused[n] = text })
						break
					}
					record(func(r *Result) { r.TempFailures++ })
					if retry() {
						continue
					}
					record(func(r *Result) { r.Unacknowledged = append(r.Unacknowledged, n) })
					break
				}
			}
		}()
	}
	wg.Wait()
	res.Duration = time.Since(start)
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// conn is one SMTP session.
type conn struct {
	tp      *textproto.Conn
	nc      net.Conn
	timeout time.Duration
}

func dial(ctx context.Context, o LoadOptions) (*conn, error) {
	d := net.Dialer{Timeout: o.Timeout}
	nc, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	c := &conn{tp: textproto.NewConn(nc), nc: nc, timeout: o.Timeout}
	nc.SetDeadline(time.Now().Add(o.Timeout))
	if _, _, err := c.tp.ReadResponse(220); err != nil {
		c.close()
		return nil, err
	}
	if _, _, err := c.cmd(250, "EHLO load.cairn.test"); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *conn) close() {
	if c != nil {
		c.tp.Close()
	}
}

func (c *conn) quit() {
	if c != nil {
		c.cmd(221, "QUIT")
		c.close()
	}
}

// send runs one transaction. A non-nil error means the connection broke;
// otherwise code and text are the answer that decides the message's fate.
func (c *conn) send(o LoadOptions, msg []byte) (int, string, error) {
	if code, text, err := c.cmd(250, "MAIL FROM:<%s>", o.From); err != nil {
		return answer(code, text, err)
	}
	for _, r := range o.To {
		if code, text, err := c.cmd(250, "RCPT TO:<%s>", r); err != nil {
			code, text, err := answer(code, text, err)
			if err == nil {
				c.cmd(250, "RSET")
			}
			return code, text, err
		}
	}
	if code, text, err := c.cmd(354, "DATA"); err != nil {
		return answer(code, text, err)
	}
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	w := c.tp.DotWriter()
	if _, err := w.Write(msg); err != nil {
		return 0, "", err
	}
	if err := w.Close(); err != nil {
		return 0, "", err
	}
	code, text, err := c.tp.ReadResponse(250)
	return answer(code, text, err)
}

// answer separates an SMTP reply (the connection is fine) from a broken
// connection.
func answer(code int, text string, err error) (int, string, error) {
	var pe *textproto.Error
	if err == nil || errors.As(err, &pe) {
		return code, fmt.Sprintf("%d %s", code, text), nil
	}
	return code, text, err
}

func (c *conn) cmd(expect int, format string, args ...any) (int, string, error) {
	c.nc.SetDeadline(time.Now().Add(c.timeout))
	id, err := c.tp.Cmd(format, args...)
	if err != nil {
		return 0, "", err
	}
	c.tp.StartResponse(id)
	defer c.tp.EndResponse(id)
	return c.tp.ReadResponse(expect)
}
