package retention

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

func mustPeriod(s string) Period {
	p, err := ParsePeriod(s)
	if err != nil {
		panic(err)
	}
	return p
}

// rulesPolicy has one rule per kind of criterion.
func rulesPolicy() Policy {
	return Policy{
		Rules: []Rule{
			{Name: "legal", Keep: mustPeriod("10y"), From: FromDate, Match: Match{Custodians: []string{"legal@corp.example"}}},
			{Name: "finra", Keep: mustPeriod("6y"), From: FromDate, Basis: "SEC 17a-4(b)(4)", Match: Match{Domains: []string{"finra.example"}}},
			{Name: "bcc", Keep: mustPeriod("5y"), From: FromArchived, Match: Match{Addresses: []string{"secret@corp.example"}}},
			{Name: "partners", Keep: mustPeriod("4y"), From: FromDate, Match: Match{Domains: []string{"*.partner.example"}}},
			{Name: "journal", Keep: mustPeriod("3y"), From: FromDate, Match: Match{Sources: []string{ingest.SourceJournal}}},
			{Name: "contracts", Keep: mustPeriod("2y"), From: FromDate, Match: Match{Folders: []string{"archive/contracts"}}},
			{Name: "trading", Keep: mustPeriod("1y6m"), From: FromDate, Erasable: true, Match: Match{Headers: []HeaderMatch{{"X-Department", "trading"}}}},
			{Name: "both", Keep: mustPeriod("90d"), From: FromDate, Match: Match{Sources: []string{ingest.SourceImport}, Domains: []string{"both.example"}}},
		},
		Default: Rule{Name: "default", Keep: mustPeriod("7y"), From: FromDate},
	}
}

func TestRulesMatchInOrder(t *testing.T) {
	h := newHarness(t, rulesPolicy(), nil)
	ctx := context.Background()
	date := "Fri, 01 Mar 2019 10:00:00 +0000"
	imp := envelope(ingest.SourceImport, "x@y.example", []string{"box@corp.example"})
	imp.Meta = map[string]string{"folder": "Archive/Contracts"}
	impBoth := envelope(ingest.SourceImport, "x@y.example", []string{"box@corp.example"})
	imp2 := envelope(ingest.SourceImport, "x@y.example", []string{"box@corp.example"})
	imp2.Meta = map[string]string{"folder": "Archive/Contracts/Old"}
	cases := []struct {
		name string
		raw  []byte
		env  *ingest.Envelope
		rule string
		why  string
	}{
		{"custodian", msg(date, "a@x.example", "b@x.example", "m1", "one"), envelope("", "a@x.example", []string{"legal@corp.example"}), "legal", "custodian legal@corp.example"},
		{"first rule wins", msg(date, "broker@finra.example", "b@x.example", "m2", "two"), envelope("", "broker@finra.example", []string{"legal@corp.example"}), "legal", "custodian"},
		{"from domain", msg(date, "Broker <broker@finra.example>", "b@x.example", "m3", "three"), envelope("", "other@x.example", []string{"b@x.example"}), "finra", "domain finra.example"},
		{"envelope sender domain", msg(date, "a@x.example", "b@x.example", "m4", "four"), envelope("", "bounce@finra.example", []string{"b@x.example"}), "finra", "domain"},
		{"not a subdomain", msg(date, "a@x.example", "b@notfinra.example", "m5", "five"), envelope("", "a@x.example", []string{"b@x.example"}), "default", ""},
		{"bcc address", msg(date, "a@x.example", "b@x.example", "m6", "six"), envelope("", "a@x.example", nil,
			ingest.Recipient{Address: "b@x.example", Kind: ingest.KindTo}, ingest.Recipient{Address: "Secret@corp.example", Kind: ingest.KindBcc}), "bcc", "address secret@corp.example"},
		{"subdomain", msg(date, "a@x.example", "c@eu.partner.example", "m7", "seven"), envelope("", "a@x.example", []string{"b@x.example"}), "partners", "domain *.partner.example"},
		{"wildcard is not the domain itself", msg(date, "a@x.example", "c@partner.example", "m8", "eight"), envelope("", "a@x.example", []string{"b@x.example"}), "default", ""},
		{"source", msg(date, "a@x.example", "b@x.example", "m9", "nine"), envelope(ingest.SourceJournal, "a@x.example", []string{"b@x.example"}), "journal", "source journal"},
		{"folder", msg(date, "a@x.example", "b@x.example", "m10", "ten"), imp, "contracts", "folder archive/contracts"},
		{"folder is exact", msg(date, "a@x.example", "b@x.example", "m11", "eleven"), imp2, "default", ""},
		{"header", msg(date, "a@x.example", "b@x.example", "m12", "twelve", "X-Department:  Equity\r\n Trading Desk"), envelope("", "a@x.example", []string{"b@x.example"}), "trading", "header X-Department: trading"},
		{"every criterion", msg(date, "a@both.example", "b@x.example", "m13", "thirteen"), impBoth, "both", "source import"},
		{"one criterion of two", msg(date, "a@both.example", "b@x.example", "m14", "fourteen"), envelope("", "a@x.example", []string{"b@x.example"}), "default", ""},
	}
	for _, c := range cases {
		seq := h.archive(c.raw, c.env)
		x, err := h.m.Explain(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if x.Rule.Name != c.rule || !strings.Contains(strings.Join(x.Matched, "; "), c.why) {
			t.Errorf("%s: rule %s matched %v; want %s (%s)", c.name, x.Rule.Name, x.Matched, c.rule, c.why)
		}
	}
	// A later delivery can change the rule: the message now has a
	// journal delivery too (rules see every delivery).
	seq := h.archive(msg(date, "a@x.example", "b@x.example", "m15", "fifteen"), envelope("", "a@x.example", []string{"b@x.example"}))
	if x, _ := h.m.Explain(ctx, seq); x.Rule.Name != "default" {
		t.Fatalf("before: %s", x.Rule.Name)
	}
	h.archive(msg(date, "a@x.example", "b@x.example", "m15", "fifteen"), envelope(ingest.SourceJournal, "a@x.example", []string{"b@x.example"}))
	if x, _ := h.m.Explain(ctx, seq); x.Rule.Name != "journal" {
		t.Fatalf("after a journal delivery: %s", x.Rule.Name)
	}
}

func TestExplainExpiry(t *testing.T) {
	h := newHarness(t, rulesPolicy(), nil)
	ctx := context.Background()
	h.clock.set(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	// Default, from the Date field: 2019-03-01 + 7y = 2026-03-01, expired.
	s1 := h.archive(msg("Fri, 01 Mar 2019 10:00:00 +0000", "a@x.example", "b@x.example", "e1", "x"), envelope("", "a@x.example", []string{"b@x.example"}))
	x, err := h.m.Explain(ctx, s1)
	if err != nil {
		t.Fatal(err)
	}
	if !x.Expiry.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) || !x.Expired || !x.Disposable || x.StartFallback {
		t.Fatalf("default from date: %+v", x)
	}
	// No Date field: from the archive time, not expired.
	s2 := h.archive(msg("", "a@x.example", "b@x.example", "e2", "x"), envelope("", "a@x.example", []string{"b@x.example"}))
	x, _ = h.m.Explain(ctx, s2)
	if !x.StartFallback || x.Expired || !x.Start.Equal(x.Archived) || !x.Expiry.Equal(x.Archived.AddDate(7, 0, 0)) {
		t.Fatalf("no Date: %+v", x)
	}
	// Rule from the archive time.
	s3 := h.archive(msg("Fri, 01 Mar 2019 10:00:00 +0000", "a@x.example", "b@x.example", "e3", "x"), envelope("", "a@x.example", nil,
		ingest.Recipient{Address: "secret@corp.example", Kind: ingest.KindBcc}))
	x, _ = h.m.Explain(ctx, s3)
	if x.Rule.Name != "bcc" || !x.Expiry.Equal(x.Archived.AddDate(5, 0, 0)) || x.Expired {
		t.Fatalf("from archived: %+v", x)
	}
	// Obligation: a non-erasable rule inside its period is kept from
	// erasure; an erasable one is not.
	if !strings.Contains(x.Erasure, "Art. 17(3)(b)") {
		t.Fatalf("erasure of an obligated message: %q", x.Erasure)
	}
	s4 := h.archive(msg("Fri, 01 Mar 2026 10:00:00 +0000", "a@x.example", "b@x.example", "e4", "x", "X-Department: trading"), envelope("", "a@x.example", []string{"b@x.example"}))
	if x, _ = h.m.Explain(ctx, s4); x.Rule.Name != "trading" || x.Erasure != "" {
		t.Fatalf("erasable rule: %+v", x)
	}
	if _, err := h.m.Explain(ctx, 9999); err == nil {
		t.Fatal("explain of no message")
	}
}

func TestPolicyValidate(t *testing.T) {
	ok := rulesPolicy()
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(p *Policy)
		want string
	}{
		{"no default keep", func(p *Policy) { p.Default.Keep = Period{} }, "keep is not set"},
		{"bad from", func(p *Policy) { p.Rules[0].From = "received" }, "want date or archived"},
		{"no criteria", func(p *Policy) { p.Rules[0].Match = Match{} }, "no match criteria"},
		{"default with criteria", func(p *Policy) { p.Default.Match.Sources = []string{"smtp"} }, "takes no match"},
		{"duplicate name", func(p *Policy) { p.Rules[1].Name = "legal" }, "two rules"},
		{"upper-case address", func(p *Policy) { p.Rules[0].Match.Custodians = []string{"Legal@corp.example"} }, "lower case"},
		{"bad address", func(p *Policy) { p.Rules[2].Match.Addresses = []string{"nobody"} }, "local@domain"},
		{"bad domain", func(p *Policy) { p.Rules[1].Match.Domains = []string{"a@b"} }, "example.com"},
		{"bad source", func(p *Policy) { p.Rules[4].Match.Sources = []string{"fax"} }, "fax"},
		{"bad header", func(p *Policy) { p.Rules[6].Match.Headers = []HeaderMatch{{"X Dept", "x"}} }, "field name"},
		{"no name", func(p *Policy) { p.Rules[0].Name = "" }, "no name"},
	} {
		p := rulesPolicy()
		c.edit(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want %q", c.name, err, c.want)
		}
	}
}

func TestParseHeaderMatch(t *testing.T) {
	for _, c := range []struct {
		in   string
		want HeaderMatch
		ok   bool
	}{
		{"X-Department: trading", HeaderMatch{"X-Department", "trading"}, true},
		{"X-Department:trading desk ", HeaderMatch{"X-Department", "trading desk"}, true},
		{"X-Confidential:", HeaderMatch{"X-Confidential", ""}, true},
		{" List-Id : <ops.example.com>", HeaderMatch{"List-Id", "<ops.example.com>"}, true},
		{"no colon", HeaderMatch{}, false},
		{": value", HeaderMatch{}, false},
		{"X Dept: v", HeaderMatch{}, false},
		{"X-Dept: a\x01b", HeaderMatch{}, false},
		{"X-Dept: \xff", HeaderMatch{}, false},
	} {
		got, err := ParseHeaderMatch(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseHeaderMatch(%q) = %+v, %v", c.in, got, err)
		}
	}
}
