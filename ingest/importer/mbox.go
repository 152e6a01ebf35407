package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Quoting says how an mbox reader undoes the ">From " quoting of its writer.
// The zero value is QuotingMboxrd.
type Quoting int

// Mbox quoting variants (SPEC: RFC 4155 and
// https://www.loc.gov/preservation/digital/formats/fdd/fdd000385.shtml).
const (
	// QuotingMboxrd removes one '>' from each line matching ^>+From . It is
	// exact for mboxrd files.
	QuotingMboxrd Quoting = iota
	// QuotingMboxo removes the '>' from lines matching ^>From  only. mboxo
	// quoting is lossy: an original ">From " line comes back as "From ".
	QuotingMboxo
	// QuotingNone keeps every line as it is in the file.
	QuotingNone
)

// String returns "mboxrd", "mboxo" or "none".
func (q Quoting) String() string {
	switch q {
	case QuotingMboxrd:
		return "mboxrd"
	case QuotingMboxo:
		return "mboxo"
	case QuotingNone:
		return "none"
	}
	return fmt.Sprintf("Quoting(%d)", int(q))
}

// ParseQuoting returns the Quoting named by s ("mboxrd", "mboxo" or "none",
// any case), or an error naming the accepted values.
func ParseQuoting(s string) (Quoting, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mboxrd", "":
		return QuotingMboxrd, nil
	case "mboxo":
		return QuotingMboxo, nil
	case "none":
		return QuotingNone, nil
	}
	return 0, fmt.Errorf("importer: unknown mbox quoting %q (want mboxrd, mboxo or none)", s)
}

var (
	// errNoFromLine marks bytes before the first From_ line of an mbox.
	errNoFromLine = errors.New("not an mbox message: no From_ line before it")
	// errTooLarge marks a message over the size limit.
	errTooLarge = errors.New("message too large")
)

const (
	// mboxBufSize is the read buffer. A line longer than this is read in
	// pieces; only its first piece decides whether it is a From_ line.
	mboxBufSize = 64 << 10
	// fromLineCap caps the From_ line text kept for Meta and dates.
	fromLineCap = 1000
)

// mboxSpan is one stretch of an mbox stream: a message, or bytes that could
// not be yielded as one (Err set). Consecutive spans tile the stream.
type mboxSpan struct {
	// Offset is where the span starts in the stream: the first byte of the
	// From_ line for a message.
	Offset int64
	// Length is the number of stream bytes the span covers: the From_ line,
	// the quoted content and the blank line before the next From_ line.
	Length int64
	// FromLine is the From_ line after "From ", without the line ending,
	// at most fromLineCap bytes.
	FromLine string
	// Raw is the message after unquoting. Nil when Err is set.
	Raw []byte
	// Err is errNoFromLine for bytes before the first From_ line and
	// errTooLarge for a message over the limit.
	Err error
	// blank is set on an errNoFromLine span that holds only blank lines.
	blank bool
}

// mboxReader splits an mbox stream into messages, one at a time: it holds at
// most the message it is reading (up to max bytes plus a line ending),
// whatever the size of the stream.
type mboxReader struct {
	br      *bufio.Reader
	quoting Quoting
	max     int64

	off     int64 // stream offset of the next unread byte
	started bool
	err     error // sticky: io.EOF or a read error

	// The From_ line that opens the next message, already consumed.
	haveSep bool
	sepOff  int64
	sepLen  int64
	sepText string
}

// newMboxReader reads an mbox from r. Messages over max bytes (after
// unquoting) are returned as spans with errTooLarge and no Raw. bufSize is
// the read buffer size (tests use small ones); 0 means mboxBufSize.
func newMboxReader(r io.Reader, quoting Quoting, max int64, bufSize int) *mboxReader {
	if bufSize <= 0 {
		bufSize = mboxBufSize
	}
	max = min(max, math.MaxInt64-16) // room for the slack in appendLimited
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < bufSize {
		br = bufio.NewReaderSize(r, bufSize)
	}
	return &mboxReader{br: br, quoting: quoting, max: max}
}

// next returns the next span. It returns io.EOF after the last one and any
// read error as is; both are sticky. The bytes before the first From_ line,
// if any, come first as a span with errNoFromLine.
func (r *mboxReader) next() (*mboxSpan, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		pre := &mboxSpan{Offset: 0}
		if err := r.scan(pre, true); err != nil {
			r.err = err
			return nil, err
		}
		if pre.Length > 0 {
			pre.Err = errNoFromLine
			return pre, nil
		}
	}
	if !r.haveSep {
		r.err = io.EOF
		return nil, io.EOF
	}
	sp := &mboxSpan{Offset: r.sepOff, Length: r.sepLen, FromLine: r.sepText}
	r.haveSep = false
	if err := r.scan(sp, false); err != nil {
		r.err = err
		return nil, err
	}
	return sp, nil
}

// scan reads lines up to the next From_ line or the end of the stream,
// adding their length to sp.Length and, unless preamble, their unquoted
// content to sp.Raw. It consumes the From_ line that ends the span and keeps
// it for the next message.
//
// In the preamble (before the first message) any From_ line opens the first
// message; after that, a From_ line opens a message only after a blank line
// (RFC 4155 §2: each message is followed by an empty line), so an unquoted
// "From " line inside a paragraph stays in its message.
func (r *mboxReader) scan(sp *mboxSpan, preamble bool) error {
	var (
		buf       []byte
		keep      = !preamble // false once the message is over the limit
		prevBlank = preamble  // the start of the stream counts as after a blank line
		lastStart = -1        // start in buf of the last line, if it was blank
	)
	sp.blank = preamble
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(chunk) == 0 {
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if (preamble || prevBlank) && isFromLine(chunk) {
			return r.takeSeparator(sp, buf, keep, lastStart, preamble, chunk, err)
		}
		lineStart := len(buf)
		n := int64(len(chunk))
		blank := isBlankLine(chunk) && err != bufio.ErrBufferFull
		if keep {
			buf, keep = r.appendLimited(buf, chunk, keep)
		}
		for err == bufio.ErrBufferFull {
			chunk, err = r.br.ReadSlice('\n')
			n += int64(len(chunk))
			if keep {
				buf, keep = r.appendLimited(buf, chunk, keep)
			}
		}
		r.off += n
		sp.Length += n
		if err != nil && err != io.EOF {
			return err
		}
		if keep {
			buf = r.unquote(buf, lineStart)
		} else {
			buf = nil
		}
		prevBlank = blank
		sp.blank = sp.blank && blank
		lastStart = -1
		if blank {
			lastStart = lineStart
		}
		if err == io.EOF {
			break
		}
	}
	r.finish(sp, buf, keep, lastStart, preamble)
	return nil
}

// takeSeparator ends sp before the From_ line whose first piece is chunk,
// reads the rest of that line and keeps it as the start of the next message.
func (r *mboxReader) takeSeparator(sp *mboxSpan, buf []byte, keep bool, lastStart int, preamble bool, chunk []byte, err error) error {
	r.finish(sp, buf, keep, lastStart, preamble)
	r.sepOff = r.off
	n := int64(len(chunk))
	text := make([]byte, 0, min(len(chunk), fromLineCap+7))
	text = appendCapped(text, chunk, fromLineCap+7)
	for err == bufio.ErrBufferFull {
		chunk, err = r.br.ReadSlice('\n')
		n += int64(len(chunk))
		text = appendCapped(text, chunk, fromLineCap+7)
	}
	r.off += n
	if err != nil && err != io.EOF {
		return err
	}
	text = bytes.TrimRight(text[len("From "):], "\r\n")
	if len(text) > fromLineCap {
		text = text[:fromLineCap]
	}
	r.haveSep, r.sepLen, r.sepText = true, n, string(text)
	return nil
}

// finish sets sp.Raw (or sp.Err) from the content read: the blank line the
// writer put before the next From_ line, or at the end, is dropped.
func (r *mboxReader) finish(sp *mboxSpan, buf []byte, keep bool, lastStart int, preamble bool) {
	if preamble {
		return
	}
	if !keep {
		sp.Err = errTooLarge
		return
	}
	if lastStart >= 0 {
		buf = buf[:lastStart]
	}
	if int64(len(buf)) > r.max {
		sp.Err = errTooLarge
		return
	}
	if buf == nil {
		buf = []byte{}
	}
	sp.Raw = buf
}

// appendLimited appends chunk to buf unless that would take buf past the
// size limit plus the few bytes (a '>' still to be removed, a blank line
// still to be dropped) that can leave it again; then it drops buf.
func (r *mboxReader) appendLimited(buf, chunk []byte, keep bool) ([]byte, bool) {
	if int64(len(buf))+int64(len(chunk)) > r.max+2 {
		return nil, false
	}
	return append(buf, chunk...), keep
}

// unquote undoes the writer's quoting on the line that starts at buf[start].
func (r *mboxReader) unquote(buf []byte, start int) []byte {
	line := buf[start:]
	depth := 0
	for depth < len(line) && line[depth] == '>' {
		depth++
	}
	if depth == 0 || !bytes.HasPrefix(line[depth:], []byte("From ")) {
		return buf
	}
	switch {
	case r.quoting == QuotingMboxrd, r.quoting == QuotingMboxo && depth == 1:
		copy(buf[start:], buf[start+1:])
		return buf[:len(buf)-1]
	}
	return buf
}

// isFromLine reports whether line (or its first piece) is an mbox From_ line:
// "From " at the start, and not the obsolete header form "From :"
// (RFC 5322 §4.5.2) that a message file could begin with.
func isFromLine(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("From ")) {
		return false
	}
	rest := bytes.TrimLeft(line[len("From "):], " \t")
	return len(rest) == 0 || rest[0] != ':'
}

// isBlankLine reports whether line is an empty line: "\n" or "\r\n".
func isBlankLine(line []byte) bool {
	return string(line) == "\n" || string(line) == "\r\n"
}

func appendCapped(dst, src []byte, limit int) []byte {
	if room := limit - len(dst); room > 0 {
		dst = append(dst, src[:min(room, len(src))]...)
	}
	return dst
}

// fromLineLayouts are the date forms found after the address of a From_ line,
// after runs of spaces are folded to one. asctime is what RFC 4155 asks for;
// the others are written by real tools.
var fromLineLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"Mon Jan 2 15:04:05 2006 MST",
	"Mon Jan 2 15:04 2006",
	"Mon Jan 2 15:04 MST 2006",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
}

// parseFromLineDate returns the date of a From_ line (the text after
// "From "): RFC 4155 §2 asks for asctime, in UTC by convention but in local
// time in practice, so a date without a zone is read in loc. Trailing words
// such as "remote from host" are ignored.
func parseFromLineDate(text string, loc *time.Location) (time.Time, bool) {
	f := strings.Fields(text)
	for i := 1; i < len(f); i++ {
		if !isWeekday(strings.TrimSuffix(f[i], ",")) {
			continue
		}
		// The longest layout has six fields.
		for end := min(len(f), i+6); end >= i+4; end-- {
			s := strings.Join(f[i:end], " ")
			for _, layout := range fromLineLayouts {
				t, err := time.ParseInLocation(layout, s, loc)
				if err == nil && t.Year() >= 1970 && t.Year() < 2200 {
					return t, true
				}
			}
		}
	}
	return time.Time{}, false
}

func isWeekday(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}
