package archive

import (
	"slices"
	"strings"
	"testing"
	"unicode"
)

func TestWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello, World! 42", []string{"hello", "world", "42"}},
		{"Grüße aus Köln", []string{"grüße", "aus", "köln"}},
		{"ÉCOLE école", []string{"école", "école"}},
		{"a-b_c", []string{"a", "b", "c"}},
		{"日本語 text", []string{"日本語", "text"}},
		{"", nil},
		{"   ", nil},
	} {
		var got []string
		Words(c.in, func(w string) { got = append(got, strings.Clone(w)) })
		if !slices.Equal(got, c.want) {
			t.Errorf("Words(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzWords checks the fast path against the plain definition: runs of
// letters and digits, lower-cased.
func FuzzWords(f *testing.F) {
	f.Add("Hello, Wörld 42 ÉCOLE")
	f.Fuzz(func(t *testing.T, s string) {
		var got []string
		Words(s, func(w string) { got = append(got, strings.Clone(w)) })
		want := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		for i := range want {
			want[i] = strings.ToLower(want[i])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Words(%q) = %q, want %q", s, got, want)
		}
	})
}

// BenchmarkWords: prose of mixed case, and smtp-source's filler lines
// (one 79-character upper-case word each).
func BenchmarkWords(b *testing.B) {
	for _, c := range []struct{ name, text string }{
		{"prose", strings.Repeat("Dear Alice, the Q3 figures are attached; please review them before Friday's call. ", 120)},
		{"filler", strings.Repeat("1"+strings.Repeat("X", 78)+"\r\n", 128)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			n := 0
			for b.Loop() {
				Words(c.text, func(string) { n++ })
			}
		})
	}
}
