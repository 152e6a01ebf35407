package harvest

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Folder patterns select the folders of a source. They are written with "/"
// between hierarchy levels whatever the server's own delimiter is ("." on
// Dovecot's Maildir++ and Cyrus, "/" on Gmail and Exchange), so one
// configuration reads the same against any server:
//
//   - '*' matches any run of characters, across levels ("Archive/*" is
//     every folder below Archive);
//   - '%' matches any run of characters within one level ("%" is every
//     top-level folder, "Archive/%" the children of Archive only);
//   - '\' makes the next character literal: "\*", "\%", "\\", and "\/" for
//     a "/" that is part of a level's name (possible where the server's
//     delimiter is not "/");
//   - every other character matches itself, case-sensitively, except that a
//     first level spelled INBOX in any case is the inbox (RFC 9051 §5.1).
//
// These are the LIST wildcards of RFC 9051 §6.3.9 applied to levels rather
// than to the server's delimiter, which is what "the hierarchy delimiter
// respected" means here: "%" never crosses a level, whether the server
// separates levels with "/" or ".".

// pattern tokens: runes are literal characters; these negative values are
// the wildcards and the level separator.
const (
	tokSep  rune = -1 // a level boundary
	tokStar rune = -2 // '*'
	tokPct  rune = -3 // '%'
)

// Pattern is one compiled folder pattern.
type Pattern struct {
	src  string
	toks []rune
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.src }

// ErrPattern is wrapped by the errors of ParsePattern.
var ErrPattern = errors.New("harvest: bad folder pattern")

// ParsePattern compiles a folder pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("%w: empty", ErrPattern)
	}
	if !utf8.ValidString(s) {
		return Pattern{}, fmt.Errorf("%w %q: not valid UTF-8", ErrPattern, s)
	}
	toks := make([]rune, 0, len(s))
	// Levels are collected so that a first level spelled INBOX can be
	// normalised; literal tracks whether the current level has wildcards.
	level, literal := 0, true
	levelStart := 0
	finishLevel := func() {
		if level == 0 && literal {
			normaliseInbox(toks[levelStart:])
		}
	}
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch r {
		case '\\':
			if i >= len(s) {
				return Pattern{}, fmt.Errorf("%w %q: ends with a lone '\\'", ErrPattern, s)
			}
			r, n = utf8.DecodeRuneInString(s[i:])
			i += n
			toks = append(toks, r)
		case '*':
			toks = append(toks, tokStar)
			literal = false
		case '%':
			toks = append(toks, tokPct)
			literal = false
		case '/':
			finishLevel()
			toks = append(toks, tokSep)
			level++
			literal = true
			levelStart = len(toks)
		default:
			if r < 0x20 || r == 0x7f {
				return Pattern{}, fmt.Errorf("%w %q: control character", ErrPattern, s)
			}
			toks = append(toks, r)
		}
	}
	finishLevel()
	return Pattern{src: s, toks: toks}, nil
}

// normaliseInbox upper-cases a level that spells INBOX in any case.
func normaliseInbox(level []rune) {
	if len(level) != 5 {
		return
	}
	for i, c := range "INBOX" {
		r := level[i]
		if r != c && r != c+('a'-'A') {
			return
		}
	}
	copy(level, []rune("INBOX"))
}

// folderTokens turns a server's folder name into tokens: each occurrence of
// the delimiter is a level boundary, everything else a literal character.
// delim 0 means the server has no hierarchy (RFC 9051 §6.3.9: NIL).
func folderTokens(name string, delim rune) []rune {
	toks := make([]rune, 0, len(name))
	levelStart := 0
	for _, r := range name {
		if delim != 0 && r == delim {
			if levelStart == 0 {
				normaliseInbox(toks)
			}
			toks = append(toks, tokSep)
			levelStart = len(toks)
			continue
		}
		toks = append(toks, r)
	}
	if levelStart == 0 {
		normaliseInbox(toks)
	}
	return toks
}

// Match reports whether the folder named name, on a server whose hierarchy
// delimiter is delim (0 for none), matches p.
func (p Pattern) Match(name string, delim rune) bool {
	return matchTokens(p.toks, folderTokens(name, delim))
}

// matchTokens is a glob match in O(len(p)·len(s)) time and O(len(s))
// space, so no pattern can make it backtrack exponentially.
func matchTokens(p, s []rune) bool {
	// cur[j] reports whether p[:i] matches s[:j].
	cur := make([]bool, len(s)+1)
	next := make([]bool, len(s)+1)
	cur[0] = true
	for i := 0; i < len(p); i++ {
		for j := range next {
			next[j] = false
		}
		switch p[i] {
		case tokStar:
			// Any run: next[j] if cur[k] for some k <= j.
			any := false
			for j := 0; j <= len(s); j++ {
				any = any || cur[j]
				next[j] = any
			}
		case tokPct:
			// A run without level boundaries.
			any := false
			for j := 0; j <= len(s); j++ {
				if j > 0 && s[j-1] == tokSep {
					any = false
				}
				any = any || cur[j]
				next[j] = any
			}
		default:
			for j := 1; j <= len(s); j++ {
				next[j] = cur[j-1] && s[j-1] == p[i]
			}
		}
		cur, next = next, cur
	}
	return cur[len(s)]
}

// Selector decides which folders of a source are harvested: those matching
// an include pattern and no exclude pattern.
type Selector struct {
	include, exclude []Pattern
}

// NewSelector compiles include and exclude patterns. No include pattern
// means every folder ("*").
func NewSelector(include, exclude []string) (*Selector, error) {
	if len(include) == 0 {
		include = []string{"*"}
	}
	sel := &Selector{}
	for _, s := range include {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		sel.include = append(sel.include, p)
	}
	for _, s := range exclude {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		sel.exclude = append(sel.exclude, p)
	}
	return sel, nil
}

// Match reports whether the folder is harvested.
func (s *Selector) Match(name string, delim rune) bool {
	toks := folderTokens(name, delim)
	in := false
	for _, p := range s.include {
		if matchTokens(p.toks, toks) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, p := range s.exclude {
		if matchTokens(p.toks, toks) {
			return false
		}
	}
	return true
}

// canonicalFolder writes a folder name with "/" between levels whatever the
// server's delimiter, escaping '%' and a literal '/' inside a level as %25
// and %2F, and INBOX in upper case. It is injective for a given delimiter,
// and the same folder has the same canonical name when only the server's
// delimiter changes (Dovecot's namespace separator setting).
func canonicalFolder(name string, delim rune) string {
	var b strings.Builder
	for _, r := range folderTokens(name, delim) {
		switch r {
		case tokSep:
			b.WriteByte('/')
		case '/':
			b.WriteString("%2F")
		case '%':
			b.WriteString("%25")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
