//go:build integration

package e2e

import (
	"strings"
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

// deliverIndexed delivers raw to the instance's receiver, requires a 250
// with its ledger sequence number, and waits until the index lists the
// message: the 250 comes once the message is durable, the index row a few
// milliseconds later, and the test reads through the index next (search,
// holds, exports, the IMAP view).
func (in *instance) deliverIndexed(t testing.TB, from string, to []string, raw []byte) uint64 {
	t.Helper()
	r := deliverOne(t, in.smtpAddr, from, to, raw)
	seq, ok := smtptest.ParseSeq(r)
	if !strings.HasPrefix(r, "250 ") || !ok {
		t.Fatalf("deliver from %s: reply %q", from, r)
	}
	in.waitIndexed(t, seq)
	return seq
}

// heloName is the name the raw sessions say EHLO with.
const heloName = "e2e.cairn.test"
