package message

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNoSection is wrapped by Section for a part number the message does
// not have. IMAP servers answer such a FETCH with an empty string or NIL
// for the section (RFC 9051 §6.4.5 leaves it open); the view decides.
var ErrNoSection = errors.New("message: no such section")

// Section resolves a section part path of RFC 9051 §6.4.5 ([1 2 3] for
// "1.2.3") against the message p (the root, or an embedded message). The
// empty path is p itself. The returned part q answers every form of the
// section:
//
//	BODY[path]        q.Body(raw)
//	BODY[path.MIME]   q.Header(raw)
//	BODY[path.HEADER] q.Message.Header(raw), q.Message != nil only
//	BODY[path.TEXT]   q.Message.Body(raw),   q.Message != nil only
//
// (for the empty path, HEADER and TEXT are p's own header and body).
//
// Numbering follows RFC 9051: a message that is not multipart has the
// single part 1, which is its body, so for it Section([1]) is p itself; the
// parts of a multipart are numbered from 1; the parts of the message inside
// a message/rfc822 or message/global part x are x.1, x.2, ... and, when
// that message is not multipart, x.1 is its body.
func (p *Part) Section(path []int) (*Part, error) {
	cur := p
	isMessage := true // cur is a message whose body path[i] indexes
	for i, n := range path {
		switch {
		case cur.isMultipart():
			if n < 1 || n > len(cur.Parts) {
				return nil, sectionError(path[:i+1])
			}
			cur = &cur.Parts[n-1]
		case isMessage && n == 1:
			// The body of a non-multipart message is part 1.
		default:
			return nil, sectionError(path[:i+1])
		}
		isMessage = false
		if i+1 < len(path) && cur.Message != nil {
			cur, isMessage = cur.Message, true
		}
	}
	return cur, nil
}

func sectionError(path []int) error {
	return fmt.Errorf("message: section %s: %w", FormatSectionPath(path), ErrNoSection)
}

// ParseSectionPath parses "1.2.3" into [1 2 3]. The empty string is the
// empty path. Part numbers are non-zero (RFC 9051 §9, section-part).
func ParseSectionPath(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	f := strings.Split(s, ".")
	if len(f) > MaxDepth*2+1 {
		return nil, fmt.Errorf("message: section %q: too deep", s)
	}
	out := make([]int, len(f))
	for i, x := range f {
		n, err := strconv.Atoi(x)
		if err != nil || n < 1 || x[0] == '0' || x[0] == '+' {
			return nil, fmt.Errorf("message: section %q: bad part number %q", s, x)
		}
		out[i] = n
	}
	return out, nil
}

// FormatSectionPath formats [1 2 3] as "1.2.3".
func FormatSectionPath(path []int) string {
	var b strings.Builder
	for i, n := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
