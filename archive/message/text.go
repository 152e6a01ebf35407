package message

import (
	"bytes"
	"errors"
	"html"
	"io"
	"sync"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/text/transform"
)

// MaxText is the most text Text yields for one message, in bytes of UTF-8.
// What lies beyond is not indexed.
const MaxText = 1 << 20

// textChunk is the size Text hands to fn at most.
const textChunk = 16 << 10

// errTextFull stops the walk once MaxText is reached.
var errTextFull = errors.New("message: text limit reached")

// Text calls fn with the human-readable text of the message p parsed from
// raw, in order, as UTF-8 chunks of at most 16 KiB that never split a
// character: the decoded Subject of the message and of every embedded
// message, decoded attachment file names, and the content of text/* parts
// (and delivery-status reports) with the transfer encoding and charset
// undone and HTML reduced to its text (tags, comments, scripts and styles
// dropped, entities decoded). Chunks are separated by line breaks where
// parts meet.
//
// Memory is bounded (a few buffers, whatever the message size, reused from
// one call to the next) and output stops silently after MaxText bytes. A
// chunk is valid only during the call to fn, which must copy what it keeps.
// An error from fn stops the walk and is returned; Text itself does not
// fail: unknown charsets fall back to UTF-8/Windows-1252 and unknown
// transfer encodings to the raw bytes.
func Text(raw []byte, p *Part, fn func(chunk string) error) error {
	t := textWriters.Get().(*textWriter)
	t.fn, t.left = fn, MaxText
	err := t.part(raw, p)
	if err == nil {
		err = t.flush(true)
	}
	t.fn, t.buf, t.scratch = nil, t.buf[:0], t.scratch[:0]
	if cap(t.buf) <= maxPooledText && cap(t.scratch) <= maxPooledText {
		textWriters.Put(t)
	}
	if errors.Is(err, errTextFull) {
		return nil
	}
	return err
}

// textWriters keeps textWriters and their buffers between calls: every
// archived message is reduced to its text, and allocating the buffers anew
// (growing to the chunk size each time) was two thirds of what ingest
// allocated per message.
var textWriters = sync.Pool{New: func() any {
	return &textWriter{buf: make([]byte, 0, 2*textChunk)}
}}

// maxPooledText bounds the buffers kept: a chunk, and one input read
// expanded (HTML entities, fallback decoding) past it.
const maxPooledText = 4 * textChunk

type textWriter struct {
	fn      func(string) error
	left    int    // bytes still allowed
	buf     []byte // pending output, flushed at textChunk
	scratch []byte // for repairing input that is not UTF-8
	in      [8 << 10]byte
}

func (t *textWriter) part(raw []byte, p *Part) error {
	if p.Envelope != nil {
		if s := p.Envelope.DecodedSubject(); s != "" {
			if err := t.writeLine(s); err != nil {
				return err
			}
		}
	}
	if name := p.Filename(); name != "" {
		if err := t.writeLine(name); err != nil {
			return err
		}
	}
	for i := range p.Parts {
		if err := t.part(raw, &p.Parts[i]); err != nil {
			return err
		}
	}
	if p.Message != nil {
		return t.part(raw, p.Message)
	}
	if len(p.Parts) > 0 || !isTextual(p) {
		return nil
	}
	return t.body(raw, p)
}

// isTextual reports whether a leaf holds text worth indexing.
func isTextual(p *Part) bool {
	switch p.MediaType {
	case "text":
		return true
	case "message":
		switch p.MediaSubtype {
		case "delivery-status", "global-delivery-status", "disposition-notification", "global-disposition-notification":
			return true
		}
	}
	return false
}

func (t *textWriter) body(raw []byte, p *Part) error {
	r, err := p.DecodedReader(raw)
	if err != nil {
		// Unknown transfer encoding: index the bytes as they are.
		r = &identityReader{b: p.Body(raw)}
	}
	// Known charsets go through their x/text decoder; UTF-8, US-ASCII and
	// unknown ones are checked here, which is much cheaper for the common
	// case of valid UTF-8 (see lookupCharset).
	enc := lookupCharset(p.Charset())
	if enc != nil {
		r = transform.NewReader(r, enc.NewDecoder())
	}
	var h *htmlText
	lastCR := false
	if p.MediaSubtype == "html" {
		h = &htmlText{}
	}
	carry := 0 // bytes of an incomplete character kept at t.in[:carry]
	for {
		n, err := r.Read(t.in[carry:])
		n += carry
		carry = 0
		chunk := t.in[:n]
		if enc == nil {
			if err == nil {
				cut := completeRunes(chunk)
				carry = n - cut
				chunk = chunk[:cut]
			}
			if !utf8.Valid(chunk) {
				t.scratch = appendFallback(t.scratch[:0], chunk)
				chunk = t.scratch
			}
		}
		if len(chunk) > 0 {
			if h != nil {
				t.buf = h.appendText(t.buf, chunk)
			} else {
				t.buf = appendPlain(t.buf, chunk, &lastCR)
			}
			if len(t.buf) >= textChunk {
				if err := t.flush(false); err != nil {
					return err
				}
			}
		}
		if carry > 0 {
			copy(t.in[:carry], t.in[n-carry:n])
		}
		if err != nil {
			break // io.EOF, or a charset decoder error: keep what we have
		}
	}
	if h != nil {
		t.buf = h.finish(t.buf)
	}
	return t.writeLine("")
}

// completeRunes returns the length of b without an incomplete UTF-8
// sequence at its end.
func completeRunes(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if b[i] >= utf8.RuneSelf && !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// appendPlain appends text with CRLF and bare CR turned into LF; *lastCR
// carries a CR at the end of one piece over to the next.
func appendPlain(dst, src []byte, lastCR *bool) []byte {
	for len(src) > 0 {
		if *lastCR && src[0] == '\n' {
			src = src[1:]
		}
		*lastCR = false
		i := bytes.IndexByte(src, '\r')
		if i < 0 {
			return append(dst, src...)
		}
		dst = append(append(dst, src[:i]...), '\n')
		*lastCR = true
		src = src[i+1:]
	}
	return dst
}

type identityReader struct{ b []byte }

func (r *identityReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// writeLine adds s and a line break.
func (t *textWriter) writeLine(s string) error {
	if s != "" {
		t.buf = append(t.buf, s...)
	}
	if len(t.buf) > 0 && t.buf[len(t.buf)-1] != '\n' {
		t.buf = append(t.buf, '\n')
	}
	if len(t.buf) >= textChunk {
		return t.flush(false)
	}
	return nil
}

// flush hands t.buf to fn in chunks of at most textChunk bytes that end on
// a character boundary. Unless final, it only sends while a whole chunk is
// pending and keeps a possibly incomplete character at the end.
func (t *textWriter) flush(final bool) error {
	for len(t.buf) >= textChunk || final && len(t.buf) > 0 {
		n := min(len(t.buf), textChunk)
		if n < len(t.buf) || !final {
			k := n
			if k == len(t.buf) {
				k--
			}
			for k > 0 && n-k < utf8.UTFMax && !utf8.RuneStart(t.buf[k]) {
				k--
			}
			if k > 0 {
				n = k
			}
		}
		chunk := t.buf[:n]
		full := false
		if len(chunk) > t.left {
			chunk = []byte(truncateUTF8(string(chunk), t.left))
			full = true
		}
		if len(chunk) > 0 {
			// No copy: the chunk lives in t.buf until fn returns.
			if err := t.fn(unsafe.String(unsafe.SliceData(chunk), len(chunk))); err != nil {
				return err
			}
		}
		t.left -= len(chunk)
		if full || t.left == 0 {
			t.buf = t.buf[:0]
			return errTextFull
		}
		t.buf = t.buf[:copy(t.buf, t.buf[n:])]
	}
	return nil
}

// htmlText turns a stream of HTML (already UTF-8) into its text. It is a
// small state machine, not an HTML parser: it drops tags, comments,
// declarations and the content of script and style elements, decodes
// character references with html.UnescapeString, turns block-level tags
// into line breaks and collapses runs of white space.
type htmlText struct {
	state   int
	tag     [16]byte // lower-cased tag name, truncated
	ntag    int
	closing bool   // "</x>"
	quote   byte   // inside a quoted attribute value
	skip    string // "script" or "style" while inside one
	match   int    // progress through "</"+skip or "-->"
	ent     [32]byte
	nent    int
	space   bool // last output was white space
}

const (
	hText = iota
	hTagOpen
	hTagName
	hTagAttrs
	hComment
	hDecl
	hRawText
	hEntity
)

func (h *htmlText) appendText(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch h.state {
		case hText:
			if htmlPlain[c] {
				// A run of ordinary characters.
				j := i + 1
				for j < len(src) && htmlPlain[src[j]] {
					j++
				}
				dst = append(dst, src[i:j]...)
				h.space = false
				i = j - 1
				continue
			}
			switch c {
			case '<':
				h.state = hTagOpen
			case '&':
				h.state, h.nent = hEntity, 0
			default:
				dst = h.emit(dst, c)
			}
		case hEntity:
			if h.nent < len(h.ent) && (isAlnum(c) || c == '#') {
				h.ent[h.nent] = c
				h.nent++
				continue
			}
			ref := "&" + string(h.ent[:h.nent])
			if c == ';' {
				ref += ";"
			}
			for _, b := range []byte(html.UnescapeString(ref)) {
				dst = h.emit(dst, b)
			}
			h.state = hText
			if c != ';' {
				i-- // read c again as text
			}
		case hTagOpen:
			switch {
			case c == '!':
				h.state, h.match = hDecl, 0
			case c == '/':
				h.state, h.ntag, h.closing = hTagName, 0, true
			case isAlnum(c):
				h.state, h.ntag, h.closing = hTagName, 0, false
				i--
			default:
				// "a < b": not a tag.
				dst = h.emit(dst, '<')
				h.state = hText
				i--
			}
		case hTagName:
			if isAlnum(c) {
				if h.ntag < len(h.tag) {
					h.tag[h.ntag] = lowerASCII(c)
					h.ntag++
				}
				continue
			}
			h.state, h.quote = hTagAttrs, 0
			i--
		case hTagAttrs:
			switch {
			case h.quote != 0:
				if c == h.quote {
					h.quote = 0
				}
			case c == '"' || c == '\'':
				h.quote = c
			case c == '>':
				dst = h.endTag(dst)
			}
		case hDecl:
			// "<!--" starts a comment; other declarations end at ">".
			if h.match < 2 && c == '-' {
				h.match++
				if h.match == 2 {
					h.state, h.match = hComment, 0
				}
				continue
			}
			h.match = 3 // not a comment
			if c == '>' {
				h.state = hText
			}
		case hComment:
			switch {
			case c == '-':
				if h.match < 2 {
					h.match++
				}
			case c == '>' && h.match == 2:
				h.state = hText
				dst = h.emit(dst, ' ')
			default:
				h.match = 0
			}
		case hRawText:
			// Look for "</script" or "</style".
			want := "</" + h.skip
			switch {
			case lowerASCII(c) == want[h.match]:
				h.match++
				if h.match == len(want) {
					h.skip = ""
					h.state, h.quote, h.closing = hTagAttrs, 0, true
					h.ntag = 0
				}
			case c == '<':
				h.match = 1
			default:
				h.match = 0
			}
		}
	}
	return dst
}

func (h *htmlText) endTag(dst []byte) []byte {
	h.state = hText
	name := string(h.tag[:h.ntag])
	if !h.closing && (name == "script" || name == "style") {
		h.state, h.skip, h.match = hRawText, name, 0
		return dst
	}
	if inlineTags[name] {
		return dst
	}
	if blockTags[name] {
		return h.emitBreak(dst)
	}
	return h.emit(dst, ' ')
}

// emit appends c. White space collapses to one space; a line break (from
// a block tag) replaces a space just written.
func (h *htmlText) emit(dst []byte, c byte) []byte {
	switch c {
	case ' ', '\t', '\r', '\n', '\f':
		if h.space {
			return dst
		}
		h.space = true
		return append(dst, ' ')
	}
	h.space = false
	return append(dst, c)
}

func (h *htmlText) emitBreak(dst []byte) []byte {
	if h.space {
		if len(dst) > 0 && dst[len(dst)-1] == ' ' {
			dst[len(dst)-1] = '\n'
		}
		return dst
	}
	h.space = true
	return append(dst, '\n')
}

// finish flushes a character reference cut off by the end of the input.
func (h *htmlText) finish(dst []byte) []byte {
	if h.state == hEntity {
		for _, b := range []byte(html.UnescapeString("&" + string(h.ent[:h.nent]))) {
			dst = h.emit(dst, b)
		}
		h.state = hText
	}
	return dst
}

// htmlPlain marks the bytes that are text as they are.
var htmlPlain = func() (t [256]bool) {
	for i := range t {
		t[i] = true
	}
	for _, c := range "<& \t\r\n\f" {
		t[c] = false
	}
	return t
}()

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// inlineTags do not separate words: "<b>wo</b>rd" is "word".
var inlineTags = map[string]bool{
	"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "big": true, "cite": true,
	"code": true, "em": true, "font": true, "i": true, "kbd": true, "mark": true, "q": true,
	"s": true, "samp": true, "small": true, "span": true, "strike": true, "strong": true,
	"sub": true, "sup": true, "u": true, "var": true, "wbr": true, "o": true,
}

// blockTags end a line.
var blockTags = map[string]bool{
	"address": true, "article": true, "aside": true, "blockquote": true, "br": true, "dd": true,
	"div": true, "dl": true, "dt": true, "fieldset": true, "figcaption": true, "figure": true,
	"footer": true, "form": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true,
	"h6": true, "header": true, "hr": true, "li": true, "main": true, "nav": true, "ol": true,
	"p": true, "pre": true, "section": true, "table": true, "tr": true, "ul": true, "title": true,
	"body": true, "html": true, "head": true,
}
