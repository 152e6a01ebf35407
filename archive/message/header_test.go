package message

import (
	"bytes"
	"testing"
)

func TestHeaderFields(t *testing.T) {
	header := "Received: from a\r\n\tby b\r\nSubject: Hello\r\n world\r\nFROM: a@b\r\nX-Junk : spaced\r\nTo: c@d\r\n\r\n"
	tests := []struct {
		names []string
		not   bool
		want  string
	}{
		{[]string{"subject"}, false, "Subject: Hello\r\n world\r\n\r\n"},
		{[]string{"From", "TO"}, false, "FROM: a@b\r\nTo: c@d\r\n\r\n"},
		{[]string{"x-junk"}, false, "X-Junk : spaced\r\n\r\n"},
		{[]string{"received", "subject", "from", "x-junk"}, true, "To: c@d\r\n\r\n"},
		{[]string{"nothing"}, false, "\r\n"},
		{nil, true, header},
		{[]string{"Subjec"}, false, "\r\n"},
	}
	for _, tt := range tests {
		if got := string(HeaderFields(nil, []byte(header), tt.names, tt.not)); got != tt.want {
			t.Errorf("HeaderFields(%q, not=%v) = %q, want %q", tt.names, tt.not, got, tt.want)
		}
	}
}

func TestHeaderFieldsMalformed(t *testing.T) {
	tests := []struct {
		name, header string
		names        []string
		want         string
	}{
		// RFC 9051 §6.4.5: no blank line when the header has none.
		{"no blank line", "Subject: x\nTo: y", []string{"to"}, "To: y"},
		{"LF only", "Subject: x\n folded\nTo: y\n\n", []string{"subject"}, "Subject: x\n folded\n\n"},
		// A line without colon after a field belongs to that field, as in Parse.
		{"wrong fold", "Content-Type: a/b;\nname=x\nTo: y\n\n", []string{"content-type"}, "Content-Type: a/b;\nname=x\n\n"},
		{"leading space", " From: a@b\nTo: y\n\n", []string{"from"}, " From: a@b\n\n"},
		{"mbox line skipped", "From a@b Mon Jan 1 00:00:00 2024\nFrom: a@b\n\n", []string{"from"}, "From: a@b\n\n"},
		{"empty", "", []string{"from"}, ""},
	}
	for _, tt := range tests {
		if got := string(HeaderFields(nil, []byte(tt.header), tt.names, false)); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestHeaderFieldsPartition checks on the corpus that FIELDS and
// FIELDS.NOT of the same names split the header between them.
func TestHeaderFieldsPartition(t *testing.T) {
	names := []string{"subject", "from", "content-type", "date"}
	for name, raw := range corpus(t) {
		p, _ := Parse(raw)
		p.Walk(func(q *Part) bool {
			h := q.Header(raw)
			in := HeaderFields(nil, h, names, false)
			out := HeaderFields(nil, h, names, true)
			blank := 0 // the blank line ending h, which both selections carry
			if n := len(h); n > 0 && h[n-1] == '\n' {
				start := bytes.LastIndexByte(h[:n-1], '\n') + 1
				if isBlankLine(h[start:]) {
					blank = n - start
				}
			}
			if len(in)+len(out)-blank > len(h) {
				t.Errorf("%s: %d + %d - %d > %d", name, len(in), len(out), blank, len(h))
			}
			return true
		})
	}
}
