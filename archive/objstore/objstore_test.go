package objstore

import (
	"errors"
	"strings"
	"testing"
)

func TestValidKey(t *testing.T) {
	seg255 := strings.Repeat("a", 255)
	cases := []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"messages/ab/cd/0123456789abcdef", true},
		{"a-b_c.d/e", true},
		{"a..b", true}, // dots inside a segment are fine
		{"a.", true},
		{"0/1/2", true},
		{seg255, true},
		{seg255 + "/" + seg255, true},
		{strings.Repeat("a/", 255) + "bb", true}, // 512 bytes
		{"", false},
		{"/", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{".a", false},
		{".", false},
		{"..", false},
		{"a/../b", false},
		{"a/./b", false},
		{".tmp/x", false},
		{"A", false},
		{"a/Ab", false},
		{"a b", false},
		{"a\tb", false},
		{"a\x00b", false},
		{"a\\b", false},
		{"a:b", false},
		{"a+b", false},
		{"é", false},
		{"a\u2215b", false}, // division slash
		{seg255 + "a", false},
		{strings.Repeat("a/", 255) + "bbb", false}, // 513 bytes
	}
	for _, c := range cases {
		err := ValidKey(c.key)
		if (err == nil) != c.ok {
			t.Errorf("ValidKey(%q) = %v, want ok=%v", c.key, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidKey(%q) = %v, not ErrInvalidKey", c.key, err)
		}
	}
}

func TestValidPrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "messages/a", "messages/ab/", "a-", "a."} {
		if err := ValidPrefix(p); err != nil {
			t.Errorf("ValidPrefix(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"/", "//", "a//", ".", "a/.", ".tmp/", "A", "a b", "a/../"} {
		if err := ValidPrefix(p); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidPrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}

// validKeyRef is ValidKey's rule stated segment by segment.
func validKeyRef(key string) bool {
	if key == "" || len(key) > 512 {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg[0] == '.' || len(seg) > 255 {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

func FuzzValidKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "a//b", "/a", "a/", ".a", "a/.b", "A", strings.Repeat("a", 256), strings.Repeat("a/", 256), "messages/ab/cd/ef"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidKey(key)
		if (err == nil) != validKeyRef(key) {
			t.Fatalf("ValidKey(%q) = %v, the rule says ok=%v", key, err, validKeyRef(key))
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("ValidKey(%q) = %v, not ErrInvalidKey", key, err)
		}
	})
}

func BenchmarkValidKey(b *testing.B) {
	for b.Loop() {
		if ValidKey("messages/ab/cd/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") != nil {
			b.Fatal("invalid")
		}
	}
}
