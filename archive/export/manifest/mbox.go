package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The mbox layout is mboxrd (SPEC: RFC 4155 and
// https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml).
// Each message is one record:
//
//	"From " sender " " asctime(date, UTC) EOL
//	the message, each line matching ^>*From  given one more '>'
//	EOL, when the message does not end with a line ending (EOLAdded)
//	EOL (the blank line that ends the record)
//
// where EOL is "\r\n" when the message's first line ends so, else "\n".
// Records follow each other with nothing between them, so they tile the
// file.

// WriteMboxRecord writes one record for raw to w and returns its length and
// whether a line ending was added. sender goes on the From_ line (spaces
// and control characters become '_'; "MAILER-DAEMON" when empty).
func WriteMboxRecord(w io.Writer, sender string, date time.Time, raw []byte) (n int64, eolAdded bool, err error) {
	eol := "\n"
	if i := bytes.IndexByte(raw, '\n'); i > 0 && raw[i-1] == '\r' {
		eol = "\r\n"
	}
	sender = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, sender)
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	cw := &countWriter{w: w}
	io.WriteString(cw, "From "+sender+" "+date.UTC().Format("Mon Jan _2 15:04:05 2006")+eol)
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i+1]
		}
		raw = raw[len(line):]
		if quoted(line) {
			cw.Write([]byte{'>'})
		}
		cw.Write(line)
		if len(raw) == 0 && line[len(line)-1] != '\n' {
			io.WriteString(cw, eol)
			eolAdded = true
		}
	}
	io.WriteString(cw, eol)
	return cw.n, eolAdded, cw.err
}

// quoted reports whether an mboxrd writer quotes line: ^>*From .
func quoted(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From "))
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// ReadMboxRecord recovers the original bytes from one record (the bytes of
// a Span): it drops the From_ line and the final blank line, removes one
// '>' from each line matching ^>+From , and drops the added line ending
// when eolAdded.
func ReadMboxRecord(rec []byte, eolAdded bool) ([]byte, error) {
	if !bytes.HasPrefix(rec, []byte("From ")) {
		return nil, errors.New("the record does not start with a From_ line")
	}
	i := bytes.IndexByte(rec, '\n')
	if i < 0 {
		return nil, errors.New("the From_ line does not end")
	}
	eol := "\n"
	if i > 0 && rec[i-1] == '\r' {
		eol = "\r\n"
	}
	body, ok := bytes.CutSuffix(rec[i+1:], []byte(eol))
	if !ok {
		return nil, fmt.Errorf("the record does not end with its blank line (%q)", eol)
	}
	out := make([]byte, 0, len(body))
	for len(body) > 0 {
		line := body
		if j := bytes.IndexByte(body, '\n'); j >= 0 {
			line = body[:j+1]
		}
		body = body[len(line):]
		depth := 0
		for depth < len(line) && line[depth] == '>' {
			depth++
		}
		if depth == 0 && bytes.HasPrefix(line, []byte("From ")) {
			return nil, errors.New("an unquoted From_ line inside the record")
		}
		if depth > 0 && bytes.HasPrefix(line[depth:], []byte("From ")) {
			line = line[1:]
		}
		out = append(out, line...)
	}
	// The writer ends every message with a line ending, its own or one it
	// added (and says so).
	if len(out) > 0 && out[len(out)-1] != '\n' {
		return nil, errors.New("the message does not end with a line ending")
	}
	if eolAdded {
		var ok bool
		if out, ok = bytes.CutSuffix(out, []byte(eol)); !ok {
			return nil, errors.New("eol_added, but the message does not end with the record's line ending")
		}
	}
	return out, nil
}
