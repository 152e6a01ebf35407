package manifest

import (
	"strconv"
	"strings"
)

// CSVHeader is the first row of manifest.csv.
var CSVHeader = []string{"seq", "file", "mbox_offset", "mbox_length", "sha256", "size", "date", "from", "subject", "message_id", "custodians", "entries", "salt"}

// manifest.csv is RFC 4180 (CRLF line endings) after a UTF-8 byte order
// mark, which spreadsheets need to read UTF-8: CSVBOM, then CSVHeader, then
// one CSVRecord per message.

// CSVBOM starts manifest.csv.
const CSVBOM = "\ufeff"

// CSVRecord is message m's row of manifest.csv: the manifest's fields, the
// custodians joined by ";", the entries' seqs joined by " ". In text cells
// line breaks become spaces, and a cell that a spreadsheet would run as a
// formula (it starts with =, +, -, @, a tab or a carriage return) gets a
// leading apostrophe (OWASP, CSV injection).
func CSVRecord(m *Message) []string {
	var off, length string
	if m.Mbox != nil {
		off, length = strconv.FormatInt(m.Mbox.Offset, 10), strconv.FormatInt(m.Mbox.Length, 10)
	}
	seqs := make([]string, len(m.Entries))
	for i, e := range m.Entries {
		seqs[i] = strconv.FormatUint(e.Seq, 10)
	}
	return []string{
		strconv.FormatUint(m.Seq, 10),
		cell(m.File),
		off, length,
		cell(m.SHA256),
		strconv.FormatInt(m.Size, 10),
		cell(m.Date),
		cell(m.From),
		cell(m.Subject),
		cell(m.MessageID),
		cell(strings.Join(m.Custodians, ";")),
		strings.Join(seqs, " "),
		cell(m.Salt),
	}
}

var lineBreaks = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ")

func cell(s string) string {
	s = lineBreaks.Replace(s)
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
