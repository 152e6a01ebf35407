package retention

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-archive/cairn/ingest"
)

// Base is the date a rule's period counts from.
type Base string

// Bases.
const (
	// FromDate counts from the message's Date header field, as most
	// record-keeping rules do (SEC 17a-4, HIPAA: from creation), and from
	// the archive time when the field is missing or unreadable.
	FromDate Base = "date"
	// FromArchived counts from the time Cairn archived the message.
	FromArchived Base = "archived"
)

// Rule keeps the messages it matches for a period.
type Rule struct {
	// Name identifies the rule in explain, disposal tombstones and audit
	// events.
	Name string `json:"name,omitempty"`
	// Keep is the retention period; From where it starts.
	Keep Period `json:"keep"`
	From Base   `json:"from"`
	// Basis is the legal basis, free text ("SEC 17a-4(b)(4)"), shown by
	// explain and by erasure reports.
	Basis string `json:"basis,omitempty"`
	// Erasable says that no legal obligation keeps this rule's messages: a
	// GDPR erasure request erases them before their period ends. When false
	// (the default), a message inside its period is kept against an
	// erasure request (GDPR Art. 17(3)(b)).
	Erasable bool `json:"erasable,omitempty"`
	// Match selects the messages; the default rule has none.
	Match Match `json:"match"`
}

// Match selects messages. Every criterion that is set must match (and);
// within one criterion, any of its values matches (or). A message matches
// a criterion when any of its deliveries does.
type Match struct {
	// Custodians: the mailboxes a delivery belongs to (lower-case addresses).
	Custodians []string `json:"custodians,omitempty"`
	// Addresses: the sender (From field or envelope sender) or any
	// recipient (To, Cc, envelope recipients including Bcc).
	Addresses []string `json:"addresses,omitempty"`
	// Domains: as Addresses, by domain: "example.com" matches that domain
	// exactly, "*.example.com" every subdomain of it.
	Domains []string `json:"domains,omitempty"`
	// Sources: ingest sources (smtp, journal, google, bcc, harvest, import).
	Sources []string `json:"sources,omitempty"`
	// Folders: the source folder of a harvested or imported delivery
	// (compared without regard to case).
	Folders []string `json:"folders,omitempty"`
	// Headers: a header field containing a value.
	Headers []HeaderMatch `json:"headers,omitempty"`
}

// IsZero reports whether no criterion is set.
func (m *Match) IsZero() bool {
	return len(m.Custodians) == 0 && len(m.Addresses) == 0 && len(m.Domains) == 0 &&
		len(m.Sources) == 0 && len(m.Folders) == 0 && len(m.Headers) == 0
}

// HeaderMatch matches messages whose top-level header has the field with a
// value containing Value (unfolded, RFC 2047-decoded, case-insensitive);
// an empty Value matches every message that has the field.
type HeaderMatch struct {
	Field string `json:"field,omitempty"`
	Value string `json:"value,omitempty"`
}

// String returns the match in ParseHeaderMatch's syntax.
func (h HeaderMatch) String() string {
	if h.Value == "" {
		return h.Field + ":"
	}
	return h.Field + ": " + h.Value
}

// ParseHeaderMatch reads "Field: value" (the value may be empty). The field
// name follows RFC 5322 §3.6.8 (printable ASCII but ':'); the value is
// trimmed and must be valid UTF-8 without control characters.
func ParseHeaderMatch(s string) (HeaderMatch, error) {
	field, value, ok := strings.Cut(s, ":")
	if !ok {
		return HeaderMatch{}, fmt.Errorf("retention: header match %q: want \"Field: value\"", s)
	}
	field = strings.TrimSpace(field)
	value = strings.TrimSpace(value)
	h := HeaderMatch{Field: field, Value: value}
	if err := h.validate(); err != nil {
		return HeaderMatch{}, err
	}
	return h, nil
}

func (h HeaderMatch) validate() error {
	if h.Field == "" || len(h.Field) > 76 {
		return fmt.Errorf("retention: header match %q: the field name must be 1-76 characters", h.String())
	}
	for i := 0; i < len(h.Field); i++ {
		if c := h.Field[i]; c < 33 || c > 126 || c == ':' {
			return fmt.Errorf("retention: header match: field name %q: only printable ASCII without ':' (RFC 5322 §3.6.8)", h.Field)
		}
	}
	if err := checkText("header value", h.Value, 998); err != nil {
		return err
	}
	if strings.TrimSpace(h.Value) != h.Value {
		return fmt.Errorf("retention: header match %q: the value has surrounding spaces", h.String())
	}
	return nil
}

// checkText refuses invalid UTF-8, control characters and over-long text.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("retention: %s is longer than %d bytes", what, max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("retention: %s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("retention: %s holds a control character", what)
		}
	}
	return nil
}

// CheckAddress checks an e-mail address as the index stores them: lower
// case, one '@', a non-empty local part and domain, no spaces, commas,
// angle brackets or control characters.
func CheckAddress(a string) error {
	if a != strings.ToLower(a) {
		return fmt.Errorf("retention: address %q: write it in lower case", a)
	}
	local, domain, ok := strings.Cut(a, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
		return fmt.Errorf("retention: address %q: want local@domain", a)
	}
	if strings.ContainsAny(a, " \t,<>;\"()[]\\") {
		return fmt.Errorf("retention: address %q holds a space or one of ,<>;\"()[]\\", a)
	}
	return checkText("address", a, 320)
}

// CheckDomain checks a domain ("example.com") or a subdomain wildcard
// ("*.example.com").
func CheckDomain(d string) error {
	base := strings.TrimPrefix(d, "*.")
	if d != strings.ToLower(d) {
		return fmt.Errorf("retention: domain %q: write it in lower case", d)
	}
	if base == "" || strings.ContainsAny(base, "@*, \t<>;\"()[]\\") || strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".") || strings.Contains(base, "..") {
		return fmt.Errorf("retention: domain %q: want example.com or *.example.com", d)
	}
	return checkText("domain", d, 255)
}

var sources = map[string]bool{ingest.SourceSMTP: true, ingest.SourceJournal: true, ingest.SourceGoogle: true,
	ingest.SourceBcc: true, ingest.SourceHarvest: true, ingest.SourceImport: true}

// Validate checks the match's values.
func (m *Match) Validate() error {
	for _, a := range m.Custodians {
		if err := CheckAddress(a); err != nil {
			return fmt.Errorf("custodians: %w", err)
		}
	}
	for _, a := range m.Addresses {
		if err := CheckAddress(a); err != nil {
			return fmt.Errorf("addresses: %w", err)
		}
	}
	for _, d := range m.Domains {
		if err := CheckDomain(d); err != nil {
			return fmt.Errorf("domains: %w", err)
		}
	}
	for _, s := range m.Sources {
		if !sources[s] {
			return fmt.Errorf("sources: %q: want smtp, journal, google, bcc, harvest or import", s)
		}
	}
	for _, f := range m.Folders {
		if f == "" {
			return errors.New("folders: an empty folder name")
		}
		if err := checkText("folder", f, 1000); err != nil {
			return fmt.Errorf("folders: %w", err)
		}
	}
	for _, h := range m.Headers {
		if err := h.validate(); err != nil {
			return fmt.Errorf("headers: %w", err)
		}
	}
	return nil
}

// Describe is the match in words, for explain.
func (m *Match) Describe() string {
	var parts []string
	add := func(what string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, what+" "+strings.Join(vs, ", "))
		}
	}
	add("custodian", m.Custodians)
	add("address", m.Addresses)
	add("domain", m.Domains)
	add("source", m.Sources)
	add("folder", m.Folders)
	var hs []string
	for _, h := range m.Headers {
		hs = append(hs, h.String())
	}
	add("header", hs)
	if len(parts) == 0 {
		return "every message"
	}
	return strings.Join(parts, "; ")
}

// Policy is the ordered list of rules and the default rule. The first rule
// that matches a message decides its retention; a message no rule matches
// gets Default.
type Policy struct {
	Rules   []Rule
	Default Rule
}

// Validate checks the policy: unique names, a period and a base on every
// rule, criteria on every rule but the default.
func (p *Policy) Validate() error {
	names := map[string]bool{}
	check := func(r *Rule, def bool) error {
		where := fmt.Sprintf("rule %q", r.Name)
		if def {
			where = "the default rule"
		}
		if r.Name == "" {
			return fmt.Errorf("retention: %s has no name", where)
		}
		if err := checkText("rule name", r.Name, 100); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if names[r.Name] {
			return fmt.Errorf("retention: two rules are named %q", r.Name)
		}
		names[r.Name] = true
		if r.Keep.IsZero() {
			return fmt.Errorf("retention: %s: keep is not set (e.g. 7y)", where)
		}
		if r.From != FromDate && r.From != FromArchived {
			return fmt.Errorf("retention: %s: from %q: want date or archived", where, r.From)
		}
		if err := checkText("basis", r.Basis, 500); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if def && !r.Match.IsZero() {
			return fmt.Errorf("retention: the default rule matches every message: it takes no match criteria")
		}
		if !def && r.Match.IsZero() {
			return fmt.Errorf("retention: %s has no match criteria (the default rule is for every other message)", where)
		}
		if err := r.Match.Validate(); err != nil {
			return fmt.Errorf("retention: %s: %w", where, err)
		}
		return nil
	}
	for i := range p.Rules {
		if err := check(&p.Rules[i], false); err != nil {
			return err
		}
	}
	return check(&p.Default, true)
}

// rule returns rule i, or the default for -1.
func (p *Policy) rule(i int) *Rule {
	if i < 0 || i >= len(p.Rules) {
		return &p.Default
	}
	return &p.Rules[i]
}

// Start returns the date r's period counts from, and whether it fell back
// to the archive time (FromDate on a message without a readable Date).
func (r *Rule) Start(date, archived time.Time) (start time.Time, fallback bool) {
	if r.From == FromDate {
		if !date.IsZero() {
			return date.UTC(), false
		}
		return archived.UTC(), true
	}
	return archived.UTC(), false
}

// Expiry returns when r's period ends for a message; ok is false for a
// rule that keeps for ever.
func (r *Rule) Expiry(date, archived time.Time) (time.Time, bool) {
	start, _ := r.Start(date, archived)
	return r.Keep.After(start)
}
