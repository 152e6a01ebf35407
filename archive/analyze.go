package archive

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/message"
	"github.com/cairn-archive/cairn/crypto"
)

// analysis is what the index keeps of a message, computed once at ingest.
type analysis struct {
	header    []byte
	structure []byte
	problems  []string
	env       *message.Envelope
	tokens    string
}

// tokenBytes is how much of the HMAC a blind token keeps: 64 bits, so two
// words of a realistic vocabulary almost never share a token, and a
// collision only adds a candidate to a search.
const tokenBytes = 8

// maxTokens bounds the distinct search tokens kept per message.
const maxTokens = 20000

// maxWordLen is the longest word (in bytes, lower-cased) that gets a
// search token: longer runs are encoded data, not words.
const maxWordLen = 64

// analyze parses raw. It never fails: a message that does not parse is
// archived all the same, with its problems recorded.
func analyze(raw []byte, tokenMACs *crypto.MACPool) *analysis {
	root, problems := message.Parse(raw)
	// The header is a copy: the index row that holds it may be written
	// after Archive returned (ingest.AckWhenDurable), and Archive keeps
	// nothing of raw (the SMTP receiver reuses its buffers).
	an := &analysis{header: bytes.Clone(root.Header(raw)), env: root.Envelope}
	for _, p := range problems {
		an.problems = append(an.problems, p.String())
	}
	st, err := root.MarshalBinary()
	if err != nil {
		an.problems = append(an.problems, "structure not stored: "+err.Error())
	}
	an.structure = st
	an.tokens = blindTokens(raw, root, tokenMACs)
	return an
}

func (an *analysis) fill(m *index.MessageRow) {
	m.Header = an.header
	m.Structure = an.structure
	m.Problems = an.problems
	if e := an.env; e != nil {
		m.From = addrList(e.From)
		m.To = addrList(e.To)
		m.Cc = addrList(e.Cc)
		m.Subject = message.DecodeHeader(e.Subject)
		m.MessageID = strings.TrimSpace(e.MessageID)
		if t, ok := message.ParseDate(e.Date); ok {
			m.Date = t.UTC()
		}
	}
}

func addrList(as []message.Address) string {
	var b strings.Builder
	for _, a := range as {
		s := a.Addr()
		if s == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// BlindToken is the keyed hash a word is indexed under: the first 8 bytes
// of HMAC-SHA256(search key, lower-cased word), base32 (13 letters). The index holds
// these, never the words (invariant 4).
func BlindToken(key []byte, word string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(word))
	return tokenEncoding.EncodeToString(m.Sum(nil)[:tokenBytes])
}

// Words splits text into the lower-cased words the full-text index knows:
// runs of letters and digits. Runs of ASCII, the common case, are passed
// as they are when already lower-case and lower-cased in a reused buffer
// otherwise, without allocating; fn must copy the word to keep it.
func Words(text string, fn func(word string)) { words(text, 0, fn) }

// words is Words, except that when max > 0 it skips the ASCII words longer
// than max bytes without lower-casing them (lower-casing keeps an ASCII
// word's length; other words are passed as Words passes them).
func words(text string, max int, fn func(word string)) {
	var buf []byte
	for i := 0; i < len(text); {
		start, ascii, upper := i, true, byte(0)
		for i < len(text) {
			k := asciiWord[text[i]]
			if k&(asciiLower|asciiUpper) != 0 {
				upper |= k
				i++
				if i-start == 8 {
					// A long run: skip its ASCII letters and digits 8
					// bytes at a time (smtp-source's filler lines are one
					// 79-letter word; so are URLs and long identifiers).
					var up bool
					i, up = asciiRun(text, i)
					if up {
						upper |= asciiUpper
					}
				}
				continue
			}
			if k == 0 {
				break
			}
			r, size := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				break
			}
			ascii = false
			i += size
		}
		if i == start {
			// A separator: one byte, or one (possibly invalid) character.
			if text[i] < utf8.RuneSelf {
				i++
			} else {
				_, size := utf8.DecodeRuneInString(text[i:])
				i += size
			}
			continue
		}
		w := text[start:i]
		switch {
		case !ascii:
			fn(strings.ToLower(w))
		case max > 0 && len(w) > max:
		case upper&asciiUpper == 0:
			fn(w)
		default:
			buf = append(buf[:0], w...)
			for j, c := range buf {
				buf[j] = c | (asciiWord[c]&asciiUpper)<<4 // 'A' | 0x20 == 'a'
			}
			fn(unsafeString(buf))
		}
	}
}

// asciiRun returns the end of the 8-byte blocks from i on that hold only
// ASCII letters and digits (the first block that does not is left to the
// caller, byte by byte), and whether they held an upper-case letter.
func asciiRun(text string, i int) (int, bool) {
	const (
		ones = 0x0101010101010101
		high = 0x8080808080808080
	)
	// in has the high bit of each byte of x (each below 0x80) that lies
	// in [lo, hi]: x+(0x80-lo) sets it when the byte is ≥ lo, x+(0x7f-hi)
	// when it is > hi, and neither sum carries into the next byte.
	in := func(x uint64, lo, hi byte) uint64 {
		return (x + ones*uint64(0x80-lo)) &^ (x + ones*uint64(0x7f-hi)) & high
	}
	var upper uint64
	for ; i+8 <= len(text); i += 8 {
		x := uint64(text[i]) | uint64(text[i+1])<<8 | uint64(text[i+2])<<16 | uint64(text[i+3])<<24 |
			uint64(text[i+4])<<32 | uint64(text[i+5])<<40 | uint64(text[i+6])<<48 | uint64(text[i+7])<<56
		if x&high != 0 {
			break // a byte of a multi-byte character
		}
		// Setting bit 5 folds A-Z onto a-z and nothing else onto them.
		if in(x|ones*0x20, 'a', 'z')|in(x, '0', '9') != high {
			break
		}
		upper |= in(x, 'A', 'Z')
	}
	return i, upper != 0
}

// asciiWord classifies bytes for Words: 0 separates words, asciiLower
// marks lower-case letters and digits, asciiUpper upper-case letters, and
// nonASCII the bytes of multi-byte characters, which Words decodes.
var asciiWord = func() (t [256]byte) {
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = nonASCII
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = asciiLower
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = asciiLower
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = asciiUpper
	}
	return t
}()

const (
	asciiLower = 1
	asciiUpper = 2
	nonASCII   = 4
)

// unsafeString views b as a string without copying; the caller's fn must
// not keep it (Words documents that).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func blindTokens(raw []byte, root *message.Part, macs *crypto.MACPool) string {
	seen := make(map[string]bool)
	var b strings.Builder
	// One HMAC, reset per word: hmac.New per word cost more than the rest
	// of ingest's CPU.
	m := macs.Get()
	defer macs.Put(m)
	var sum [sha256.Size]byte
	var tok [16]byte
	add := func(w string) {
		if len(w) > maxWordLen || seen[w] || len(seen) >= maxTokens {
			return
		}
		seen[strings.Clone(w)] = true
		m.Reset()
		m.Write([]byte(w))
		m.Sum(sum[:0])
		tokenEncoding.Encode(tok[:], sum[:tokenBytes])
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.Write(tok[:tokenEncoding.EncodedLen(tokenBytes)])
	}
	message.Text(raw, root, func(chunk string) error {
		words(chunk, maxWordLen, add)
		return nil
	})
	return b.String()
}

func lowerAddr(a string) string { return strings.ToLower(strings.TrimSpace(a)) }
