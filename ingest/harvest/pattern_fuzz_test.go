package harvest

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPattern checks the linear-time matcher against the naive recursive
// one, that a pattern made by quoting a name matches exactly that name, and
// that canonical names are distinct for distinct names.
func FuzzPattern(f *testing.F) {
	for _, s := range [][3]string{
		{"*", "INBOX", "/"}, {"Archive/%", "Archive.2024", "."}, {"a\\/b", "a/b", "."},
		{"%/%/*x", "a/b/c/dx", "/"}, {"inbox/*", "INBOX/x", "/"}, {"**%%", "a/b", "/"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, name, delimS string) {
		if len(pattern) > 64 || len(name) > 64 {
			return
		}
		delim, _ := utf8.DecodeRuneInString(delimS)
		if delim == utf8.RuneError {
			delim = 0
		}
		p, err := ParsePattern(pattern)
		if err == nil {
			toks := folderTokens(name, delim)
			got := matchTokens(p.toks, toks)
			if want := naiveMatch(p.toks, toks); got != want {
				t.Fatalf("%q on %q (%q): fast %v, naive %v", pattern, name, delim, got, want)
			}
		}
		if !utf8.ValidString(name) || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return
		}
		// Quote name into a pattern: "/" stands for the delimiter, every
		// special character escaped.
		var b strings.Builder
		for _, r := range name {
			switch {
			case delim != 0 && r == delim:
				b.WriteByte('/')
			case r == '*' || r == '%' || r == '\\' || r == '/':
				b.WriteByte('\\')
				b.WriteRune(r)
			default:
				b.WriteRune(r)
			}
		}
		q, err := ParsePattern(b.String())
		if err != nil {
			t.Fatalf("quoted %q: %v", b.String(), err)
		}
		if !q.Match(name, delim) {
			t.Fatalf("quoted pattern %q does not match %q (%q)", b.String(), name, delim)
		}
		if strings.EqualFold(name, "INBOX") {
			return
		}
		other := name + "x"
		if q.Match(other, delim) {
			t.Fatalf("quoted pattern %q matches %q too", b.String(), other)
		}
		if canonicalFolder(name, delim) == canonicalFolder(other, delim) {
			t.Fatalf("canonical names collide: %q %q", name, other)
		}
	})
}
