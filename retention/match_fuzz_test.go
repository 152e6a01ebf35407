package retention

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseHeaderMatch: an accepted "Field: value" prints back to an
// equivalent string and validates.
func FuzzParseHeaderMatch(f *testing.F) {
	for _, s := range []string{"X-Department: trading", "List-Id:", "a:b", ": x", "X:\x00", "Subject: =?utf-8?q?caf=C3=A9?=", "X-Y: a: b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHeaderMatch(s)
		if err != nil {
			return
		}
		if err := h.validate(); err != nil {
			t.Fatalf("%q parsed to %+v, which does not validate: %v", s, h, err)
		}
		h2, err := ParseHeaderMatch(h.String())
		if err != nil || h2 != h {
			t.Fatalf("%q: %+v prints %q, which parses to %+v, %v", s, h, h.String(), h2, err)
		}
	})
}

// FuzzCheckAddress: what CheckAddress and CheckDomain accept is safe to
// keep in a comma-separated list and in the index's lower-case form.
func FuzzCheckAddress(f *testing.F) {
	for _, s := range []string{"a@b.example", "A@b", "a@b@c", "@b", "a@", "a,b@c", "a b@c", "*.example.com", "example.com", ".x", "x..y", "é@ü.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckAddress(s) == nil {
			if strings.ContainsAny(s, ", \t\r\n") || strings.Count(s, "@") != 1 || s != strings.ToLower(s) || !utf8.ValidString(s) {
				t.Fatalf("address %q accepted", s)
			}
		}
		if CheckDomain(s) == nil {
			if strings.ContainsAny(s, ",@ \t\r\n") || s != strings.ToLower(s) || strings.Contains(strings.TrimPrefix(s, "*."), "*") {
				t.Fatalf("domain %q accepted", s)
			}
		}
	})
}

// FuzzMatchSQL: any rule or hold that validates evaluates over a real
// index without an SQL error (values are arguments, never SQL text), and
// Explain agrees with a run on which rule applies.
func FuzzMatchSQL(f *testing.F) {
	h := newHarness(f, testPolicy(), nil)
	h.archive(msg("Mon, 01 Jan 2018 09:00:00 +0000", "Alice <alice@corp.example>", "bob@x.example", "f1", "budget review", "X-Department: Trading"),
		envelope("journal", "alice@corp.example", []string{"bob@x.example"}))
	h.archive(msg("", "carol@y.example", "dan%_@z.example", "f2", "hello"), envelope("import", "c'; DROP TABLE messages;--@y.example", []string{"dan%_@z.example"}))
	ctx := context.Background()
	for _, s := range []string{"alice@corp.example", "corp.example", "*.example", "Trading", "INBOX", "'; DROP TABLE holds; --", "%", "_", "FROM alice", "OR BODY x SUBJECT \"y\""} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m := Match{}
		if CheckAddress(a) == nil {
			m.Custodians, m.Addresses = []string{a}, []string{a}
		}
		if CheckDomain(a) == nil {
			m.Domains = []string{a}
		}
		if a != "" && checkText("folder", a, 1000) == nil {
			m.Folders = []string{a}
		}
		if hm, err := ParseHeaderMatch("X-Department: " + b); err == nil {
			m.Headers = []HeaderMatch{hm}
		}
		if m.IsZero() {
			return
		}
		p := Policy{Rules: []Rule{{Name: "fuzz", Keep: Period{Days: 1}, From: FromDate, Match: m}}, Default: Rule{Name: "d", Keep: Period{Years: 1}, From: FromArchived}}
		if err := p.Validate(); err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		var holds []*Hold
		spec := HoldSpec{Case: "C", Reason: "r", Query: b}
		if spec.Validate() == nil {
			holds = append(holds, &Hold{ID: "h", HoldSpec: spec})
		}
		e, err := newEvaluator(&p, holds, h.ring.SearchKey())
		if err != nil {
			t.Fatalf("%+v %q: %v", m, b, err)
		}
		if err := e.each(ctx, h.m.ix, cond{sql: "1"}, 0, func(*status) error { return nil }); err != nil {
			t.Fatalf("match %+v, query %q: %v", m, b, err)
		}
		for _, c := range m.criteria() {
			var n int
			if err := h.m.ix.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages m LEFT JOIN deliveries d ON d.seq = m.seq WHERE `+c.c.sql, c.c.args...).Scan(&n); err != nil {
				t.Fatalf("criterion %s: %v", c.what, err)
			}
		}
	})
}
