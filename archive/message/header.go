package message

import "bytes"

// Header lines are classified the same way by Parse and by HeaderFields, so
// that what BODY[HEADER.FIELDS (...)] returns agrees with the parsed
// structure:
//
//   - a blank line ends the header (RFC 5322 §2.1);
//   - a line starting with SP or HTAB continues the previous field
//     (RFC 5322 §2.2.3);
//   - "name:" starts a field, where name is printable US-ASCII without
//     colon, optionally followed by WSP before the colon (RFC 5322 §3.6.8,
//     obsolete syntax §4.5);
//   - anything else is junk. Junk after a field is taken as a wrongly
//     folded continuation of it (mailers that forget the leading space);
//     junk before the first field is skipped.

// lineEnd returns the offset just after the line feed ending the line that
// starts at pos, or len(b).
func lineEnd(b []byte, pos int) int {
	if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
		return pos + i + 1
	}
	return len(b)
}

// contentEnd returns the end of line b[pos:e] without its line break.
func contentEnd(b []byte, pos, e int) int {
	if e > pos && b[e-1] == '\n' {
		e--
		if e > pos && b[e-1] == '\r' {
			e--
		}
	}
	return e
}

// isBlankLine reports whether line (with its line break) is empty.
func isBlankLine(line []byte) bool {
	switch len(line) {
	case 1:
		return line[0] == '\n'
	case 2:
		return line[0] == '\r' && line[1] == '\n'
	}
	return false
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

// fieldName parses "name:" at the start of line. It returns the end of the
// name and the offset of the colon.
func fieldName(line []byte) (nameEnd, colon int, ok bool) {
	for i, c := range line {
		switch {
		case c == ':':
			if i == 0 {
				return 0, 0, false
			}
			return i, i, true
		case isWSP(c):
			// Obsolete "name :" (RFC 5322 §4.5.1): WSP only up to the colon.
			if i == 0 {
				return 0, 0, false
			}
			j := i
			for j < len(line) && isWSP(line[j]) {
				j++
			}
			if j < len(line) && line[j] == ':' {
				return i, j, true
			}
			return 0, 0, false
		case c < '!' || c > '~':
			return 0, 0, false
		}
	}
	return 0, 0, false
}

// unfold returns a header value with line breaks removed (RFC 5322
// §2.2.3) and surrounding WSP trimmed. A line break followed by anything
// but WSP (a wrongly folded line) becomes one space, so words do not run
// together.
func unfold(b []byte) string {
	b = trimWSP(b)
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\r' && c != '\n' {
			out = append(out, c)
			continue
		}
		j := i
		for j < len(b) && (b[j] == '\r' || b[j] == '\n') {
			j++
		}
		if j < len(b) && !isWSP(b[j]) {
			out = append(out, ' ')
		}
		i = j - 1
	}
	return string(trimWSP(out))
}

func trimWSP(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && (isWSP(b[i]) || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	for j > i && (isWSP(b[j-1]) || b[j-1] == '\r' || b[j-1] == '\n') {
		j--
	}
	return b[i:j]
}

// HeaderFields appends to dst the fields of the raw header block header
// whose names are in names (not == false), or not in names (not == true),
// and returns the extended slice. This is BODY[HEADER.FIELDS (...)] and
// BODY[HEADER.FIELDS.NOT (...)] of RFC 9051 §6.4.5: names match
// ASCII-case-insensitively, each selected field keeps its folded
// continuation lines exactly as stored, and the blank line that ends the
// header is appended when header has one (a header without body and
// without blank line has none to append).
//
// header is normally Part.Header(raw). Junk lines are handled as Parse
// handles them (see the package comment).
func HeaderFields(dst, header []byte, names []string, not bool) []byte {
	pos := 0
	keep := false // the current field is selected
	inField := false
	for pos < len(header) {
		e := lineEnd(header, pos)
		line := header[pos:e]
		if isBlankLine(line) {
			return append(dst, line...)
		}
		start := 0
		if isWSP(line[0]) {
			if inField {
				if keep {
					dst = append(dst, line...)
				}
				pos = e
				continue
			}
			// Leading WSP before any field: Parse reads the field after it.
			for start < len(line) && isWSP(line[start]) {
				start++
			}
		}
		if nameEnd, _, ok := fieldName(line[start:]); ok {
			inField = true
			keep = matchName(line[start:start+nameEnd], names) != not
		} else if !inField {
			keep = false // junk before the first field is skipped
		}
		if keep {
			dst = append(dst, line...)
		}
		pos = e
	}
	return dst
}

func matchName(name []byte, names []string) bool {
	for _, n := range names {
		if len(n) != len(name) {
			continue
		}
		i := 0
		for i < len(n) && lowerASCII(n[i]) == lowerASCII(name[i]) {
			i++
		}
		if i == len(n) {
			return true
		}
	}
	return false
}
