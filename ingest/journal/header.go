package journal

import (
	"bytes"
	"strings"
)

// field is one header field, unfolded, with the name as written.
type field struct {
	name  string
	value string
}

// splitHeader finds the end of the header section of an RFC 5322 message or
// MIME entity. It accepts CRLF and bare LF line endings, since messages that
// passed through Unix mail stores use LF. body is the offset of the first
// byte after the empty line; when there is no empty line the whole input is
// header and body == len(b).
func splitHeader(b []byte) (header []byte, body int) {
	// An entity may start with the empty line (no header fields).
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return b[:0], 2
	}
	if bytes.HasPrefix(b, []byte("\n")) {
		return b[:0], 1
	}
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, len(b)
		}
		next := i + j + 1
		switch {
		case bytes.HasPrefix(b[next:], []byte("\r\n")):
			return b[:next], next + 2
		case bytes.HasPrefix(b[next:], []byte("\n")):
			return b[:next], next + 1
		}
		i = next
	}
}

// parseFields returns the fields of a header section, unfolded (RFC 5322
// §2.2.3). Lines that are neither a field nor a continuation are skipped:
// classification must not fail on a sloppy header.
func parseFields(header []byte) []field {
	var out []field
	for len(header) > 0 {
		line := header
		if i := bytes.IndexByte(header, '\n'); i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			header = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if n := len(out); n > 0 {
				out[n-1].value += " " + strings.TrimSpace(string(line))
			}
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue
		}
		out = append(out, field{
			name:  string(bytes.TrimSpace(line[:colon])),
			value: strings.TrimSpace(string(line[colon+1:])),
		})
	}
	return out
}

// get returns the first value of the named field and whether it is present.
func get(fields []field, name string) (string, bool) {
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			return f.value, true
		}
	}
	return "", false
}

// all returns every value of the named field, in order.
func all(fields []field, name string) []string {
	var out []string
	for _, f := range fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}
