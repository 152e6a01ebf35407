package archive

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"unicode"

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

// BlindToken is the keyed hash a word is indexed under: the first 10 bytes
// of HMAC-SHA256(search key, lower-cased word), base32. The index holds
// these, never the words (invariant 4).
func BlindToken(key []byte, word string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(word))
	return tokenEncoding.EncodeToString(m.Sum(nil)[:10])
}

// Words splits text into the lower-cased words the full-text index knows:
// runs of letters and digits.
func Words(text string, fn func(word string)) {
	start := -1
	for i, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			fn(strings.ToLower(text[start:i]))
			start = -1
		}
	}
	if start >= 0 {
		fn(strings.ToLower(text[start:]))
	}
}

func blindTokens(raw []byte, root *message.Part, key []byte) string {
	seen := make(map[string]bool)
	var b strings.Builder
	add := func(w string) {
		if len(w) > 64 || seen[w] || len(seen) >= maxTokens {
			return
		}
		seen[w] = true
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(BlindToken(key, w))
	}
	message.Text(raw, root, func(chunk string) error {
		Words(chunk, add)
		return nil
	})
	return b.String()
}

func lowerAddr(a string) string { return strings.ToLower(strings.TrimSpace(a)) }
