package message

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
)

// lookupCharset returns the decoder for a MIME charset name, or nil when
// the text should be read as UTF-8 with a Windows-1252 fallback for bytes
// that are not UTF-8 (see fallback). That is the case for UTF-8 itself, for
// US-ASCII (whose 8-bit bytes in real mail are nearly always UTF-8 or
// Latin-1), for no charset and for charsets we do not know.
//
// Names are looked up in the WHATWG index first, which knows the labels
// mail actually uses (ks_c_5601-1987, gb2312, cp1252), then in the IANA
// registry (RFC 2978).
func lookupCharset(name string) encoding.Encoding {
	name = strings.TrimSpace(name)
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = name[1 : len(name)-1]
	}
	switch lowerString(name) {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "us", "ansi_x3.4-1968", "iso-646-us", "7bit", "8bit", "unknown", "x-unknown", "default":
		return nil
	}
	if e, err := htmlindex.Get(name); err == nil && e != nil {
		if e == encoding.Replacement {
			return nil
		}
		return e
	}
	if e, err := ianaindex.MIME.Encoding(name); err == nil && e != nil {
		return e
	}
	return nil
}

// decodeCharset converts b from charset to UTF-8. It never fails: unknown
// charsets and invalid bytes fall back as lookupCharset describes.
func decodeCharset(charset string, b []byte) string {
	if e := lookupCharset(charset); e != nil {
		if out, err := e.NewDecoder().Bytes(b); err == nil {
			return string(out)
		}
	}
	return string(appendFallback(nil, b))
}

// cp1252 maps bytes 0x80-0x9f of Windows-1252 to runes; 0xa0-0xff are the
// Latin-1 code points. Undefined positions map to U+FFFD.
var cp1252 = [32]rune{
	'€', '\ufffd', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\ufffd', 'Ž', '\ufffd',
	'\ufffd', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\ufffd', 'ž', 'Ÿ',
}

func latin1Rune(c byte) rune {
	if c >= 0x80 && c < 0xa0 {
		return cp1252[c-0x80]
	}
	return rune(c)
}

// appendFallback appends b to dst as UTF-8: valid UTF-8 sequences are kept,
// every other byte is read as Windows-1252.
func appendFallback(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			dst = utf8.AppendRune(dst, latin1Rune(c))
			i++
			continue
		}
		dst = append(dst, b[i:i+n]...)
		i += n
	}
	return dst
}

// validUTF8String returns s, repaired with appendFallback when it is not
// valid UTF-8.
func validUTF8String(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendFallback(nil, []byte(s)))
}
