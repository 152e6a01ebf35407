package harvest

import (
	"errors"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		name    string
		delim   rune
		want    bool
	}{
		{"*", "INBOX", '/', true},
		{"*", "Archive/2024/Q1", '/', true},
		{"%", "Archive", '/', true},
		{"%", "Archive/2024", '/', false},
		{"%", "Archive.2024", '.', false},
		{"%", "Archive.2024", 0, true}, // no hierarchy: one level
		{"Archive/*", "Archive", '/', false},
		{"Archive/*", "Archive/2024", '/', true},
		{"Archive/*", "Archive/2024/Q1", '/', true},
		{"Archive/*", "Archive.2024.Q1", '.', true},
		{"Archive/%", "Archive.2024.Q1", '.', false},
		{"Archive/%", "Archive.2024", '.', true},
		{"Archive*", "Archived", '/', true},
		{"Archive*", "Archive/2024", '/', true},
		{"Archive%", "Archive/2024", '/', false},
		{"Archive/%/Q1", "Archive/2024/Q1", '/', true},
		{"Archive/%/Q1", "Archive/2024/x/Q1", '/', false},
		{"Archive/*/Q1", "Archive/2024/x/Q1", '/', true},
		{"inbox", "INBOX", '/', true},
		{"INBOX", "Inbox", '.', true},
		{"InBoX/Sub", "INBOX.Sub", '.', true},
		{"inbox*", "INBOX", '/', false}, // wildcards: no INBOX folding
		{"Inboxes", "INBOXES", '/', false},
		{"Sent", "sent", '/', false}, // case-sensitive elsewhere
		{"a\\/b", "a/b", '.', true},  // a "/" inside a level's name
		{"a/b", "a/b", '.', false},
		{"a\\/b", "a.b", '.', false},
		{"a/b", "a.b", '.', true},
		{"100\\%", "100%", '/', true},
		{"100\\%", "1000", '/', false},
		{"\\*", "*", '/', true},
		{"\\*", "x", '/', false},
		{"[Gmail]/*", "[Gmail]/All Mail", '/', true},
		{"Ünïcode/%", "Ünïcode/日本", '/', true},
		{"", "", '/', false},
	} {
		p, err := ParsePattern(tc.pattern)
		if tc.pattern == "" {
			if !errors.Is(err, ErrPattern) {
				t.Errorf("empty pattern: %v", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.pattern, err)
			continue
		}
		if got := p.Match(tc.name, tc.delim); got != tc.want {
			t.Errorf("%q matching %q (delimiter %q) = %v, want %v", tc.pattern, tc.name, tc.delim, got, tc.want)
		}
	}
}

func TestPatternErrors(t *testing.T) {
	for _, s := range []string{"", "a\\", "a\x01b", "\xff"} {
		if _, err := ParsePattern(s); !errors.Is(err, ErrPattern) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestSelector(t *testing.T) {
	sel, err := NewSelector(nil, []string{"Trash", "Junk", "Archive/Old/*"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{
		"INBOX": true, "Trash": false, "Junk": false, "Trash/x": true,
		"Archive/Old": true, "Archive/Old/2001": false, "Archive/New": true,
	} {
		if got := sel.Match(name, '/'); got != want {
			t.Errorf("%q: %v, want %v", name, got, want)
		}
	}
}

func TestCanonicalFolder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delim rune
		want  string
	}{
		{"INBOX", '/', "INBOX"},
		{"inbox.Sub", '.', "INBOX/Sub"},
		{"Archive.2024", '.', "Archive/2024"},
		{"Archive/2024", '/', "Archive/2024"},
		{"a/b.c", '.', "a%2Fb/c"},
		{"50%", '/', "50%25"},
		{"flat/name", 0, "flat%2Fname"},
	} {
		if got := canonicalFolder(tc.name, tc.delim); got != tc.want {
			t.Errorf("canonicalFolder(%q, %q) = %q, want %q", tc.name, tc.delim, got, tc.want)
		}
	}
}

func TestDeliveryKey(t *testing.T) {
	var sha [32]byte
	sha[0] = 0xab
	k := DeliveryKey("IMAP.Example.COM", "alice@example.com", "Archive.2024", '.', sha)
	want := "harvest:v1:imap.example.com:alice@example.com:Archive/2024:ab" + strings.Repeat("0", 62)
	if k != want {
		t.Fatalf("key %q, want %q", k, want)
	}
	// The server's delimiter does not change the key.
	if k2 := DeliveryKey("imap.example.com", "alice@example.com", "Archive/2024", '/', sha); k2 != k {
		t.Fatalf("%q != %q", k2, k)
	}
	// Separators inside parts cannot forge another key.
	a := DeliveryKey("h", "u:x", "f", '/', sha)
	b := DeliveryKey("h", "u", "x:f", '/', sha)
	if a == b {
		t.Fatalf("%q == %q", a, b)
	}
	if !strings.Contains(a, "u%3Ax") {
		t.Fatalf("%q", a)
	}
}

// naiveMatch is the obvious recursive glob, a reference for the fuzzer.
func naiveMatch(p, s []rune) bool {
	if len(p) == 0 {
		return len(s) == 0
	}
	switch p[0] {
	case tokStar:
		for i := 0; i <= len(s); i++ {
			if naiveMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	case tokPct:
		for i := 0; i <= len(s); i++ {
			if i > 0 && s[i-1] == tokSep {
				return false
			}
			if naiveMatch(p[1:], s[i:]) {
				return true
			}
		}
		return false
	}
	return len(s) > 0 && s[0] == p[0] && naiveMatch(p[1:], s[1:])
}
