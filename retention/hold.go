package retention

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/imapview/search"
)

// HoldSpec is what a legal team asks to preserve: messages of the case's
// custodians, in a date range, matching a search. Every criterion given
// must match; a hold with none is refused (use Query "ALL" to hold
// everything). A hold covers every message that matches while it is
// active, including messages archived after it was placed.
type HoldSpec struct {
	// Case is the legal matter's id ("C-2026-17"), 1-128 printable
	// characters. One case may have several holds.
	Case string `json:"case,omitempty"`
	// Reason is why the hold is placed, recorded in the ledger and the
	// audit log.
	Reason string `json:"reason,omitempty"`
	// Custodians: a message is theirs when one of them is a custodian of a
	// delivery of it, its envelope sender, or in its From field (so a
	// custodian's sent mail is held with the mail they received).
	Custodians []string `json:"custodians,omitempty"`
	// From and To bound the message date (the Date field; the archive time
	// when it is missing), as UTC days, both included. Zero: open.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// Query is a search program in `cairn search`'s language (IMAP SEARCH
	// keys, imapview/search). BODY and TEXT match by words (search's
	// full-text rule): a hold may keep a few messages more than a phrase
	// search would show, never fewer. Flag and UID keys are refused: they
	// describe an auditor's view, not the archive.
	Query string `json:"query,omitempty"`
}

// Hold is a placed hold.
type Hold struct {
	ID string `json:"id,omitempty"` // a UUIDv7, unique across archives
	HoldSpec
	PlacedAt time.Time `json:"placed_at,omitzero"`
	PlacedBy string    `json:"placed_by,omitempty"`
	// PlaceEntry is the ledger sequence number of the hold.place event, or
	// -1 while it waits to be recorded (the archive was busy in another
	// process; the next process that opens it records it).
	PlaceEntry int64 `json:"place_entry"`

	Released      bool      `json:"released,omitempty"`
	ReleasedAt    time.Time `json:"released_at,omitzero"`
	ReleasedBy    string    `json:"released_by,omitempty"`
	ReleaseReason string    `json:"release_reason,omitempty"`
	ReleaseEntry  int64     `json:"release_entry"` // -1 while pending or not released
}

// Active reports whether the hold is in force.
func (h *Hold) Active() bool { return !h.Released }

// maxCustodians bounds one hold (a case with more custodians takes several
// holds or a query).
const maxCustodians = 1000

// CheckCase checks a case id.
func CheckCase(c string) error {
	if c == "" || len(c) > 128 {
		return fmt.Errorf("retention: case id %q: want 1-128 characters", c)
	}
	if strings.TrimSpace(c) != c {
		return fmt.Errorf("retention: case id %q has surrounding spaces", c)
	}
	if strings.Contains(c, ",") {
		return fmt.Errorf("retention: case id %q: no commas", c)
	}
	return checkText("case id", c, 128)
}

// Validate checks the spec and normalises it: addresses lower-cased and
// deduplicated, dates truncated to UTC days, the query parsed.
func (s *HoldSpec) Validate() error {
	if err := CheckCase(s.Case); err != nil {
		return err
	}
	if strings.TrimSpace(s.Reason) == "" {
		return errors.New("retention: a hold needs a reason")
	}
	if err := checkText("reason", s.Reason, 1000); err != nil {
		return err
	}
	if len(s.Custodians) > maxCustodians {
		return fmt.Errorf("retention: %d custodians in one hold: at most %d", len(s.Custodians), maxCustodians)
	}
	seen := map[string]bool{}
	var cs []string
	for _, a := range s.Custodians {
		a = strings.ToLower(strings.TrimSpace(a))
		if err := CheckAddress(a); err != nil {
			return fmt.Errorf("custodian: %w", err)
		}
		if !seen[a] {
			seen[a] = true
			cs = append(cs, a)
		}
	}
	s.Custodians = cs
	if !s.From.IsZero() {
		s.From = day(s.From)
	}
	if !s.To.IsZero() {
		s.To = day(s.To)
	}
	if !s.From.IsZero() && !s.To.IsZero() && s.To.Before(s.From) {
		return fmt.Errorf("retention: hold dates: --to %s is before --from %s", s.To.Format(time.DateOnly), s.From.Format(time.DateOnly))
	}
	s.Query = strings.TrimSpace(s.Query)
	if s.Query != "" {
		if _, err := parseHoldQuery(s.Query); err != nil {
			return err
		}
	}
	if len(s.Custodians) == 0 && s.From.IsZero() && s.To.IsZero() && s.Query == "" {
		return errors.New("retention: a hold needs at least one criterion: custodians, a date range or a query (ALL holds everything)")
	}
	return nil
}

func day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// parseHoldQuery parses a hold's query and refuses the keys that do not
// describe the archive itself.
func parseHoldQuery(q string) (*search.Node, error) {
	n, err := search.Parse(q)
	if err != nil {
		return nil, fmt.Errorf("retention: hold query: %w", err)
	}
	var bad error
	var walk func(*search.Node)
	walk = func(n *search.Node) {
		switch n.Kind {
		case search.Flag:
			bad = fmt.Errorf("retention: hold query: flag keys (%s) are an auditor's own annotations, not the archive's", n.Value)
		case search.UID:
			bad = errors.New("retention: hold query: UID keys number a mailbox view, not the archive")
		}
		for _, k := range n.Kids {
			walk(k)
		}
	}
	walk(n)
	if bad != nil {
		return nil, bad
	}
	return n, nil
}

// Describe is the hold's criteria in words.
func (s *HoldSpec) Describe() string { return s.describeCriteria(true) }

func (s *HoldSpec) describeCriteria(query bool) string {
	var parts []string
	if len(s.Custodians) > 0 {
		parts = append(parts, "custodians "+strings.Join(s.Custodians, ", "))
	}
	switch {
	case !s.From.IsZero() && !s.To.IsZero():
		parts = append(parts, "dated "+s.From.Format(time.DateOnly)+" to "+s.To.Format(time.DateOnly))
	case !s.From.IsZero():
		parts = append(parts, "dated from "+s.From.Format(time.DateOnly))
	case !s.To.IsZero():
		parts = append(parts, "dated up to "+s.To.Format(time.DateOnly))
	}
	if s.Query != "" {
		if query {
			parts = append(parts, "matching "+s.Query)
		} else {
			parts = append(parts, "a query")
		}
	}
	return strings.Join(parts, "; ")
}

// cond is the hold's criteria as SQL; fullText reports a BODY or TEXT key
// (the full-text index must be current before it is trusted).
func (s *HoldSpec) cond(searchKey []byte) (c cond, fullText bool, err error) {
	var cs []cond
	if len(s.Custodians) > 0 {
		a := lowerAll(s.Custodians)
		var fromField []cond
		for _, x := range a {
			fromField = append(fromField, cond{`instr(',' || m.from_addr || ',', ',' || ? || ',') > 0`, []any{x}})
		}
		cs = append(cs, orConds([]cond{
			custodianCond(a),
			{`m.seq IN (SELECT message FROM deliveries WHERE lower(sender) IN (` + placeholders(len(a)) + `))`, anyArgs(a)},
			orConds(fromField),
		}))
	}
	// The message date: the Date field, else the archive time (seconds).
	const date = `COALESCE(m.date, m.archived_at / 1000000000)`
	if !s.From.IsZero() {
		cs = append(cs, cond{date + ` >= ?`, []any{s.From.Unix()}})
	}
	if !s.To.IsZero() {
		cs = append(cs, cond{date + ` < ?`, []any{s.To.AddDate(0, 0, 1).Unix()}})
	}
	if s.Query != "" {
		n, err := parseHoldQuery(s.Query)
		if err != nil {
			return cond{}, false, err
		}
		comp, err := search.Compile(n, search.Options{SearchKey: searchKey})
		if err != nil {
			return cond{}, false, fmt.Errorf("retention: hold query: %w", err)
		}
		cs = append(cs, cond{comp.Where, comp.Args})
		fullText = comp.FullText
	}
	return andConds(cs), fullText, nil
}
