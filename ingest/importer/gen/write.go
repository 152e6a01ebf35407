package gen

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// MboxWriter writes messages to an mbox in the mboxrd format: a From_ line
// (RFC 4155: "From sender asctime-date"), the message with every line
// matching ^>*From  given one more '>', and a blank line. A message that
// does not end with a line ending gets one (mbox cannot keep that
// difference). A message using CRLF gets a CRLF From_ line and blank line.
type MboxWriter struct {
	w   *bufio.Writer
	err error
}

// NewMboxWriter writes to w; call Flush when done.
func NewMboxWriter(w io.Writer) *MboxWriter {
	return &MboxWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write appends one message. sender is the envelope sender ("-" or
// "MAILER-DAEMON" when there is none); date goes on the From_ line in UTC.
// The first error is sticky and returned by every later call.
func (m *MboxWriter) Write(sender string, date time.Time, raw []byte) error {
	if m.err != nil {
		return m.err
	}
	eol := "\n"
	if i := bytes.IndexByte(raw, '\n'); i > 0 && raw[i-1] == '\r' {
		eol = "\r\n"
	}
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	fmt.Fprintf(m.w, "From %s %s%s", sender, date.UTC().Format("Mon Jan _2 15:04:05 2006"), eol)
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i+1]
		}
		raw = raw[len(line):]
		if quoted(line) {
			m.w.WriteByte('>')
		}
		m.w.Write(line)
		if len(raw) == 0 && !bytes.HasSuffix(line, []byte("\n")) {
			m.w.WriteString(eol)
		}
	}
	_, m.err = m.w.WriteString(eol)
	return m.err
}

// quoted reports whether an mboxrd writer must quote line: ^>*From .
func quoted(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From "))
}

// Flush writes buffered data to the underlying writer.
func (m *MboxWriter) Flush() error {
	if m.err != nil {
		return m.err
	}
	m.err = m.w.Flush()
	return m.err
}

// Maildir writes messages into a Maildir folder.
// SPEC: https://cr.yp.to/proto/maildir.html and, for subfolders, Maildir++.
type Maildir struct {
	// Dir is the folder directory, holding cur/, new/ and tmp/.
	Dir string
}

// uniq numbers delivered files so names never repeat within a process.
var uniq atomic.Uint64

// CreateMaildir creates dir with cur/, new/ and tmp/ if they are missing.
func CreateMaildir(dir string) (*Maildir, error) {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("gen: %w", err)
		}
	}
	return &Maildir{Dir: dir}, nil
}

// Subfolder creates (if missing) the Maildir++ subfolder name, with "/"
// between levels: "A/B" is the directory ".A.B" marked with a maildirfolder
// file.
func (m *Maildir) Subfolder(name string) (*Maildir, error) {
	dir := filepath.Join(m.Dir, "."+strings.ReplaceAll(name, "/", "."))
	sub, err := CreateMaildir(dir)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "maildirfolder"), nil, 0o644); err != nil {
		return nil, fmt.Errorf("gen: %w", err)
	}
	return sub, nil
}

// Deliver writes raw as a new file: into tmp/, then renamed into new/ when
// flags is empty, else into cur/ with the info ":2,FLAGS". The unique name
// starts with the seconds of date, and the file's mtime is date. It returns
// the file's path.
func (m *Maildir) Deliver(raw []byte, date time.Time, flags string) (string, error) {
	unique := fmt.Sprintf("%d.M%06dQ%d.cairn-gen,S=%d", date.Unix(), date.Nanosecond()/1000, uniq.Add(1), len(raw))
	tmp := filepath.Join(m.Dir, "tmp", unique)
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return "", fmt.Errorf("gen: %w", err)
	}
	if err := os.Chtimes(tmp, date, date); err != nil {
		return "", fmt.Errorf("gen: %w", err)
	}
	dst := filepath.Join(m.Dir, "new", unique)
	if flags != "" {
		dst = filepath.Join(m.Dir, "cur", unique+":2,"+flags)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("gen: %w", err)
	}
	return dst, nil
}
