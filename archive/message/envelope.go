package message

import (
	"strings"
	"time"
)

// Envelope holds the header fields of a message that IMAP's ENVELOPE
// reports (RFC 9051 §7.5.2), as written: unfolded, surrounding white space
// removed, RFC 2047 encoded words left encoded. A field that is absent is
// "". When a field occurs more than once, the first occurrence counts.
type Envelope struct {
	Date      string
	Subject   string
	From      []Address
	Sender    []Address
	ReplyTo   []Address
	To        []Address
	Cc        []Address
	Bcc       []Address
	InReplyTo string
	MessageID string
}

// MissingHost is the Host of an address written without a domain, the
// convention of UW IMAP and Dovecot, so that only group markers have an
// empty Host.
const MissingHost = ".MISSING-HOST-NAME."

// Address is one element of an address list in the form of RFC 9051
// §7.5.2's address structure. Group syntax (RFC 5322 §3.4) is flattened as
// IMAP does: a group start has Mailbox set to the group's display name and
// Host empty; a group end has every field empty.
type Address struct {
	Name    string // display name as written, unquoted, RFC 2047 words left encoded
	Route   string // obsolete source route "@a,@b" (RFC 5322 §4.4), usually ""
	Mailbox string // local part, unquoted; group name for a group start
	Host    string // domain as written; MissingHost when absent; "" for group markers
}

// IsGroupStart reports whether a opens a group.
func (a Address) IsGroupStart() bool { return a.Host == "" && a.Mailbox != "" }

// IsGroupEnd reports whether a closes a group.
func (a Address) IsGroupEnd() bool { return a == Address{} }

// Addr returns the lower-cased address "mailbox@host" for indexing; only
// the mailbox when the host is missing; "" for group markers.
func (a Address) Addr() string {
	switch a.Host {
	case "":
		return ""
	case MissingHost:
		return strings.ToLower(a.Mailbox)
	}
	return strings.ToLower(a.Mailbox + "@" + a.Host)
}

// DecodedName returns the display name with RFC 2047 words decoded.
func (a Address) DecodedName() string { return DecodeHeader(a.Name) }

// Time returns the parsed Date field, or the zero time when it is absent
// or unparseable (see ParseDate).
func (e *Envelope) Time() time.Time {
	t, _ := ParseDate(e.Date)
	return t
}

// DecodedSubject returns the Subject with RFC 2047 words decoded.
func (e *Envelope) DecodedSubject() string { return DecodeHeader(e.Subject) }

// IMAPSender returns the envelope's sender as IMAP reports it: Sender, or
// From when Sender is absent or empty (RFC 9051 §7.5.2).
func (e *Envelope) IMAPSender() []Address {
	if len(e.Sender) == 0 {
		return e.From
	}
	return e.Sender
}

// IMAPReplyTo returns Reply-To, or From when Reply-To is absent or empty
// (RFC 9051 §7.5.2).
func (e *Envelope) IMAPReplyTo() []Address {
	if len(e.ReplyTo) == 0 {
		return e.From
	}
	return e.ReplyTo
}

// ParseAddressList parses an unfolded address-list header value (RFC 5322
// §3.4, with the obsolete forms of §4.4) leniently: it never fails, and
// returns what it can recognise. Missing commas between addresses
// ("A <a@x> B <b@y>"), bare local parts, unterminated groups, quotes and
// angle brackets are all tolerated.
func ParseAddressList(s string) []Address {
	l, _ := parseAddressList(s)
	return l
}

// maxAddresses bounds one address list; the header itself is bounded by
// the message size, this bounds the structure kept per message.
const maxAddresses = 10000

type addrWord struct {
	text  string
	space bool // white space or a comment came before the word
}

type addrParser struct {
	valueParser
	words  []addrWord
	lastGT int // offset of the last '>' in s, -1 if none
}

// parseAddressList returns the addresses and whether anything was malformed.
func parseAddressList(s string) (out []Address, bad bool) {
	a := &addrParser{valueParser: valueParser{s: s}, lastGT: strings.LastIndexByte(s, '>')}
	inGroup := false
	for a.pos < len(s) && len(out) < maxAddresses {
		a.words = a.words[:0]
		comment := a.phrase()
		if a.pos >= len(s) {
			if len(a.words) > 0 {
				out = append(out, Address{Mailbox: a.join(a.words, ""), Host: MissingHost})
				bad = true
			}
			break
		}
		switch s[a.pos] {
		case '<':
			name := a.join(a.words, " ")
			a.pos++
			addr, ok, clean := a.angle()
			if name == "" {
				name = a.trailingComment()
			}
			if ok {
				addr.Name = name
				out = append(out, addr)
			}
			if !ok || !clean {
				bad = true
			}
			if !a.separatorFollows() {
				bad = true // "A <a@x> B <b@y>": go on with the next address
			}
		case ':':
			a.pos++
			if name := a.join(a.words, " "); name != "" {
				out = append(out, Address{Mailbox: name})
				inGroup = true
			} else {
				bad = true
			}
		case ';':
			a.pos++
			if len(a.words) > 0 {
				out = append(out, Address{Mailbox: a.join(a.words, ""), Host: MissingHost})
				bad = true
			}
			if inGroup {
				out = append(out, Address{})
				inGroup = false
			}
		case '@':
			// addr-spec without angle brackets; the local part is the last
			// run of words without white space between them.
			k := len(a.words) - 1
			for k > 0 && !a.words[k].space {
				k--
			}
			if k < 0 {
				k = 0
			}
			if k > 0 {
				bad = true // text before a bare addr-spec
			}
			local := a.join(a.words[k:], "")
			name := a.join(a.words[:k], " ")
			a.pos++
			host := a.domain()
			if host == "" {
				host = MissingHost
				bad = true
			}
			if name == "" {
				name = a.trailingComment()
			}
			if name == "" {
				name = strings.TrimSpace(comment)
			}
			out = append(out, Address{Name: name, Mailbox: local, Host: host})
			if !a.separatorFollows() {
				bad = true
			}
		case ',':
			a.pos++
			if len(a.words) > 0 {
				out = append(out, Address{Mailbox: a.join(a.words, ""), Host: MissingHost})
				bad = true
			}
		default:
			a.pos++ // stray '>' and the like
			bad = true
		}
	}
	if inGroup {
		out = append(out, Address{})
		bad = true
	}
	return out, bad
}

// phrase collects words up to one of "<:;@," and returns the last comment.
func (a *addrParser) phrase() (comment string) {
	space := false
	for a.pos < len(a.s) {
		c := a.s[a.pos]
		switch {
		case isWSP(c) || c == '\r' || c == '\n':
			a.pos++
			space = true
		case c == '(':
			comment = a.skipComment()
			space = true
		case c == '"':
			a.words = append(a.words, addrWord{a.quoted(), space})
			space = false
		case c == '<' || c == ':' || c == ';' || c == '@' || c == ',':
			return comment
		case c == '>' || c == ')' || c == '\\' || c == '[' || c == ']':
			a.pos++ // stray special: skip
			space = true
		default:
			start := a.pos
			for a.pos < len(a.s) && isAtomOrDot(a.s[a.pos]) {
				a.pos++
			}
			if a.pos == start {
				a.pos++ // a control character: skip it
				space = true
				continue
			}
			a.words = append(a.words, addrWord{a.s[start:a.pos], space})
			space = false
		}
	}
	return comment
}

// isAtomOrDot reports whether c continues an atom (RFC 5322 §3.2.3 atext,
// plus "." for dot-atoms and obsolete phrases, plus 8-bit bytes).
func isAtomOrDot(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	return !strings.ContainsRune(`()<>[]:;@\,"`, rune(c))
}

func (a *addrParser) join(ws []addrWord, sep string) string {
	switch len(ws) {
	case 0:
		return ""
	case 1:
		return ws[0].text
	}
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// angle parses the inside of an angle-addr after "<" (RFC 5322 §3.4,
// obs-route §4.4) up to and including ">". ok is false for "<>"; clean
// is false when the closing ">" or the domain is missing.
func (a *addrParser) angle() (addr Address, ok, clean bool) {
	a.skipCFWS()
	if a.pos < len(a.s) && a.s[a.pos] == '@' {
		start := a.pos
		for a.pos < len(a.s) && a.s[a.pos] != ':' && a.s[a.pos] != '>' {
			a.pos++
		}
		if a.pos < len(a.s) && a.s[a.pos] == ':' {
			addr.Route = strings.TrimSpace(a.s[start:a.pos])
			a.pos++
		} else {
			a.pos = start
		}
	}
	var local strings.Builder
	for a.pos < len(a.s) {
		c := a.s[a.pos]
		if c == '@' || c == '>' || c == ',' && a.lastGT < a.pos {
			break
		}
		switch {
		case c == '"':
			local.WriteString(a.quoted())
		case c == '(':
			a.skipComment()
		case isWSP(c) || c == '\r' || c == '\n':
			a.pos++
		default:
			local.WriteByte(c)
			a.pos++
		}
	}
	addr.Mailbox = local.String()
	if a.pos < len(a.s) && a.s[a.pos] == '@' {
		a.pos++
		addr.Host = a.domain()
	}
	a.skipCFWS()
	clean = true
	if a.pos < len(a.s) && a.s[a.pos] == '>' {
		a.pos++
	} else {
		clean = false
	}
	if addr.Mailbox == "" && addr.Host == "" {
		return addr, false, clean // "<>"
	}
	if addr.Host == "" {
		addr.Host = MissingHost
		clean = false
	}
	return addr, true, clean
}

// domain reads a domain (dot-atom or domain-literal, RFC 5322 §3.4.1).
func (a *addrParser) domain() string {
	a.skipCFWS()
	var b strings.Builder
	for a.pos < len(a.s) {
		c := a.s[a.pos]
		switch {
		case c == '[':
			end := strings.IndexByte(a.s[a.pos:], ']')
			if end < 0 {
				end = len(a.s) - a.pos - 1
			}
			b.WriteString(a.s[a.pos : a.pos+end+1])
			a.pos += end + 1
		case c == '(':
			a.skipComment()
			return b.String()
		case isAtomOrDot(c):
			b.WriteByte(c)
			a.pos++
		default:
			return b.String()
		}
	}
	return b.String()
}

// trailingComment reads a comment right after an address, the old
// "bob@example.com (Bob)" form, as a display name.
func (a *addrParser) trailingComment() string {
	save := a.pos
	for a.pos < len(a.s) && isWSP(a.s[a.pos]) {
		a.pos++
	}
	if a.pos < len(a.s) && a.s[a.pos] == '(' {
		return strings.TrimSpace(a.skipComment())
	}
	a.pos = save
	return ""
}

// separatorFollows skips CFWS and reports whether the next thing is ",",
// ";" or the end; it consumes a ",".
func (a *addrParser) separatorFollows() bool {
	a.skipCFWS()
	if a.pos >= len(a.s) {
		return true
	}
	switch a.s[a.pos] {
	case ',':
		a.pos++
		return true
	case ';':
		return true
	}
	return false
}
