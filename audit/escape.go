package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The escapers below are the only place where CEF, LEEF and syslog
// structured data are quoted; each has a fuzz target (escape_fuzz_test.go)
// and a round trip through an independent parser in the tests.

// appendCEFHeader escapes a CEF header field.
// ArcSight CEF rev. 25 "Character Encoding": in the prefix, a pipe is
// escaped as \| and a backslash as \\. Newlines are not allowed in the
// prefix; CR and LF (which only config values could bring) become spaces.
func appendCEFHeader(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '|', '\\':
			dst = append(dst, '\\', c)
		case '\r', '\n':
			dst = append(dst, ' ')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendCEFValue escapes a CEF extension value.
// ArcSight CEF rev. 25 "Character Encoding": in the extension, = is escaped
// as \=, a backslash as \\, and a newline as \n (CR as \r). Pipes need no
// escape there. Other bytes, UTF-8 included, pass as they are.
func appendCEFValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '=', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendLEEFHeader escapes a LEEF header field.
// IBM LEEF 2.0 guide: a pipe inside a header field is escaped with a
// backslash; we also escape the backslash itself so the escape is
// reversible, and turn CR/LF into spaces (a LEEF event is one line).
func appendLEEFHeader(dst []byte, s string) []byte {
	return appendCEFHeader(dst, s)
}

// leefDelim is the attribute delimiter, declared in the header as "x09"
// (IBM LEEF 2.0: the delimiter field is one character or its hex code
// prefixed by x or 0x). Tab is also LEEF 1.0's fixed delimiter, so QRadar's
// default parsing applies.
const leefDelim = '\t'

// appendLEEFValue escapes a LEEF attribute value.
// LEEF 2.0 defines no escape for its delimiter, so a value must not contain
// it raw. Cairn's rule (docs/AUDIT.md): backslash as \\, tab (the delimiter)
// as \t, LF as \n, CR as \r. '=' needs no escape: a key ends at the first
// '=' of an attribute.
func appendLEEFValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case leefDelim:
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendSDValue escapes an RFC 5424 PARAM-VALUE.
// RFC 5424 §6.3.3: '"', '\' and ']' MUST be escaped with a backslash. The
// value is UTF-8 (invalid bytes become U+FFFD). Control characters are
// legal but syslog receivers rewrite them (rsyslog: #012), so they become
// U+FFFD too: structured data is for filtering; the exact event is in MSG.
func appendSDValue(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\' || r == ']':
			dst = append(dst, '\\', byte(r))
		case r == utf8.RuneError && n <= 1, r < 0x20, r == 0x7f:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		default:
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return dst
}

// appendTimestamp writes an RFC 5424 §6.2.3 TIMESTAMP: RFC 3339, UTC,
// at most 6 fractional digits.
func appendTimestamp(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
}

func appendUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }
