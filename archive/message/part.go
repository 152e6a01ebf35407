package message

import (
	"fmt"
	"strings"
)

// Limits that bound the work Parse does and the size of what Unmarshal
// accepts. They are part of the stored format's contract: a Part tree that
// Parse produces always fits them.
const (
	// MaxDepth is the deepest nesting of parts: the root is at depth 0, each
	// multipart child and each embedded message one deeper. A multipart or
	// message/rfc822 part at this depth is kept as a leaf.
	MaxDepth = 50
	// MaxParts is the most Part values one message yields, the root and
	// embedded messages included. Later parts are not recorded; their bytes
	// stay inside the enclosing part.
	MaxParts = 10000
	// MaxParams is the most parameters kept per Content-Type or
	// Content-Disposition field.
	MaxParams = 64
	// maxProblems bounds the Problems Parse reports for one message.
	maxProblems = 100
)

// Problem records one thing Parse found malformed. Problems are warnings:
// the message is archived byte for byte regardless.
type Problem struct {
	Offset int64  // byte offset in raw where the problem was noticed
	Text   string // short description, lower case, no offset
}

func (p Problem) String() string { return fmt.Sprintf("offset %d: %s", p.Offset, p.Text) }

// Param is one parameter of a Content-Type or Content-Disposition field.
type Param struct {
	// Name is lower-cased, without RFC 2231 section or "*" markers.
	Name string
	// Value is unquoted. RFC 2231 continuations are joined and
	// percent-encoded values decoded to UTF-8; RFC 2047 encoded words that
	// some mailers put in quoted values are left as they are (see
	// Part.Filename for the decoded file name).
	Value string
}

// Part is one MIME entity: the whole message, a part of a multipart, or a
// message embedded in a message/rfc822 part. All offsets are absolute byte
// offsets into the raw message given to Parse, also for parts of embedded
// messages, and always satisfy
//
//	HeaderStart <= BodyStart <= BodyEnd
//
// with every child's range inside its parent's body and siblings in order.
//
// The raw header block is raw[HeaderStart:BodyStart], including the blank
// line that ends it when there is one. The body is raw[BodyStart:BodyEnd];
// per RFC 2046 §5.1.1 the line break before a boundary delimiter belongs to
// the delimiter, not to the body.
type Part struct {
	HeaderStart int64
	BodyStart   int64
	BodyEnd     int64

	// MediaType and MediaSubtype are lower-case and never empty. An absent or
	// unusable Content-Type yields text/plain with charset=us-ascii (RFC 2045
	// §5.2); inside multipart/digest the default is message/rfc822 (RFC 2046
	// §5.1.5). A multipart that yields no parts (no boundary parameter, no
	// delimiter line) becomes text/plain; one cut by MaxDepth or MaxParts
	// becomes application/octet-stream. So MediaType is "multipart" exactly
	// when Parts is non-empty, and "message" with subtype "rfc822" or
	// "global" exactly when Message is non-nil.
	MediaType    string
	MediaSubtype string
	// Params are the Content-Type parameters in order of first appearance;
	// a duplicate name keeps the first value.
	Params []Param

	ID                string   // Content-ID, unfolded and trimmed (RFC 2045 §7)
	Description       string   // Content-Description, unfolded; RFC 2047 words left encoded (RFC 2045 §8)
	Encoding          string   // Content-Transfer-Encoding, lower-case; "" when absent, meaning 7bit (RFC 2045 §6.1)
	MD5               string   // Content-MD5 (RFC 1864)
	Disposition       string   // Content-Disposition type, lower-case; "" when absent (RFC 2183)
	DispositionParams []Param  // Content-Disposition parameters
	Language          []string // Content-Language tags (RFC 3282)
	Location          string   // Content-Location (RFC 2557)

	// Lines is the number of lines of the body, as BODYSTRUCTURE reports for
	// text/* and message/rfc822 (RFC 9051 §7.5.2): line breaks, plus one for
	// a last line without one. It is zero for other media types.
	Lines int64

	// Envelope is set on the root and on every embedded message.
	Envelope *Envelope
	// Parts are the children of a multipart, never empty for one.
	Parts []Part
	// Message is the message embedded in a message/rfc822 or message/global
	// part; its HeaderStart is the part's BodyStart and it ends where the
	// part's body ends.
	Message *Part
}

// Size is the body size in octets as BODYSTRUCTURE's body-fld-octets
// reports it: the encoded body, without the line break that belongs to a
// following boundary delimiter.
func (p *Part) Size() int64 { return p.BodyEnd - p.BodyStart }

// Header returns the raw header block of p, blank line included when
// present. raw must be the message p was parsed from.
func (p *Part) Header(raw []byte) []byte { return raw[p.HeaderStart:p.BodyStart:p.BodyStart] }

// Body returns the raw (still transfer-encoded) body of p.
func (p *Part) Body(raw []byte) []byte { return raw[p.BodyStart:p.BodyEnd:p.BodyEnd] }

// ContentType returns "type/subtype", lower-case.
func (p *Part) ContentType() string { return p.MediaType + "/" + p.MediaSubtype }

// Param returns the Content-Type parameter name (case-insensitive), or "".
func (p *Part) Param(name string) string { return lookupParam(p.Params, name) }

// DispositionParam returns the Content-Disposition parameter name, or "".
func (p *Part) DispositionParam(name string) string { return lookupParam(p.DispositionParams, name) }

func lookupParam(ps []Param, name string) string {
	for _, p := range ps {
		if asciiEqualFold(p.Name, name) {
			return p.Value
		}
	}
	return ""
}

// Charset returns the lower-cased charset parameter, "us-ascii" for text/*
// without one (RFC 2046 §4.1.2), and "" for other media types without one.
func (p *Part) Charset() string {
	if cs := p.Param("charset"); cs != "" {
		return strings.ToLower(strings.TrimSpace(cs))
	}
	if p.MediaType == "text" {
		return "us-ascii"
	}
	return ""
}

// Filename returns the part's file name for display and indexing: the
// Content-Disposition filename, else the Content-Type name (RFC 2183 §2.3),
// with RFC 2047 encoded words decoded and invalid UTF-8 repaired. It is ""
// when the part names no file.
func (p *Part) Filename() string {
	name := p.DispositionParam("filename")
	if name == "" {
		name = p.Param("name")
	}
	if name == "" {
		return ""
	}
	return DecodeHeader(name)
}

// IsAttachment reports whether the part is marked as an attachment or
// names a file.
func (p *Part) IsAttachment() bool {
	return p.Disposition == "attachment" || p.Filename() != ""
}

// Walk calls fn for p and every part below it, depth first, parents before
// children, a message/rfc822 part before its embedded message. If fn
// returns false, the parts below that part are skipped.
func (p *Part) Walk(fn func(*Part) bool) {
	if !fn(p) {
		return
	}
	for i := range p.Parts {
		p.Parts[i].Walk(fn)
	}
	if p.Message != nil {
		p.Message.Walk(fn)
	}
}

func (p *Part) isMultipart() bool { return p.MediaType == "multipart" && len(p.Parts) > 0 }

func isMessageType(typ, sub string) bool {
	return typ == "message" && (sub == "rfc822" || sub == "global")
}

// hasLines reports whether BODYSTRUCTURE carries a line count for the type.
func hasLines(typ, sub string) bool { return typ == "text" || isMessageType(typ, sub) }

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x != y && lowerASCII(x) != lowerASCII(y) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// lowerString lower-cases ASCII letters, without allocating when s is
// already lower-case.
func lowerString(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}
