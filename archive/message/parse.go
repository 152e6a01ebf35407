package message

import "bytes"

// Parse parses raw, a whole message, into its MIME structure. It never
// fails and never panics: what is malformed is reported as Problems and the
// best structure possible is returned (see the package comment for the
// rules). The returned Part refers to raw only through offsets; raw is
// neither kept nor modified.
//
// Work is linear in len(raw) times the nesting depth (at most MaxDepth), and
// memory is bounded by MaxParts parts plus the header values kept.
func Parse(raw []byte) (*Part, []Problem) {
	ps := parser{raw: raw, nparts: 1}
	root := &Part{}
	if len(raw) == 0 {
		ps.problem(0, "empty message")
	}
	ps.entity(root, 0, 0, true, false)
	return root, ps.problems
}

type parser struct {
	raw      []byte
	bounds   [][]byte // delimiters ("--" + boundary) of the open multiparts, outermost first
	nparts   int
	capped   bool // MaxParts was reached
	problems []Problem
}

func (ps *parser) problem(off int, text string) {
	switch {
	case len(ps.problems) < maxProblems:
		ps.problems = append(ps.problems, Problem{Offset: int64(off), Text: text})
	case len(ps.problems) == maxProblems:
		ps.problems = append(ps.problems, Problem{Offset: int64(off), Text: "too many problems, the rest not recorded"})
	}
}

// The header fields Parse keeps. Envelope fields are kept for messages only.
const (
	hContentType = iota
	hEncoding
	hID
	hDescription
	hMD5
	hDisposition
	hLanguage
	hLocation
	hDate
	hSubject
	hFrom
	hSender
	hReplyTo
	hTo
	hCc
	hBcc
	hInReplyTo
	hMessageID
	hCount
)

// span is the raw value of one header field: from after the colon to the
// end of its last continuation line, line break excluded.
type span struct {
	start, end int
	set        bool
}

// fieldIndex returns the h* index for a field name, or -1.
func fieldIndex(name []byte, isMessage bool) int {
	switch lowerASCII(name[0]) {
	case 'c':
		if len(name) > 8 && eqFold(name[:8], "content-") {
			switch rest := name[8:]; {
			case eqFold(rest, "type"):
				return hContentType
			case eqFold(rest, "transfer-encoding"):
				return hEncoding
			case eqFold(rest, "id"):
				return hID
			case eqFold(rest, "description"):
				return hDescription
			case eqFold(rest, "md5"):
				return hMD5
			case eqFold(rest, "disposition"):
				return hDisposition
			case eqFold(rest, "language"):
				return hLanguage
			case eqFold(rest, "location"):
				return hLocation
			}
			return -1
		}
		if isMessage && eqFold(name, "cc") {
			return hCc
		}
		return -1
	}
	if !isMessage {
		return -1
	}
	switch {
	case eqFold(name, "date"):
		return hDate
	case eqFold(name, "subject"):
		return hSubject
	case eqFold(name, "from"):
		return hFrom
	case eqFold(name, "sender"):
		return hSender
	case eqFold(name, "reply-to"):
		return hReplyTo
	case eqFold(name, "to"):
		return hTo
	case eqFold(name, "bcc"):
		return hBcc
	case eqFold(name, "in-reply-to"):
		return hInReplyTo
	case eqFold(name, "message-id"):
		return hMessageID
	}
	return -1
}

func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerASCII(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// entity parses the entity (header and body) of p starting at start, a
// line start. isMessage marks the root and embedded messages, which get an
// Envelope; inDigest makes message/rfc822 the default type (RFC 2046
// §5.1.5). It returns where p ends: the start of the delimiter line of an
// open multipart that ends it, or len(raw).
func (ps *parser) entity(p *Part, start, depth int, isMessage, inDigest bool) int {
	raw := ps.raw
	var f [hCount]span
	cur := -1        // the kept field being continued, or -1
	inField := false // a field has started
	bodyStart := -1  // set when the header ends
	for pos := start; pos < len(raw); {
		// RFC 2046 §5.1.1: a delimiter ends the part even inside its header.
		if raw[pos] == '-' && len(ps.bounds) > 0 {
			if _, _, ok := ps.delimAt(pos); ok {
				if pos > start {
					ps.problem(pos, "header not ended by a blank line")
				}
				bodyStart = pos
				break
			}
		}
		e := lineEnd(raw, pos)
		line := raw[pos:e]
		if isBlankLine(line) {
			bodyStart = e // RFC 5322 §2.1: the body follows the empty line
			break
		}
		off := 0
		if isWSP(line[0]) {
			if inField { // RFC 5322 §2.2.3 folding
				if cur >= 0 {
					f[cur].end = contentEnd(raw, pos, e)
				}
				pos = e
				continue
			}
			for off < len(line) && isWSP(line[off]) {
				off++
			}
		}
		if nameEnd, colon, ok := fieldName(line[off:]); ok {
			if off > 0 {
				ps.problem(pos, "header field starts with white space")
			}
			inField = true
			cur = -1
			if k := fieldIndex(line[off:off+nameEnd], isMessage); k >= 0 && !f[k].set {
				f[k] = span{start: pos + off + colon + 1, end: contentEnd(raw, pos, e), set: true}
				cur = k
			}
		} else if inField {
			ps.problem(pos, "header line without colon, taken as continuation")
			if cur >= 0 {
				f[cur].end = contentEnd(raw, pos, e)
			}
		} else if pos == start && !(isMessage && bytes.HasPrefix(line, []byte("From "))) {
			// Not a header at all: the entity has an empty header and
			// this line starts its body.
			ps.problem(pos, "no header")
			bodyStart = start
			break
		} else {
			ps.problem(pos, "junk before the first header field skipped")
		}
		pos = e
	}
	if bodyStart < 0 {
		bodyStart = len(raw) // header only, without a blank line
	}
	p.HeaderStart, p.BodyStart = int64(start), int64(bodyStart)

	ps.contentFields(p, &f, inDigest)
	if isMessage {
		p.Envelope = ps.envelope(&f)
	}
	switch {
	case p.MediaType == "multipart":
		return ps.multipart(p, depth)
	case isMessageType(p.MediaType, p.MediaSubtype):
		return ps.message(p, depth)
	}
	return ps.leaf(p)
}

func (ps *parser) value(s span) string { return unfold(ps.raw[s.start:s.end]) }

// contentFields sets p's MIME fields (RFC 2045 §5-§8, RFC 2183, RFC 3282,
// RFC 2557, RFC 1864).
func (ps *parser) contentFields(p *Part, f *[hCount]span, inDigest bool) {
	switch s := f[hContentType]; {
	case s.set:
		typ, sub, params, probs, ok := parseContentType(ps.value(s))
		for _, pr := range probs {
			ps.problem(s.start, "content-type: "+pr)
		}
		p.Params = params
		if ok {
			p.MediaType, p.MediaSubtype = typ, sub
		} else {
			// RFC 2045 §5.2: an invalid Content-Type means text/plain.
			ps.toText(p)
		}
	case inDigest:
		p.MediaType, p.MediaSubtype = "message", "rfc822" // RFC 2046 §5.1.5
	default:
		ps.toText(p) // RFC 2045 §5.2
	}
	if s := f[hEncoding]; s.set {
		p.Encoding = parseEncoding(ps.value(s))
	}
	if s := f[hID]; s.set {
		p.ID = ps.value(s)
	}
	if s := f[hDescription]; s.set {
		p.Description = ps.value(s)
	}
	if s := f[hMD5]; s.set {
		p.MD5 = ps.value(s)
	}
	if s := f[hDisposition]; s.set {
		typ, params, probs := parseDisposition(ps.value(s))
		for _, pr := range probs {
			ps.problem(s.start, "content-disposition: "+pr)
		}
		p.Disposition, p.DispositionParams = typ, params
	}
	if s := f[hLanguage]; s.set {
		p.Language = parseLanguage(ps.value(s))
	}
	if s := f[hLocation]; s.set {
		p.Location = ps.value(s)
	}
}

func (ps *parser) envelope(f *[hCount]span) *Envelope {
	e := &Envelope{}
	str := func(k int) string {
		if f[k].set {
			return ps.value(f[k])
		}
		return ""
	}
	e.Date = str(hDate)
	e.Subject = str(hSubject)
	e.From = ps.addresses(f[hFrom])
	e.Sender = ps.addresses(f[hSender])
	e.ReplyTo = ps.addresses(f[hReplyTo])
	e.To = ps.addresses(f[hTo])
	e.Cc = ps.addresses(f[hCc])
	e.Bcc = ps.addresses(f[hBcc])
	e.InReplyTo = str(hInReplyTo)
	e.MessageID = str(hMessageID)
	return e
}

func (ps *parser) addresses(s span) []Address {
	if !s.set {
		return nil
	}
	l, bad := parseAddressList(ps.value(s))
	if bad {
		ps.problem(s.start, "malformed address list")
	}
	return l
}

// toText makes p text/plain, keeping its parameters but a boundary, with
// charset us-ascii unless one is given (RFC 2045 §5.2).
func (ps *parser) toText(p *Part) {
	p.MediaType, p.MediaSubtype = "text", "plain"
	params := make([]Param, 0, len(p.Params)+1)
	hasCharset := false
	for _, pr := range p.Params {
		switch pr.Name {
		case "boundary":
			continue
		case "charset":
			hasCharset = true
		}
		params = append(params, pr)
	}
	if !hasCharset {
		params = append(params, Param{Name: "charset", Value: "us-ascii"})
	}
	p.Params = params
}

// toOctet makes p an opaque leaf, for structure we do not descend into.
func toOctet(p *Part) { p.MediaType, p.MediaSubtype = "application", "octet-stream" }

func (ps *parser) capParts(off int) {
	if !ps.capped {
		ps.capped = true
		ps.problem(off, "too many parts, the rest kept inside their parent")
	}
}

// multipart parses the body of a multipart part (RFC 2046 §5.1.1).
func (ps *parser) multipart(p *Part, depth int) int {
	boundary := p.Param("boundary")
	switch {
	case boundary == "":
		ps.problem(int(p.HeaderStart), "multipart without boundary, read as text/plain")
		ps.toText(p)
		return ps.leaf(p)
	case depth >= MaxDepth:
		ps.problem(int(p.HeaderStart), "nesting too deep, multipart kept as one part")
		toOctet(p)
		return ps.leaf(p)
	case ps.nparts >= MaxParts:
		ps.capParts(int(p.HeaderStart))
		toOctet(p)
		return ps.leaf(p)
	}
	delim := make([]byte, 0, 2+len(boundary))
	delim = append(append(delim, "--"...), boundary...)
	ps.bounds = append(ps.bounds, delim)
	level := len(ps.bounds) - 1
	digest := p.MediaSubtype == "digest"

	// The preamble before the first delimiter is ignored (RFC 2046 §5.1.1).
	stop, lvl, isClose := ps.nextDelim(int(p.BodyStart))
	skipped := false
	for lvl == level && !isClose {
		childStart := lineEnd(ps.raw, stop)
		if ps.nparts >= MaxParts {
			ps.capParts(stop)
			skipped = true
			stop, lvl, isClose = ps.nextDelim(childStart)
			continue
		}
		ps.nparts++
		p.Parts = append(p.Parts, Part{})
		stop = ps.entity(&p.Parts[len(p.Parts)-1], childStart, depth+1, false, digest)
		lvl, isClose = ps.delimInfo(stop)
	}
	ps.bounds = ps.bounds[:level]

	if len(p.Parts) == 0 {
		if skipped {
			toOctet(p)
		} else {
			ps.problem(int(p.BodyStart), "multipart without parts, read as text/plain")
			ps.toText(p)
		}
		return ps.leaf(p)
	}
	if lvl == level {
		// Close delimiter: the epilogue runs to the enclosing delimiter.
		stop, _, _ = ps.nextDelim(lineEnd(ps.raw, stop))
	} else {
		ps.problem(stop, "multipart without close delimiter")
	}
	ps.finish(p, stop)
	return stop
}

// message parses the message embedded in a message/rfc822 or
// message/global part (RFC 2046 §5.2.1, RFC 6532 §3.5) in place.
func (ps *parser) message(p *Part, depth int) int {
	switch {
	case p.Encoding != "" && p.Encoding != "7bit" && p.Encoding != "8bit" && p.Encoding != "binary":
		// Its bytes are not in raw as such; there are no offsets to give.
		ps.problem(int(p.HeaderStart), "encoded "+p.ContentType()+" kept as one part")
		toOctet(p)
		return ps.leaf(p)
	case depth >= MaxDepth:
		ps.problem(int(p.HeaderStart), "nesting too deep, message kept as one part")
		toOctet(p)
		return ps.leaf(p)
	case ps.nparts >= MaxParts:
		ps.capParts(int(p.HeaderStart))
		toOctet(p)
		return ps.leaf(p)
	}
	ps.nparts++
	m := &Part{}
	stop := ps.entity(m, int(p.BodyStart), depth+1, true, false)
	p.Message = m
	ps.finish(p, stop)
	return stop
}

// leaf finds the end of a body that has no structure of its own.
func (ps *parser) leaf(p *Part) int {
	stop, _, _ := ps.nextDelim(int(p.BodyStart))
	ps.finish(p, stop)
	return stop
}

// finish sets p's end from stop. The line break before a delimiter line
// belongs to the delimiter (RFC 2046 §5.1.1); starts that would lie past
// the end are pulled back to it, so an empty part ending at a delimiter
// stays inside its parent.
func (ps *parser) finish(p *Part, stop int) {
	end := stop
	if stop < len(ps.raw) {
		end -= lineBreakBefore(ps.raw, stop)
	}
	e := int64(end)
	p.BodyStart = min(p.BodyStart, e)
	p.HeaderStart = min(p.HeaderStart, e)
	p.BodyEnd = e
	if hasLines(p.MediaType, p.MediaSubtype) {
		p.Lines = countLines(ps.raw[p.BodyStart:p.BodyEnd])
	}
}

func lineBreakBefore(b []byte, pos int) int {
	switch {
	case pos >= 2 && b[pos-2] == '\r' && b[pos-1] == '\n':
		return 2
	case pos >= 1 && b[pos-1] == '\n':
		return 1
	}
	return 0
}

// countLines counts line breaks, plus one for a last line without one.
func countLines(b []byte) int64 {
	n := int64(bytes.Count(b, []byte{'\n'}))
	if len(b) > 0 && b[len(b)-1] != '\n' {
		n++
	}
	return n
}

// delimAt reports whether the line at pos is a delimiter line of an open
// multipart, innermost first: "--" boundary, "--" for the close delimiter,
// then only transport padding up to the line end (RFC 2046 §5.1.1). A
// boundary followed by other text ("--b_alt" for boundary "b") does not
// match, which keeps similar nested boundaries apart.
func (ps *parser) delimAt(pos int) (level int, isClose, ok bool) {
	line := ps.raw[pos:]
	if len(line) < 2 || line[0] != '-' || line[1] != '-' {
		return -1, false, false
	}
	for i := len(ps.bounds) - 1; i >= 0; i-- {
		d := ps.bounds[i]
		if !bytes.HasPrefix(line, d) {
			continue
		}
		rest := line[len(d):]
		cl := false
		if len(rest) >= 2 && rest[0] == '-' && rest[1] == '-' {
			rest, cl = rest[2:], true
		}
		j := 0
		for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t' || rest[j] == '\r') {
			j++
		}
		if j == len(rest) || rest[j] == '\n' {
			return i, cl, true
		}
	}
	return -1, false, false
}

func (ps *parser) delimInfo(pos int) (level int, isClose bool) {
	if pos >= len(ps.raw) {
		return -1, false
	}
	level, isClose, _ = ps.delimAt(pos)
	return level, isClose
}

var nlDashDash = []byte("\n--")

// nextDelim finds the first delimiter line at or after pos, a line start.
// At the end of raw it returns len(raw) and level -1.
func (ps *parser) nextDelim(pos int) (stop, level int, isClose bool) {
	raw := ps.raw
	if len(ps.bounds) == 0 {
		return len(raw), -1, false
	}
	for pos < len(raw) {
		if lvl, cl, ok := ps.delimAt(pos); ok {
			return pos, lvl, cl
		}
		i := bytes.Index(raw[pos:], nlDashDash)
		if i < 0 {
			break
		}
		pos += i + 1
	}
	return len(raw), -1, false
}
