package message

import (
	"sort"
	"strconv"
	"strings"
)

// isTokenChar reports whether c may appear in an RFC 2045 §5.1 token: any
// US-ASCII CHAR except SPACE, CTLs and tspecials.
func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune(`()<>@,;:\"/[]?=`, rune(c))
}

// valueParser walks one unfolded structured header value.
type valueParser struct {
	s        string
	pos      int
	problems []string
}

func (v *valueParser) problem(s string) { v.problems = append(v.problems, s) }

// skipCFWS skips white space and RFC 5322 comments (RFC 2045 §5.1 allows
// comments in structured MIME fields). Unbalanced parentheses end at the
// end of the value.
func (v *valueParser) skipCFWS() {
	for v.pos < len(v.s) {
		c := v.s[v.pos]
		switch {
		case isWSP(c) || c == '\r' || c == '\n':
			v.pos++
		case c == '(':
			v.skipComment()
		default:
			return
		}
	}
}

// skipComment skips a comment starting at v.pos and returns its text.
func (v *valueParser) skipComment() string {
	start := v.pos + 1
	depth := 0
	for v.pos < len(v.s) {
		switch v.s[v.pos] {
		case '\\':
			v.pos++
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				v.pos++
				return v.s[start : v.pos-1]
			}
		}
		v.pos++
	}
	v.problem("unterminated comment")
	if start > len(v.s) {
		return ""
	}
	return v.s[start:]
}

// token reads a run of token characters.
func (v *valueParser) token() string {
	start := v.pos
	for v.pos < len(v.s) && isTokenChar(v.s[v.pos]) {
		v.pos++
	}
	return v.s[start:v.pos]
}

// quoted reads a quoted-string at v.pos (which holds '"') and returns its
// content with quoted-pairs resolved (RFC 5322 §3.2.4). A missing closing
// quote takes the rest of the value.
func (v *valueParser) quoted() string {
	v.pos++
	start := v.pos
	var b []byte // only allocated when a quoted-pair or line break occurs
	for v.pos < len(v.s) {
		c := v.s[v.pos]
		switch c {
		case '"':
			v.pos++
			if b == nil {
				return v.s[start : v.pos-1]
			}
			return string(b)
		case '\\':
			if b == nil {
				b = append(make([]byte, 0, len(v.s)-start), v.s[start:v.pos]...)
			}
			if v.pos+1 < len(v.s) {
				v.pos++
				c = v.s[v.pos]
			}
		}
		if b != nil {
			b = append(b, c)
		}
		v.pos++
	}
	v.problem("missing closing quote")
	if b == nil {
		return v.s[start:]
	}
	return string(b)
}

// parseContentType parses a Content-Type value (RFC 2045 §5.1). ok is false
// when no usable type/subtype is found; params are still returned.
func parseContentType(s string) (typ, sub string, params []Param, problems []string, ok bool) {
	v := valueParser{s: s}
	v.skipCFWS()
	typ = v.token()
	v.skipCFWS()
	if v.pos < len(v.s) && v.s[v.pos] == '/' {
		v.pos++
		v.skipCFWS()
		sub = v.token()
		ok = typ != "" && sub != ""
	}
	v.skipJunk("junk after media type")
	if !ok {
		v.problem("unusable media type")
	}
	params = v.params()
	return lowerString(typ), lowerString(sub), params, v.problems, ok
}

// parseDisposition parses a Content-Disposition value (RFC 2183 §2).
func parseDisposition(s string) (typ string, params []Param, problems []string) {
	v := valueParser{s: s}
	v.skipCFWS()
	typ = v.token()
	v.skipCFWS()
	v.skipJunk("junk after disposition type")
	params = v.params()
	return lowerString(typ), params, v.problems
}

// skipJunk moves to the next ";" or to the end, unless a parameter follows
// with its ";" missing ("application/pdf name=x.pdf"), which params then
// reads. Lenient for "text/plain>" and the like.
func (v *valueParser) skipJunk(what string) {
	v.skipCFWS()
	if v.pos >= len(v.s) || v.s[v.pos] == ';' {
		return
	}
	if v.looksLikeParam() {
		v.problem("missing ';' before parameter")
		return
	}
	v.problem(what)
	v.skipTo(';')
}

// looksLikeParam reports whether "token=" starts at v.pos.
func (v *valueParser) looksLikeParam() bool {
	i := v.pos
	for i < len(v.s) && isTokenChar(v.s[i]) {
		i++
	}
	if i == v.pos {
		return false
	}
	for i < len(v.s) && isWSP(v.s[i]) {
		i++
	}
	return i < len(v.s) && v.s[i] == '='
}

// skipTo moves to the next c outside quotes and comments, or to the end. It
// reports whether anything was skipped or found.
func (v *valueParser) skipTo(c byte) bool {
	start := v.pos
	for v.pos < len(v.s) && v.s[v.pos] != c {
		switch v.s[v.pos] {
		case '"':
			v.quoted()
			continue
		case '(':
			v.skipComment()
			continue
		}
		v.pos++
	}
	return v.pos > start || v.pos < len(v.s)
}

// rawParam is one parameter as written, before RFC 2231 assembly.
type rawParam struct {
	name     string // lower-case, without "*N" / "*"
	section  int    // -1 when the name has no "*N" section
	extended bool   // the name ended in "*": value is charset'lang'%XX
	value    string
	order    int
}

// params parses "; name=value" pairs (RFC 2045 §5.1) with RFC 2231
// continuations and charset decoding. Leniency: values without quotes may
// hold tspecials and spaces up to the next ";"; a parameter without "="
// is skipped; a duplicate keeps the first value; an RFC 2231 form of a name
// wins over the plain form.
func (v *valueParser) params() []Param {
	var raws []rawParam
	for v.pos < len(v.s) {
		if v.s[v.pos] == ';' {
			v.pos++
		} else if !v.looksLikeParam() {
			// Junk after a value: skip it.
			v.problem("junk after parameter")
			v.skipTo(';')
			continue
		}
		v.skipCFWS()
		if v.pos >= len(v.s) {
			break
		}
		if v.s[v.pos] == ';' {
			continue // empty parameter, e.g. "text/html;;"
		}
		nameStart := v.pos
		for v.pos < len(v.s) && v.s[v.pos] != '=' && v.s[v.pos] != ';' {
			v.pos++
		}
		name := strings.TrimSpace(v.s[nameStart:v.pos])
		if v.pos >= len(v.s) || v.s[v.pos] != '=' || name == "" {
			v.problem("parameter without value")
			continue
		}
		v.pos++ // '='
		v.skipWSP()
		var value string
		if v.pos < len(v.s) && v.s[v.pos] == '"' {
			value = v.quoted()
			// Anything between the closing quote and ';' is junk.
			v.skipCFWS()
		} else {
			start := v.pos
			for v.pos < len(v.s) && v.s[v.pos] != ';' {
				v.pos++
			}
			value = strings.TrimRight(v.s[start:v.pos], " \t\r\n")
		}
		if len(raws) >= 4*MaxParams {
			v.problem("too many parameters")
			break
		}
		raws = append(raws, splitParamName(name, value, len(raws)))
	}
	return v.assemble(raws)
}

func (v *valueParser) skipWSP() {
	for v.pos < len(v.s) && (isWSP(v.s[v.pos]) || v.s[v.pos] == '\r' || v.s[v.pos] == '\n') {
		v.pos++
	}
}

// splitParamName splits an RFC 2231 §3/§4 parameter name "name*N*".
func splitParamName(name, value string, order int) rawParam {
	p := rawParam{name: lowerString(name), section: -1, value: value, order: order}
	if !strings.HasSuffix(p.name, "*") && !strings.Contains(p.name, "*") {
		return p
	}
	n := p.name
	if strings.HasSuffix(n, "*") {
		p.extended = true
		n = n[:len(n)-1]
	}
	if i := strings.LastIndexByte(n, '*'); i >= 0 {
		if sec, err := strconv.Atoi(n[i+1:]); err == nil && sec >= 0 && sec < 1000 {
			p.section = sec
			n = n[:i]
		}
	}
	p.name = n
	return p
}

// assemble joins RFC 2231 continuations and keeps the first of duplicate
// names, in order of first appearance.
func (v *valueParser) assemble(raws []rawParam) []Param {
	if len(raws) == 0 {
		return nil
	}
	simple := true
	for _, r := range raws {
		if r.section >= 0 || r.extended {
			simple = false
			break
		}
	}
	out := make([]Param, 0, len(raws))
	if simple {
		for _, r := range raws {
			if hasParam(out, r.name) {
				v.problem("duplicate parameter " + strconv.Quote(r.name))
				continue
			}
			if len(out) == MaxParams {
				v.problem("too many parameters")
				break
			}
			out = append(out, Param{Name: r.name, Value: r.value})
		}
		return out
	}
	// Group by name; within a name, the RFC 2231 form wins over the plain one.
	type group struct {
		order   int
		plain   *rawParam
		ext     []rawParam // sections, or one unsectioned extended value
		dupSeen bool
	}
	groups := map[string]*group{}
	var names []string
	for i := range raws {
		r := &raws[i]
		g := groups[r.name]
		if g == nil {
			g = &group{order: r.order}
			groups[r.name] = g
			names = append(names, r.name)
		}
		if r.section < 0 && !r.extended {
			if g.plain != nil {
				g.dupSeen = true
			} else {
				g.plain = r
			}
			continue
		}
		g.ext = append(g.ext, *r)
	}
	for _, name := range names {
		g := groups[name]
		if g.dupSeen {
			v.problem("duplicate parameter " + strconv.Quote(name))
		}
		value := ""
		if len(g.ext) > 0 {
			value = v.join2231(g.ext)
		} else {
			value = g.plain.value
		}
		if len(out) == MaxParams {
			v.problem("too many parameters")
			break
		}
		out = append(out, Param{Name: name, Value: value})
	}
	return out
}

func hasParam(ps []Param, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// join2231 joins the sections of one RFC 2231 parameter (§3) and decodes
// the extended ones (§4): the first section carries charset'language', the
// rest of every extended section is %XX-encoded in that charset.
func (v *valueParser) join2231(secs []rawParam) string {
	sort.SliceStable(secs, func(i, j int) bool { return secs[i].section < secs[j].section })
	charset := ""
	var buf []byte
	last := -2
	for i, s := range secs {
		if s.section == last {
			v.problem("duplicate parameter section " + s.name)
			continue
		}
		if s.section != last+1 && !(i == 0 && s.section <= 0) {
			v.problem("missing parameter section " + s.name)
		}
		last = s.section
		val := s.value
		if s.extended {
			if i == 0 {
				// charset'language'value; lenient when the quotes are missing.
				if a := strings.IndexByte(val, '\''); a >= 0 {
					if b := strings.IndexByte(val[a+1:], '\''); b >= 0 {
						charset = val[:a]
						val = val[a+1+b+1:]
					}
				}
			}
			buf = appendPercentDecoded(buf, val)
		} else {
			buf = append(buf, val...)
		}
	}
	return decodeCharset(charset, buf)
}

// appendPercentDecoded decodes %XX escapes; a malformed escape is kept.
func appendPercentDecoded(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			if h, ok := unhex(s[i+1]); ok {
				if l, ok := unhex(s[i+2]); ok {
					dst = append(dst, h<<4|l)
					i += 2
					continue
				}
			}
		}
		dst = append(dst, c)
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// parseLanguage splits a Content-Language value into tags (RFC 3282 §2).
func parseLanguage(s string) []string {
	var out []string
	v := valueParser{s: s}
	for v.pos < len(v.s) && len(out) < MaxParams {
		v.skipCFWS()
		start := v.pos
		for v.pos < len(v.s) && v.s[v.pos] != ',' && v.s[v.pos] != '(' && !isWSP(v.s[v.pos]) {
			v.pos++
		}
		if v.pos > start {
			out = append(out, v.s[start:v.pos])
		}
		v.skipCFWS()
		if v.pos < len(v.s) && v.s[v.pos] == ',' {
			v.pos++
		} else if v.pos < len(v.s) && v.pos == start {
			v.pos++ // junk; move on
		}
	}
	return out
}

// parseEncoding returns the lower-cased Content-Transfer-Encoding mechanism
// (RFC 2045 §6.1), without comments.
func parseEncoding(s string) string {
	v := valueParser{s: s}
	v.skipCFWS()
	start := v.pos
	for v.pos < len(v.s) && !isWSP(v.s[v.pos]) && v.s[v.pos] != '(' && v.s[v.pos] != ';' {
		v.pos++
	}
	return lowerString(v.s[start:v.pos])
}
