package message

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the first byte of the encoding MarshalBinary writes. Unmarshal
// reads this version only; a future version gets a new number and
// Unmarshal keeps reading the old ones.
const Version = 1

// ErrCorrupt is wrapped by Unmarshal for input that is not a valid
// encoding; ErrVersion for an encoding of an unknown version.
var (
	ErrCorrupt = errors.New("message: corrupt part encoding")
	ErrVersion = errors.New("message: unknown part encoding version")
)

// Flags of one encoded part: which optional fields follow. The most common
// fields have the low bits, so flags usually take one byte; the order of
// the fields in the encoding is given in the package comment.
const (
	fLines = 1 << iota
	fParams
	fEncoding
	fDisposition
	fEnvelope
	fParts
	fID
	fDescription
	fMD5
	fLanguage
	fLocation
	fMessage
	fAll = 1<<iota - 1
)

// maxOffset bounds every offset and length, so sums cannot overflow.
const maxOffset = 1 << 40

// dict holds strings common in MIME headers; an encoded string that equals
// one is written as its index. SPEC: this list is part of version 1:
// entries are never changed, removed or reordered.
var dict = [...]string{
	"text", "plain", "html", "multipart", "mixed", "alternative", "related", "application",
	"octet-stream", "image", "message", "rfc822", "charset", "us-ascii", "utf-8", "UTF-8",
	"boundary", "name", "filename", "7bit", "8bit", "base64", "quoted-printable", "binary",
	"inline", "attachment", "iso-8859-1", "ISO-8859-1", "pdf", "jpeg", "png", "gif",
	"signed", "report", "delivery-status", "windows-1252", "calendar", "format", "flowed", "delsp",
	"yes", "type", "size", "creation-date", "modification-date", "en-US", "global", "digest",
	"pgp-signature", "ms-tnef", "zip", "msword", "x-zip-compressed", "protocol", "micalg", "report-type",
	"application/pgp-signature", "method", "REQUEST", "ics", "vnd.ms-excel", "rfc822-headers", "pkcs7-signature", "x-pkcs7-signature",
	"smime.p7s", "svg+xml", "webp", "csv", "disposition-notification", "US-ASCII", "iso-8859-15", "koi8-r",
	"windows-1251", "gb2312", "big5", "shift_jis", "iso-2022-jp", "euc-kr", "x-unix-mode", "0644",
	"vnd.openxmlformats-officedocument.wordprocessingml.document",
	"vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"vnd.openxmlformats-officedocument.presentationml.presentation",
	"text/html", "text/plain", "multipart/alternative", "reply-type", "original",
}

var dictIndex = func() map[string]int {
	m := make(map[string]int, len(dict))
	for i, s := range dict {
		if _, dup := m[s]; dup {
			panic("message: duplicate dictionary entry " + s)
		}
		m[s] = i
	}
	return m
}()

// MarshalBinary encodes the Part tree p (see the package comment for the
// format). It fails only for a tree that Parse cannot have produced, such
// as one with offsets out of order.
func (p *Part) MarshalBinary() ([]byte, error) {
	e := encoder{buf: make([]byte, 0, 256)}
	e.buf = append(e.buf, Version)
	if err := e.part(p, 0, 0); err != nil {
		return nil, err
	}
	return e.buf, nil
}

type encoder struct{ buf []byte }

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

func (e *encoder) str(s string) {
	if i, ok := dictIndex[s]; ok {
		e.uvarint(uint64(i)<<1 | 1)
		return
	}
	e.uvarint(uint64(len(s)) << 1)
	e.buf = append(e.buf, s...)
}

func (e *encoder) params(ps []Param) {
	e.uvarint(uint64(len(ps)))
	for _, p := range ps {
		e.str(p.Name)
		e.str(p.Value)
	}
}

func (e *encoder) addrs(as []Address) {
	e.uvarint(uint64(len(as)))
	for _, a := range as {
		e.str(a.Name)
		e.str(a.Route)
		e.str(a.Mailbox)
		e.str(a.Host)
	}
}

func (e *encoder) part(p *Part, base int64, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("message: marshal: nesting deeper than %d", MaxDepth)
	}
	if p.HeaderStart < base || p.BodyStart < p.HeaderStart || p.BodyEnd < p.BodyStart || p.BodyEnd > maxOffset {
		return fmt.Errorf("message: marshal: offsets %d/%d/%d out of order", p.HeaderStart, p.BodyStart, p.BodyEnd)
	}
	var flags uint64
	set := func(f uint64, ok bool) {
		if ok {
			flags |= f
		}
	}
	set(fLines, p.Lines != 0)
	set(fParams, len(p.Params) > 0)
	set(fEncoding, p.Encoding != "")
	set(fDisposition, p.Disposition != "" || len(p.DispositionParams) > 0)
	set(fEnvelope, p.Envelope != nil)
	set(fParts, len(p.Parts) > 0)
	set(fID, p.ID != "")
	set(fDescription, p.Description != "")
	set(fMD5, p.MD5 != "")
	set(fLanguage, len(p.Language) > 0)
	set(fLocation, p.Location != "")
	set(fMessage, p.Message != nil)
	e.uvarint(flags)
	e.uvarint(uint64(p.HeaderStart - base))
	e.uvarint(uint64(p.BodyStart - p.HeaderStart))
	e.uvarint(uint64(p.BodyEnd - p.BodyStart))
	e.str(p.MediaType)
	e.str(p.MediaSubtype)
	if flags&fLines != 0 {
		if p.Lines < 0 || p.Lines > maxOffset {
			return fmt.Errorf("message: marshal: line count %d", p.Lines)
		}
		e.uvarint(uint64(p.Lines))
	}
	if flags&fParams != 0 {
		e.params(p.Params)
	}
	if flags&fEncoding != 0 {
		e.str(p.Encoding)
	}
	if flags&fDisposition != 0 {
		e.str(p.Disposition)
		e.params(p.DispositionParams)
	}
	if flags&fEnvelope != 0 {
		env := p.Envelope
		e.str(env.Date)
		e.str(env.Subject)
		e.addrs(env.From)
		e.addrs(env.Sender)
		e.addrs(env.ReplyTo)
		e.addrs(env.To)
		e.addrs(env.Cc)
		e.addrs(env.Bcc)
		e.str(env.InReplyTo)
		e.str(env.MessageID)
	}
	if flags&fID != 0 {
		e.str(p.ID)
	}
	if flags&fDescription != 0 {
		e.str(p.Description)
	}
	if flags&fMD5 != 0 {
		e.str(p.MD5)
	}
	if flags&fLanguage != 0 {
		e.uvarint(uint64(len(p.Language)))
		for _, l := range p.Language {
			e.str(l)
		}
	}
	if flags&fLocation != 0 {
		e.str(p.Location)
	}
	if flags&fParts != 0 {
		e.uvarint(uint64(len(p.Parts)))
		b := p.BodyStart
		for i := range p.Parts {
			c := &p.Parts[i]
			if err := e.part(c, b, depth+1); err != nil {
				return err
			}
			if c.BodyEnd > p.BodyEnd {
				return fmt.Errorf("message: marshal: part ends after its parent")
			}
			b = c.BodyEnd
		}
	}
	if flags&fMessage != 0 {
		if err := e.part(p.Message, p.BodyStart, depth+1); err != nil {
			return err
		}
		if p.Message.BodyEnd > p.BodyEnd {
			return fmt.Errorf("message: marshal: message ends after its part")
		}
	}
	return nil
}

// Unmarshal decodes what MarshalBinary wrote. It never panics; for input it
// did not write it returns an error wrapping ErrCorrupt or ErrVersion. The
// tree it returns keeps the invariants Parse guarantees (offsets in order
// and nested, MaxDepth, MaxParts, multipart exactly when Parts is
// non-empty, message/rfc822 or message/global exactly when Message is
// set). It allocates at most MaxParts parts, and strings, parameters and
// addresses in proportion to len(b).
func Unmarshal(b []byte) (*Part, error) {
	return unmarshal(b, false)
}

// UnmarshalRoot decodes only the root's own fields from a structure
// Marshal made: its type, offsets, parameters and envelope, without its
// parts (Parts and Message stay nil). It is what a FETCH of ENVELOPE
// needs; decoding every part for it cost a fifth of such a FETCH.
func UnmarshalRoot(b []byte) (*Part, error) {
	return unmarshal(b, true)
}

func unmarshal(b []byte, rootOnly bool) (*Part, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: version %d", ErrVersion, b[0])
	}
	// The strings are cut from one copy of the input, not copied each.
	all := string(b[1:])
	d := decoder{b: b[1:], all: all, slots: 1, rootOnly: rootOnly}
	p := &Part{}
	d.part(p, 0, 0)
	if d.err == nil && len(d.b) > 0 && !rootOnly {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	return p, nil
}

type decoder struct {
	b   []byte // what is left to decode
	all string // the whole input: b is its tail
	err error
	// slots counts the Parts allocated so far, the root included. Counting
	// at allocation rather than at decoding bounds memory even when nested
	// parts each claim many children before failing.
	slots int
	// rootOnly stops after the root's own fields (UnmarshalRoot).
	rootOnly bool
}

// reserve accounts for n more Parts, at most MaxParts in all.
func (d *decoder) reserve(n int) bool {
	if d.slots+n > MaxParts {
		d.fail("more than %d parts", MaxParts)
		return false
	}
	d.slots += n
	return true
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// offset reads a length or offset, bounded by maxOffset.
func (d *decoder) offset() int64 {
	v := d.uvarint()
	if v > maxOffset {
		d.fail("offset %d too large", v)
		return 0
	}
	return int64(v)
}

// count reads an element count, each element taking at least min bytes.
func (d *decoder) count(max, min int) int {
	v := d.uvarint()
	if v > uint64(max) || v*uint64(min) > uint64(len(d.b)) {
		d.fail("count %d too large", v)
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	v := d.uvarint()
	if d.err != nil {
		return ""
	}
	if v&1 == 1 {
		i := v >> 1
		if i >= uint64(len(dict)) {
			d.fail("dictionary index %d", i)
			return ""
		}
		return dict[i]
	}
	n := v >> 1
	if n > uint64(len(d.b)) {
		d.fail("string length %d", n)
		return ""
	}
	off := len(d.all) - len(d.b)
	d.b = d.b[n:]
	return d.all[off : off+int(n)]
}

func (d *decoder) params() []Param {
	n := d.count(MaxParams, 2)
	if n == 0 {
		return nil
	}
	ps := make([]Param, n)
	for i := range ps {
		ps[i].Name = d.str()
		ps[i].Value = d.str()
	}
	return ps
}

func (d *decoder) addrs() []Address {
	n := d.count(maxAddresses, 4)
	if n == 0 {
		return nil
	}
	as := make([]Address, n)
	for i := range as {
		as[i] = Address{Name: d.str(), Route: d.str(), Mailbox: d.str(), Host: d.str()}
	}
	return as
}

func (d *decoder) part(p *Part, base int64, depth int) {
	if depth > MaxDepth {
		d.fail("nesting deeper than %d", MaxDepth)
		return
	}
	flags := d.uvarint()
	if flags&^fAll != 0 {
		d.fail("unknown flags %#x", flags)
		return
	}
	p.HeaderStart = base + d.offset()
	p.BodyStart = p.HeaderStart + d.offset()
	p.BodyEnd = p.BodyStart + d.offset()
	if p.BodyEnd > maxOffset {
		d.fail("offset too large")
	}
	p.MediaType = d.str()
	p.MediaSubtype = d.str()
	if d.err == nil && (p.MediaType == "" || p.MediaSubtype == "") {
		d.fail("empty media type")
	}
	if flags&fLines != 0 {
		p.Lines = d.offset()
	}
	if flags&fParams != 0 {
		p.Params = d.params()
	}
	if flags&fEncoding != 0 {
		p.Encoding = d.str()
	}
	if flags&fDisposition != 0 {
		p.Disposition = d.str()
		p.DispositionParams = d.params()
	}
	if flags&fEnvelope != 0 && d.err == nil {
		p.Envelope = &Envelope{
			Date:    d.str(),
			Subject: d.str(),
			From:    d.addrs(),
			Sender:  d.addrs(),
			ReplyTo: d.addrs(),
			To:      d.addrs(),
			Cc:      d.addrs(),
			Bcc:     d.addrs(),
		}
		p.Envelope.InReplyTo = d.str()
		p.Envelope.MessageID = d.str()
	}
	if flags&fID != 0 {
		p.ID = d.str()
	}
	if flags&fDescription != 0 {
		p.Description = d.str()
	}
	if flags&fMD5 != 0 {
		p.MD5 = d.str()
	}
	if flags&fLanguage != 0 {
		if n := d.count(MaxParams, 1); n > 0 {
			p.Language = make([]string, n)
			for i := range p.Language {
				p.Language[i] = d.str()
			}
		}
	}
	if flags&fLocation != 0 {
		p.Location = d.str()
	}
	if d.rootOnly && depth == 0 {
		return
	}
	if (flags&fParts != 0) != (p.MediaType == "multipart") {
		d.fail("multipart and parts disagree")
	}
	if flags&fParts != 0 && d.err == nil {
		n := d.count(MaxParts, 6) // a part takes at least 6 bytes
		if n == 0 {
			d.fail("multipart without parts")
		}
		if !d.reserve(n) {
			return
		}
		p.Parts = make([]Part, n)
		b := p.BodyStart
		for i := range p.Parts {
			c := &p.Parts[i]
			d.part(c, b, depth+1)
			if d.err != nil {
				return
			}
			if c.BodyEnd > p.BodyEnd {
				d.fail("part ends after its parent")
				return
			}
			b = c.BodyEnd
		}
	}
	if (flags&fMessage != 0) != isMessageType(p.MediaType, p.MediaSubtype) {
		d.fail("message type and embedded message disagree")
	}
	if flags&fMessage != 0 && d.err == nil && d.reserve(1) {
		p.Message = &Part{}
		d.part(p.Message, p.BodyStart, depth+1)
		if d.err == nil && p.Message.BodyEnd > p.BodyEnd {
			d.fail("message ends after its part")
		}
		if d.err == nil && p.Message.Envelope == nil {
			d.fail("embedded message without envelope")
		}
	}
}
