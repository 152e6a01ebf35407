package imapview

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
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
	r := f.inbox()
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

// A FETCH of ENVELOPE alone decodes only the root of the stored structure;
// with BODYSTRUCTURE or a part beside it, all of it. Either way the
// ENVELOPE sent is the same, and the parts are there when asked for.
func TestEnvelopeAloneAndWithParts(t *testing.T) {
	peek := func(spec imap.PartSpecifier, part ...int) *imap.FetchItemBodySection {
		return &imap.FetchItemBodySection{Specifier: spec, Part: part, Peek: true}
	}
	for _, c := range []struct {
		name     string
		o        imap.FetchOptions
		rootOnly bool
	}{
		{"ENVELOPE", imap.FetchOptions{Envelope: true}, true},
		{"ENVELOPE FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER]", imap.FetchOptions{Envelope: true, Flags: true, RFC822Size: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{peek(imap.PartSpecifierHeader)}}, true},
		{"ENVELOPE BODY.PEEK[]", imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{peek(imap.PartSpecifierNone)}}, true},
		{"ENVELOPE BODYSTRUCTURE", imap.FetchOptions{Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{}}, false},
		{"ENVELOPE BODY.PEEK[1]", imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{peek(imap.PartSpecifierNone, 1)}}, false},
		{"ENVELOPE BODY.PEEK[TEXT]", imap.FetchOptions{Envelope: true, BodySection: []*imap.FetchItemBodySection{peek(imap.PartSpecifierText)}}, false},
		{"ENVELOPE BINARY.PEEK[1]", imap.FetchOptions{Envelope: true, BinarySection: []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}}}, false},
		{"ENVELOPE BINARY.SIZE[1]", imap.FetchOptions{Envelope: true, BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{1}}}}, false},
	} {
		if nd := fetchNeeds(&c.o, true); !nd.structure || nd.rootOnly != c.rootOnly {
			t.Errorf("%s: structure %v, rootOnly %v; want true, %v", c.name, nd.structure, nd.rootOnly, c.rootOnly)
		}
	}

	f := newFixture(t, fixtureOpts{generated: 1})
	raw := []byte("From: Jo <jo@example.com>\r\nTo: a@example.com, b@example.com\r\nCc: c@example.com\r\n" +
		"Subject: parts\r\nMessage-ID: <p1@example.com>\r\nDate: Tue, 3 Mar 2026 09:14:59 +0100\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfirst\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\n<p>second</p>\r\n--b--\r\n")
	seq := f.a.Add(t, raw, time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC), custA)
	r := f.inbox()
	envelopeOf := func(items string) string {
		r.send(fmt.Sprintf("F UID FETCH %d (%s)\r\n", seq+1, items))
		got := r.until("F ")
		i := strings.Index(got, "ENVELOPE (")
		if i < 0 {
			t.Fatalf("%s: no ENVELOPE in %q", items, got)
		}
		env := got[i:]
		if j := strings.Index(env, `"<p1@example.com>")`); j >= 0 {
			return env[:j]
		}
		t.Fatalf("%s: ENVELOPE without its message id: %q", items, got)
		return ""
	}
	alone := envelopeOf("ENVELOPE")
	for _, want := range []string{`"parts"`, `(("Jo" NIL "jo" "example.com"))`, `((NIL NIL "c" "example.com"))`} {
		if !strings.Contains(alone, want) {
			t.Errorf("ENVELOPE alone lacks %s: %q", want, alone)
		}
	}
	if with := envelopeOf("ENVELOPE BODYSTRUCTURE"); with != alone {
		t.Errorf("ENVELOPE with BODYSTRUCTURE %q, alone %q", with, alone)
	}
	r.send(fmt.Sprintf("F UID FETCH %d (ENVELOPE BODYSTRUCTURE BODY.PEEK[2])\r\n", seq+1))
	got := r.until("F ")
	for _, want := range []string{`"text" "html"`, `"text" "plain"`, "<p>second</p>"} {
		if !strings.Contains(got, want) {
			t.Errorf("ENVELOPE BODYSTRUCTURE BODY[2] lacks %s: %q", want, got)
		}
	}
}
