package archive

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/message"
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

// analyze parses raw. It never fails: a message that does not parse is
// archived all the same, with its problems recorded.
func analyze(raw []byte, searchKey []byte) *analysis {
	root, problems := message.Parse(raw)
	an := &analysis{header: root.Header(raw), env: root.Envelope}
	for _, p := range problems {
		an.problems = append(an.problems, p.String())
	}
	st, err := root.MarshalBinary()
	if err != nil {
		an.problems = append(an.problems, "structure not stored: "+err.Error())
	}
	an.structure = st
	an.tokens = blindTokens(raw, root, searchKey)
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
func Words(text string, fn func(word string)) {
	var buf []byte
	for i := 0; i < len(text); {
		start, ascii, upper := i, true, byte(0)
		for i < len(text) {
			k := asciiWord[text[i]]
			if k&(asciiLower|asciiUpper) != 0 {
				upper |= k
				i++
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

func blindTokens(raw []byte, root *message.Part, key []byte) string {
	seen := make(map[string]bool)
	var b strings.Builder
	// One HMAC, reset per word: hmac.New per word cost more than the rest
	// of ingest's CPU.
	m := hmac.New(sha256.New, key)
	var sum [sha256.Size]byte
	var tok [16]byte
	add := func(w string) {
		if len(w) > 64 || seen[w] || len(seen) >= maxTokens {
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
		Words(chunk, add)
		return nil
	})
	return b.String()
}

func lowerAddr(a string) string { return strings.ToLower(strings.TrimSpace(a)) }
