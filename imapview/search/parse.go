package search

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limits of a search program.
const (
	MaxDepth = 64    // nesting of parentheses, NOT and OR
	MaxNodes = 10000 // keys and combinations
)

// ErrSyntax is wrapped by Parse's errors.
var ErrSyntax = errors.New("search: syntax error")

// Parse reads a search program written as IMAP search keys (RFC 9051
// §6.4.4), as `cairn search` takes it: keys are case-insensitive and
// space-separated (a conjunction), strings are atoms or "quoted" (with \"
// and \\), dates are 1-Feb-2024 or 2024-02-01, parentheses group. A
// leading CHARSET UTF-8 or US-ASCII is accepted. Message sequence numbers
// are not: a program outside a session has none.
func Parse(s string) (*Node, error) {
	p := &parser{s: s}
	var kids []*Node
	p.space()
	if w, ok := p.peekAtom(); ok && strings.EqualFold(w, "CHARSET") {
		p.atom()
		cs, err := p.str()
		if err != nil {
			return nil, err
		}
		if !strings.EqualFold(cs, "UTF-8") && !strings.EqualFold(cs, "US-ASCII") {
			return nil, fmt.Errorf("%w: charset %q: only UTF-8 and US-ASCII", ErrSyntax, cs)
		}
	}
	for {
		p.space()
		if p.pos >= len(p.s) {
			break
		}
		n, err := p.key(0)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 0 {
		return nil, fmt.Errorf("%w: empty search", ErrSyntax)
	}
	return AndOf(kids...), nil
}

type parser struct {
	s     string
	pos   int
	nodes int
}

func (p *parser) errf(format string, a ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrSyntax, p.pos, fmt.Sprintf(format, a...))
}

func (p *parser) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

func isAtomChar(c byte) bool {
	return c > ' ' && c != '(' && c != ')' && c != '"' && c != 0x7f
}

func (p *parser) peekAtom() (string, bool) {
	i := p.pos
	for i < len(p.s) && isAtomChar(p.s[i]) {
		i++
	}
	return p.s[p.pos:i], i > p.pos
}

func (p *parser) atom() (string, error) {
	p.space()
	w, ok := p.peekAtom()
	if !ok {
		return "", p.errf("expected a word")
	}
	p.pos += len(w)
	return w, nil
}

// str reads an atom or a quoted string.
func (p *parser) str() (string, error) {
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		var b strings.Builder
		for i := p.pos + 1; i < len(p.s); i++ {
			switch c := p.s[i]; c {
			case '\\':
				if i+1 < len(p.s) {
					i++
					b.WriteByte(p.s[i])
				}
			case '"':
				p.pos = i + 1
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return "", p.errf("unterminated quoted string")
	}
	return p.atom()
}

var months = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// ParseDate reads an IMAP date (RFC 9051 §9 date: 1-Feb-2024, the day
// optionally zero-padded) or an ISO date (2024-02-01), as midnight UTC.
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	f := strings.Split(s, "-")
	if len(f) == 3 {
		d, err1 := strconv.Atoi(f[0])
		y, err2 := strconv.Atoi(f[2])
		for i, m := range months {
			if strings.EqualFold(f[1], m) && err1 == nil && err2 == nil && d >= 1 && d <= 31 && len(f[2]) == 4 {
				t := time.Date(y, time.Month(i+1), d, 0, 0, 0, 0, time.UTC)
				if t.Day() == d {
					return t, nil
				}
			}
		}
	}
	return time.Time{}, fmt.Errorf("%w: date %q: want 1-Feb-2024 or 2024-02-01", ErrSyntax, s)
}

func (p *parser) date() (time.Time, error) {
	w, err := p.str()
	if err != nil {
		return time.Time{}, err
	}
	return ParseDate(w)
}

func (p *parser) number() (int64, error) {
	w, err := p.atom()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(w, 10, 64)
	if err != nil || n < 0 {
		return 0, p.errf("%q is not a number", w)
	}
	return n, nil
}

// ParseSet reads a UID set "1:5,9,20:*"; "*" is the largest UID.
func ParseSet(s string) ([]Range, error) {
	var out []Range
	num := func(x string) (uint32, error) {
		if x == "*" {
			return ^uint32(0), nil
		}
		n, err := strconv.ParseUint(x, 10, 32)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%w: %q in a set", ErrSyntax, x)
		}
		return uint32(n), nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := num(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = num(hi); err != nil {
				return nil, err
			}
		}
		if a > b {
			a, b = b, a
		}
		out = append(out, Range{a, b})
	}
	return out, nil
}

func (p *parser) key(depth int) (*Node, error) {
	if depth > MaxDepth {
		return nil, p.errf("nested more than %d levels", MaxDepth)
	}
	if p.nodes++; p.nodes > MaxNodes {
		return nil, p.errf("more than %d keys", MaxNodes)
	}
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == '(' {
		p.pos++
		var kids []*Node
		for {
			p.space()
			if p.pos >= len(p.s) {
				return nil, p.errf("missing )")
			}
			if p.s[p.pos] == ')' {
				p.pos++
				break
			}
			k, err := p.key(depth + 1)
			if err != nil {
				return nil, err
			}
			kids = append(kids, k)
		}
		if len(kids) == 0 {
			return nil, p.errf("empty parentheses")
		}
		n := AndOf(kids...)
		if n.Kind != And {
			n = &Node{Kind: And, Kids: []*Node{n}}
		}
		return n, nil
	}
	w, err := p.atom()
	if err != nil {
		return nil, err
	}
	strKey := func(k Kind) (*Node, error) {
		v, err := p.str()
		return &Node{Kind: k, Value: v}, err
	}
	dateKey := func(k Kind) (*Node, error) {
		d, err := p.date()
		return &Node{Kind: k, Date: d}, err
	}
	flag := func(f string) *Node { return &Node{Kind: Flag, Value: f} }
	not := func(n *Node) *Node { return &Node{Kind: Not, Kids: []*Node{n}} }
	switch strings.ToUpper(w) {
	case "ALL":
		return &Node{Kind: All}, nil
	case "FROM":
		return strKey(From)
	case "TO":
		return strKey(To)
	case "CC":
		return strKey(Cc)
	case "BCC":
		return strKey(Bcc)
	case "SUBJECT":
		return strKey(Subject)
	case "BODY":
		return strKey(Body)
	case "TEXT":
		return strKey(Text)
	case "HEADER":
		f, err := p.str()
		if err != nil {
			return nil, err
		}
		v, err := p.str()
		return &Node{Kind: Header, Field: f, Value: v}, err
	case "SINCE":
		return dateKey(Since)
	case "BEFORE":
		return dateKey(Before)
	case "ON":
		return dateKey(On)
	case "SENTSINCE":
		return dateKey(SentSince)
	case "SENTBEFORE":
		return dateKey(SentBefore)
	case "SENTON":
		return dateKey(SentOn)
	case "LARGER", "SMALLER":
		n, err := p.number()
		k := Larger
		if strings.EqualFold(w, "SMALLER") {
			k = Smaller
		}
		return &Node{Kind: k, Size: n}, err
	case "UID":
		s, err := p.atom()
		if err != nil {
			return nil, err
		}
		set, err := ParseSet(s)
		return &Node{Kind: UID, Set: set}, err
	case "SEEN", "ANSWERED", "FLAGGED", "DELETED", "DRAFT":
		return flag(`\` + strings.ToUpper(w[:1]) + strings.ToLower(w[1:])), nil
	case "UNSEEN", "UNANSWERED", "UNFLAGGED", "UNDELETED", "UNDRAFT":
		return not(flag(`\` + strings.ToUpper(w[2:3]) + strings.ToLower(w[3:]))), nil
	case "KEYWORD", "UNKEYWORD":
		k, err := p.atom()
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(w, "UNKEYWORD") {
			return not(flag(k)), err
		}
		return flag(k), nil
	case "RECENT", "NEW":
		return &Node{Kind: None}, nil
	case "OLD":
		return &Node{Kind: All}, nil
	case "NOT":
		k, err := p.key(depth + 1)
		if err != nil {
			return nil, err
		}
		return not(k), nil
	case "OR":
		a, err := p.key(depth + 1)
		if err != nil {
			return nil, err
		}
		b, err := p.key(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Node{Kind: Or, Kids: []*Node{a, b}}, nil
	}
	return nil, p.errf("unknown search key %q", w)
}
