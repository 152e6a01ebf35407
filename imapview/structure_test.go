package imapview

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// ENVELOPE strings with quotes and backslashes go out as quoted strings
// with both escaped (RFC 9051 quoted-specials); the date as the message
// wrote it, and addresses split into name, mailbox and host.
func TestEnvelopeQuotedSpecials(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 1})
	raw := []byte("From: Jo <jo@example.com>\r\nTo: a@example.com\r\n" +
		"Subject: say \"hi\" \\ then \\\"bye\\\"\r\nMessage-ID: <q\"1@example.com>\r\n" +
		"Date: Tue, 3 Mar 2026 09:14:59 +0100\r\n\r\nbody\r\n")
	seq := f.a.Add(t, raw, time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), custA)
	r := f.raw()
	r.login("auditor", f.password)
	r.send("S EXAMINE INBOX\r\n")
	r.until("S OK")
	r.send(fmt.Sprintf("F UID FETCH %d (ENVELOPE)\r\n", seq+1))
	got := r.until("F ")
	for _, want := range []string{
		`"say \"hi\" \\ then \\\"bye\\\""`,
		`"Tue, 03 Mar 2026 09:14:59 +0100"`,
		`(("Jo" NIL "jo" "example.com"))`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ENVELOPE lacks %s:\n%s", want, got)
		}
	}
	if !strings.Contains(got, "F OK") {
		t.Errorf("FETCH not OK:\n%s", got)
	}
}
