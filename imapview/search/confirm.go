package search

import (
	"context"
	"io"
	"strings"
	"unicode"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/message"
)

// MaxConfirmSize: messages larger than this are not decrypted to confirm a
// phrase; the word match stands.
const MaxConfirmSize = 16 << 20

// normalize lower-cases s and collapses runs of white space to one space,
// so that a phrase matches across line breaks and folding.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// Confirm reports whether the message raw, parsed as root, contains every
// phrase: BODY phrases in its decoded text (message.Text: subjects, file
// names, text parts), TEXT phrases there or in its decoded header.
func Confirm(raw []byte, root *message.Part, phrases []Phrase) bool {
	if len(phrases) == 0 {
		return true
	}
	var text strings.Builder
	message.Text(raw, root, func(chunk string) error {
		text.WriteString(chunk)
		text.WriteByte('\n')
		return nil
	})
	body := normalize(text.String())
	var header string
	for _, p := range phrases {
		want := normalize(p.Value)
		if strings.Contains(body, want) {
			continue
		}
		if p.Text {
			if header == "" {
				header = normalize(message.DecodeHeader(string(root.Header(raw))))
			}
			if strings.Contains(header, want) {
				continue
			}
		}
		return false
	}
	return true
}

// ConfirmStored opens message seq of st and reports whether it contains
// the phrases (Confirm). A message too large to check (MaxConfirmSize),
// or that cannot be read, keeps its word match: true.
func ConfirmStored(ctx context.Context, st *archive.Store, seq uint64, phrases []Phrase) bool {
	m, err := st.OpenMessage(ctx, seq)
	if err != nil {
		return true
	}
	defer m.Close()
	if m.Row.Size > MaxConfirmSize {
		return true
	}
	raw := make([]byte, m.Row.Size)
	if _, err := m.ReadAt(raw, 0); err != nil && err != io.EOF {
		return true
	}
	root, err := message.Unmarshal(m.Row.Structure)
	if err != nil {
		root, _ = message.Parse(raw)
	}
	return Confirm(raw, root, phrases)
}
