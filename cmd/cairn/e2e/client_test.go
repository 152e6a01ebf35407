//go:build integration

package e2e

import (
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

// dial opens a raw SMTP session (smtptest.Raw) to cairn serve: exactly the
// bytes a test gives, for probes a client library refuses to send, and
// whole replies (the 250 carries the ledger sequence number).
func dial(t testing.TB, addr string) *smtptest.Raw { return smtptest.Dial(t, addr, 2*time.Minute) }

// deliverOne opens a session, delivers raw and returns the reply.
func deliverOne(t testing.TB, addr, from string, to []string, raw []byte) string {
	t.Helper()
	c := dial(t, addr)
	c.Hello(heloName)
	r := c.Deliver(from, to, raw)
	c.Quit()
	return r
}

// heloName is the name the raw sessions say EHLO with.
const heloName = "e2e.cairn.test"
