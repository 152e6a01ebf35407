package message

import (
	"strings"
	"unicode/utf8"
)

// DecodeHeader decodes the RFC 2047 encoded words in a header value (an
// unstructured field such as Subject, or a display name) to UTF-8. It never
// fails: a malformed encoded word stays as it is, an unknown charset falls
// back to UTF-8/Windows-1252, and other bytes that are not UTF-8 are read
// as Windows-1252.
//
// Leniency beyond RFC 2047: adjacent encoded words in the same charset are
// decoded together, so a multi-byte character split across two words
// survives; encoded words inside quoted strings and glued to other text are
// decoded too; white space between adjacent encoded words is dropped
// (RFC 2047 §6.2).
func DecodeHeader(s string) string {
	if !strings.Contains(s, "=?") {
		return validUTF8String(s)
	}
	var (
		out      []byte
		pend     []byte // decoded bytes of the current run of words
		pendCS   string // their charset
		havePend bool
		lastWord bool // only white space since the last encoded word
	)
	flush := func() {
		if havePend {
			out = append(out, decodeCharset(pendCS, pend)...)
			pend = pend[:0]
			havePend = false
		}
	}
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "=?")
		if j < 0 {
			break
		}
		j += i
		cs, enc, text, end, ok := parseEncodedWord(s, j)
		if !ok {
			flush()
			out = appendFallback(out, []byte(s[i:j+2]))
			i = j + 2
			lastWord = false
			continue
		}
		if gap := s[i:j]; !(lastWord && isAllWSP(gap)) {
			flush()
			out = appendFallback(out, []byte(gap))
		}
		if havePend && !strings.EqualFold(cs, pendCS) {
			flush()
		}
		if enc == 'b' {
			pend = appendBase64(pend, text)
		} else {
			pend = appendQ(pend, text)
		}
		pendCS = cs
		havePend = true
		lastWord = true
		i = end
	}
	flush()
	out = appendFallback(out, []byte(s[i:]))
	return string(out)
}

func isAllWSP(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isWSP(s[i]) && s[i] != '\r' && s[i] != '\n' {
			return false
		}
	}
	return true
}

// maxEncodedText bounds the encoded text of one encoded word.
const maxEncodedText = 4096

// parseEncodedWord parses "=?charset?encoding?text?=" at s[j:] (RFC 2047
// §2). enc is 'b' or 'q'. A language suffix "charset*lang" (RFC 2231 §5) is
// dropped.
func parseEncodedWord(s string, j int) (cs string, enc byte, text string, end int, ok bool) {
	p := j + 2
	q := strings.IndexByte(s[p:min(p+65, len(s))], '?')
	if q <= 0 {
		return
	}
	cs = s[p : p+q]
	for k := 0; k < len(cs); k++ {
		if !isTokenChar(cs[k]) && cs[k] != '*' {
			return
		}
	}
	if star := strings.IndexByte(cs, '*'); star >= 0 {
		cs = cs[:star]
	}
	p += q + 1
	if p+2 > len(s) || s[p+1] != '?' {
		return
	}
	switch s[p] {
	case 'b', 'B':
		enc = 'b'
	case 'q', 'Q':
		enc = 'q'
	default:
		return
	}
	p += 2
	// RFC 2047 §2 limits a word to 75 characters; real mail exceeds that,
	// but a bound keeps a search for "?=" from rescanning the whole value
	// for every "=?" in it.
	e := strings.Index(s[p:min(p+maxEncodedText, len(s))], "?=")
	if e < 0 {
		return
	}
	text = s[p : p+e]
	if strings.ContainsAny(text, "\r\n") {
		return
	}
	return cs, enc, text, p + e + 2, true
}

// appendQ decodes the "Q" encoding (RFC 2047 §4.2).
func appendQ(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_':
			dst = append(dst, ' ')
		case c == '=' && i+2 < len(s):
			if h, ok := unhex(s[i+1]); ok {
				if l, ok := unhex(s[i+2]); ok {
					dst = append(dst, h<<4|l)
					i += 2
					continue
				}
			}
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendBase64 decodes base64 leniently (RFC 2045 §6.8): characters outside
// the alphabet are ignored, "=" ends a quantum, a trailing partial quantum
// yields the bytes it completes.
func appendBase64(dst []byte, s string) []byte {
	var acc uint32
	n := 0
	for i := 0; i < len(s); i++ {
		v := b64[s[i]]
		if v == 0xff {
			if s[i] == '=' {
				dst = flushQuantum(dst, acc, n)
				acc, n = 0, 0
			}
			continue
		}
		acc = acc<<6 | uint32(v)
		n++
		if n == 4 {
			dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
			acc, n = 0, 0
		}
	}
	return flushQuantum(dst, acc, n)
}

// flushQuantum appends the whole bytes held by n (< 4) sextets in acc.
func flushQuantum(dst []byte, acc uint32, n int) []byte {
	switch n {
	case 2:
		dst = append(dst, byte(acc>>4))
	case 3:
		dst = append(dst, byte(acc>>10), byte(acc>>2))
	}
	return dst
}

var b64 = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	return t
}()

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
