package message

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAddressList(t *testing.T) {
	m := func(name, mbox, host string) Address { return Address{Name: name, Mailbox: mbox, Host: host} }
	tests := []struct {
		in   string
		want []Address
		bad  bool
	}{
		{"alice@example.org", []Address{m("", "alice", "example.org")}, false},
		{"Alice <alice@example.org>", []Address{m("Alice", "alice", "example.org")}, false},
		{`"Last, First" <lf@x.y>, b@c.d`, []Address{m("Last, First", "lf", "x.y"), m("", "b", "c.d")}, false},
		{`"a \"quoted\" name" <q@x>`, []Address{m(`a "quoted" name`, "q", "x")}, false},
		{"bob@example.com (Bob Smith)", []Address{m("Bob Smith", "bob", "example.com")}, false},
		{"=?UTF-8?Q?Andr=C3=A9?= Pirard <p@x>", []Address{m("=?UTF-8?Q?Andr=C3=A9?= Pirard", "p", "x")}, false},
		{"<@a.example,@b.example:joe@c.example>", []Address{{Route: "@a.example,@b.example", Mailbox: "joe", Host: "c.example"}}, false},
		{`"john doe"@example.com`, []Address{m("", "john doe", "example.com")}, false},
		{"Team: a@x, B <b@y>;, c@z", []Address{{Mailbox: "Team"}, m("", "a", "x"), m("B", "b", "y"), {}, m("", "c", "z")}, false},
		{"undisclosed-recipients:;", []Address{{Mailbox: "undisclosed-recipients"}, {}}, false},
		{"user@[192.0.2.1]", []Address{m("", "user", "[192.0.2.1]")}, false},
		{"", nil, false},
		{" , ,", nil, false},
		// Malformed, from the corpus: two addresses without a comma.
		{"Bob Dunite <bob@extern> Bobby Dunite <bobby@extern>", []Address{m("Bob Dunite", "bob", "extern"), m("Bobby Dunite", "bobby", "extern")}, true},
		{"localonly", []Address{m("", "localonly", MissingHost)}, true},
		{"<nohost>", []Address{m("", "nohost", MissingHost)}, true},
		{"<>", nil, true},
		{"Group: a@x", []Address{{Mailbox: "Group"}, m("", "a", "x"), {}}, true},
		{"Broken <a@x", []Address{m("Broken", "a", "x")}, true},
		{"Broken <a@x, b@y", []Address{m("Broken", "a", "x"), m("", "b", "y")}, true},
		{"Bare Name a@x", []Address{m("Bare Name", "a", "x")}, true},
		{"a@x (unclosed", []Address{m("unclosed", "a", "x")}, false},
		// Control characters are skipped (found by FuzzParse: it looped).
		{"\x00\x01a@x", []Address{m("", "a", "x")}, false},
		{"Bob\x7f <b@x>", []Address{m("Bob", "b", "x")}, false},
	}
	for _, tt := range tests {
		got, bad := parseAddressList(tt.in)
		if !reflect.DeepEqual(got, tt.want) || bad != tt.bad {
			t.Errorf("parseAddressList(%q)\n got  %+v bad=%v\n want %+v bad=%v", tt.in, got, bad, tt.want, tt.bad)
		}
	}
}

func TestAddressHelpers(t *testing.T) {
	a := Address{Name: "=?utf-8?q?J=C3=B6rg?=", Mailbox: "Joerg", Host: "Example.ORG"}
	if got := a.Addr(); got != "joerg@example.org" {
		t.Errorf("Addr %q", got)
	}
	if got := a.DecodedName(); got != "Jörg" {
		t.Errorf("DecodedName %q", got)
	}
	if (Address{Mailbox: "g"}).Addr() != "" || !(Address{Mailbox: "g"}).IsGroupStart() || !(Address{}).IsGroupEnd() {
		t.Error("group markers")
	}
	if got := (Address{Mailbox: "Local", Host: MissingHost}).Addr(); got != "local" {
		t.Errorf("missing host Addr %q", got)
	}
}

func TestEnvelope(t *testing.T) {
	raw := crlf(`From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>
To: Bob <bob@example.com>,
 carol@example.com
Subject: =?utf-8?q?MIME_UTF8_Test_=c2=a2?=
 More Text
Date: Fri, 19 Oct 2012 12:22:49 -0700
Message-ID: <m1@example.org>
In-Reply-To: <m0@example.org>
Subject: second subject is ignored

body
`)
	p, _ := Parse(raw)
	e := p.Envelope
	want := &Envelope{
		Date:      "Fri, 19 Oct 2012 12:22:49 -0700",
		Subject:   "=?utf-8?q?MIME_UTF8_Test_=c2=a2?= More Text",
		From:      []Address{{Name: "=?ISO-8859-1?Q?Andr=E9?=", Mailbox: "andre", Host: "example.org"}},
		To:        []Address{{Name: "Bob", Mailbox: "bob", Host: "example.com"}, {Mailbox: "carol", Host: "example.com"}},
		MessageID: "<m1@example.org>",
		InReplyTo: "<m0@example.org>",
	}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("got  %+v\nwant %+v", e, want)
	}
	if got := e.DecodedSubject(); got != "MIME UTF8 Test ¢ More Text" {
		t.Errorf("DecodedSubject %q", got)
	}
	if got := e.Time(); !got.Equal(time.Date(2012, 10, 19, 19, 22, 49, 0, time.UTC)) {
		t.Errorf("Time %v", got)
	}
	if got := e.IMAPSender(); !reflect.DeepEqual(got, e.From) {
		t.Errorf("IMAPSender %v", got)
	}
	if got := e.IMAPReplyTo(); !reflect.DeepEqual(got, e.From) {
		t.Errorf("IMAPReplyTo %v", got)
	}
}

func TestParseDate(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time // zero: not parseable
	}{
		{"Thu, 18 Oct 2012 22:48:39 -0700", utc(2012, 10, 19, 5, 48, 39)},
		{"18 Oct 2012 22:48:39 -0700", utc(2012, 10, 19, 5, 48, 39)},
		{"Thu, 18 Oct 2012 22:48 +0000", utc(2012, 10, 18, 22, 48, 0)},
		{"Tue, 3 Mar 2026 09:14:59 +0100 (CET)", utc(2026, 3, 3, 8, 14, 59)},
		{"2 Mar 26 08:00 GMT", utc(2026, 3, 2, 8, 0, 0)},
		{"Sun, 10 Jul 1994 00:36:51 +0100", utc(1994, 7, 9, 23, 36, 51)},
		{"Fri, 10 Jul 15 13:12:34 PDT", utc(2015, 7, 10, 20, 12, 34)},
		{"Mon, 1 Jan 99 00:00:00 EST", utc(1999, 1, 1, 5, 0, 0)},
		{"Wed,  9 Feb 2011 10:05:00 GMT+0100", utc(2011, 2, 9, 9, 5, 0)},
		{"Thursday, October 18, 2012 10:48:39 PM -0700", utc(2012, 10, 19, 5, 48, 39)},
		{"18-Oct-2012 22:48:39 +0200", utc(2012, 10, 18, 20, 48, 39)},
		{"2012-10-18 22:48:39", utc(2012, 10, 18, 22, 48, 39)},
		{"2012-10-18T22:48:39Z", utc(2012, 10, 18, 22, 48, 39)},
		{"Sat, 31 Dec 2016 23:59:60 +0000", utc(2016, 12, 31, 23, 59, 59)},
		{"Thu, 18 Oct 2012 22:48:39 Z", utc(2012, 10, 18, 22, 48, 39)},
		{"Thu, 18 Oct 2012", utc(2012, 10, 18, 0, 0, 0)},
		{"", time.Time{}},
		{"yesterday", time.Time{}},
		{"31 Feb 2012 10:00:00 +0000", time.Time{}},
		{"18 Oct 2012 25:00:00 +0000", time.Time{}},
		{"Oct 2012", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := ParseDate(tt.in)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", tt.in, got, ok, tt.want)
		}
	}
}

func TestDecodeHeader(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?US-ASCII?Q?Test_QP_Subject=21?=", "Test QP Subject!"},
		{"=?utf-8?q?MIME_UTF8_Test_=c2=a2?= More Text", "MIME UTF8 Test ¢ More Text"},
		{"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"},
		{"=?UTF-8?B?UXVhcnRlcmx5IHJlcG9ydCDigJMgZW50d8O8cmY=?=", "Quarterly report – entwürf"},
		// White space between adjacent encoded words is dropped (RFC 2047 §6.2).
		{"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
		{"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
		// A character split across two words survives.
		{"=?utf-8?b?4oI=?= =?utf-8?b?rA==?=", "€"},
		{"=?utf-8?q?=E2=82?= =?utf-8?q?=AC?=", "€"},
		// Different charsets in a row.
		{"=?iso-8859-1?q?=E9?= =?utf-8?q?=C3=A9?=", "éé"},
		// Glued to text, and inside quotes.
		{"x=?utf-8?q?y?=z", "xyz"},
		{`"=?UTF-8?Q?Miros=C5=82aw?="`, `"Mirosław"`},
		// Language suffix (RFC 2231 §5).
		{"=?utf-8*en?q?hi?=", "hi"},
		// Unknown charset: UTF-8 or Latin-1 fallback.
		{"=?x-unknown?q?caf=C3=A9?=", "café"},
		{"=?x-unknown?q?caf=E9?=", "café"},
		// Malformed words stay.
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
		{"=?utf-8?q?unterminated", "=?utf-8?q?unterminated"},
		{"a =? b", "a =? b"},
		// Raw 8-bit text.
		{"caf\xe9", "café"},
		{"Grüße", "Grüße"},
	}
	for _, tt := range tests {
		if got := DecodeHeader(tt.in); got != tt.want {
			t.Errorf("DecodeHeader(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseDate: wherever time.Parse reads RFC 3339, ParseDate returns
// what it reads (its guard skips time.Parse only where it must fail), and
// nothing panics.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2012-10-18T22:48:39Z", "2012-10-18T22:48:39.123456789+02:00", " 2012-10-18T22:48:39-07:00 ",
		"Thu, 18 Oct 2012 22:48:39 -0700", "2012-10-18 22:48:39", "2012-10-18t22:48:39Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseDate(s)
		in := s
		if len(in) > 256 {
			in = in[:256]
		}
		if want, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(in)); err == nil && (!ok || !got.Equal(want)) {
			t.Fatalf("ParseDate(%q) = %v, %v; time.Parse reads %v", s, got, ok, want)
		}
	})
}

func BenchmarkParseDate(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ParseDate("Tue, 3 Mar 2026 09:14:59 +0100 (CET)")
	}
}
