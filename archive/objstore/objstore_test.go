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
