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
// (one 79-character upper-case word each), split as blindTokens does.
func BenchmarkWords(b *testing.B) {
	for _, c := range []struct{ name, text string }{
		{"prose", strings.Repeat("Dear Alice, the Q3 figures are attached; please review them before Friday's call. ", 120)},
		{"filler", strings.Repeat("1"+strings.Repeat("X", 78)+"\r\n", 128)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			n := 0
			for b.Loop() {
				words(c.text, maxWordLen, func(string) { n++ })
			}
		})
	}
}

// FuzzWordsMax checks words with a bound against Words as blindTokens
// uses them: the words of at most max bytes are the same, in order (words
// only skips ASCII words longer than max, before lower-casing them).
func FuzzWordsMax(f *testing.F) {
	f.Add("Hello, "+strings.Repeat("X", 70)+" Wörld "+strings.Repeat("é", 40), 8)
	f.Add(strings.Repeat("1"+strings.Repeat("X", 78)+"\r\n", 3), 64)
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = 1 + (max%100+100)%100
		var got, want []string
		words(s, max, func(w string) {
			if len(w) <= max {
				got = append(got, strings.Clone(w))
			}
		})
		Words(s, func(w string) {
			if len(w) <= max {
				want = append(want, strings.Clone(w))
			}
		})
		if !slices.Equal(got, want) {
			t.Fatalf("words(%q, %d) = %q, want %q", s, max, got, want)
		}
	})
}

func TestWordsSkipsLongASCII(t *testing.T) {
	var got []string
	words("short "+strings.Repeat("AbC", 30)+" "+strings.Repeat("é", 40)+" end", 64, func(w string) { got = append(got, strings.Clone(w)) })
	if want := []string{"short", strings.Repeat("é", 40), "end"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
