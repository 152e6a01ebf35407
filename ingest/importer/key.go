package importer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The DeliveryKey formats below are frozen. A key depends only on where a
// message sits, so the same import run again (after a crash, a kill -9 or a
// cancel) produces the same keys and the archive answers each known one with
// Receipt.Replayed. Changing a format would make every earlier import look
// new (the bytes would still be deduplicated, as Receipt.Duplicate, but each
// message would get a second delivery entry).
//
// Paths are absolute with symbolic links of the named roots resolved, so
// `cairn import ./x` and `cairn import /home/u/x` agree. They are escaped by
// escapeKey so that a key is valid UTF-8 (it is stored as text) and different
// paths never share a key.

// mboxKey is the key of the message whose From_ line starts at offset in the
// mbox at path (the decompressed stream for .gz).
func mboxKey(path string, offset int64) string {
	return "import:mbox:" + escapeKey(path) + ":" + strconv.FormatInt(offset, 10)
}

// maildirKey is the key of the message with the given unique name in the
// Maildir folder directory dir (the one holding cur/ and new/). A flag change
// or a move from new/ to cur/ renames the file but keeps the key.
func maildirKey(dir, unique string) string {
	return "import:maildir:" + escapeKey(dir) + ":" + escapeKey(unique)
}

// emlKey is the key of the single message in the file at path.
func emlKey(path string) string {
	return "import:eml:" + escapeKey(path)
}

// escapeKey percent-escapes '%', ASCII control characters and bytes that are
// not valid UTF-8, and keeps everything else. It is injective and the
// identity on ordinary paths.
func escapeKey(s string) string {
	clean := true
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r < 0x20 || r == 0x7f || r == '%' {
			clean = false
			break
		}
		i += n
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r < 0x20 || r == 0x7f || r == '%' {
			c := s[i]
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
