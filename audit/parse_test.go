package audit

// Independent parsers for the formats the package writes, written from the
// specs (not from the escapers), so round trips test the escaping rules.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// cefRecord is a parsed CEF line.
type cefRecord struct {
	Header []string // Version, Vendor, Product, DeviceVersion, ClassID, Name, Severity
	Ext    map[string]string
}

// parseCEF parses "CEF:0|v|p|ver|id|name|sev|ext" (ArcSight CEF rev. 25).
func parseCEF(line string) (cefRecord, error) {
	var r cefRecord
	rest, ok := strings.CutPrefix(line, "CEF:")
	if !ok {
		return r, errors.New("no CEF: prefix")
	}
	// Header: 7 fields, '|'-separated, with \| and \\ escapes.
	var cur strings.Builder
	i := 0
	for len(r.Header) < 7 {
		if i >= len(rest) {
			return r, fmt.Errorf("header has %d fields", len(r.Header))
		}
		c := rest[i]
		switch {
		case c == '\\' && i+1 < len(rest) && (rest[i+1] == '|' || rest[i+1] == '\\'):
			cur.WriteByte(rest[i+1])
			i += 2
		case c == '\\':
			return r, fmt.Errorf("bad header escape at %d", i)
		case c == '|':
			r.Header = append(r.Header, cur.String())
			cur.Reset()
			i++
		case c == '\n' || c == '\r':
			return r, errors.New("newline in header")
		default:
			cur.WriteByte(c)
			i++
		}
	}
	ext, err := parseCEFExt(rest[i:])
	r.Ext = ext
	return r, err
}

// parseCEFExt parses "k=v k=v": a key is [A-Za-z0-9_]+ right after a space
// (or at the start) and before an unescaped '='; a value runs to the space
// before the next key.
func parseCEFExt(s string) (map[string]string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("raw newline in extension")
	}
	type kv struct{ key, start, end int }
	var eqs []int
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '=' {
			eqs = append(eqs, i)
		}
	}
	out := map[string]string{}
	var keys []kv
	for _, e := range eqs {
		k := e
		for k > 0 && isKeyByte(s[k-1]) {
			k--
		}
		if k == e || (k > 0 && s[k-1] != ' ') {
			return nil, fmt.Errorf("unescaped '=' at %d not after a key", e)
		}
		keys = append(keys, kv{k, e + 1, 0})
	}
	for i := range keys {
		if i+1 < len(keys) {
			keys[i].end = keys[i+1].key - 1 // the separating space
		} else {
			keys[i].end = len(s)
		}
		v, err := unescape(s[keys[i].start:keys[i].end], map[byte]byte{'\\': '\\', '=': '=', 'n': '\n', 'r': '\r'})
		if err != nil {
			return nil, err
		}
		key := s[keys[i].key : keys[i].start-1]
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("key %s twice", key)
		}
		out[key] = v
	}
	return out, nil
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func unescape(s string, esc map[byte]byte) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("dangling backslash")
		}
		r, ok := esc[s[i+1]]
		if !ok {
			return "", fmt.Errorf("unknown escape \\%c", s[i+1])
		}
		b.WriteByte(r)
		i++
	}
	return b.String(), nil
}

// leefRecord is a parsed LEEF 2.0 line.
type leefRecord struct {
	Header []string // Version, Vendor, Product, Version, EventID, Delimiter
	Attrs  map[string]string
}

// parseLEEF parses "LEEF:2.0|v|p|ver|id|delim|k=v<delim>k=v".
func parseLEEF(line string) (leefRecord, error) {
	var r leefRecord
	rest, ok := strings.CutPrefix(line, "LEEF:")
	if !ok {
		return r, errors.New("no LEEF: prefix")
	}
	var cur strings.Builder
	i := 0
	for len(r.Header) < 6 {
		if i >= len(rest) {
			return r, fmt.Errorf("header has %d fields", len(r.Header))
		}
		switch c := rest[i]; {
		case c == '\\' && i+1 < len(rest):
			cur.WriteByte(rest[i+1])
			i += 2
		case c == '|':
			r.Header = append(r.Header, cur.String())
			cur.Reset()
			i++
		default:
			cur.WriteByte(c)
			i++
		}
	}
	d := r.Header[5]
	var delim byte
	switch {
	case len(d) == 1:
		delim = d[0]
	case strings.HasPrefix(d, "x") || strings.HasPrefix(d, "0x"):
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(d, "0"), "x"), 16, 8)
		if err != nil {
			return r, fmt.Errorf("bad delimiter %q", d)
		}
		delim = byte(n)
	default:
		return r, fmt.Errorf("bad delimiter %q", d)
	}
	if strings.ContainsAny(rest[i:], "\r\n") {
		return r, errors.New("raw newline in attributes")
	}
	r.Attrs = map[string]string{}
	for _, a := range strings.Split(rest[i:], string(delim)) {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return r, fmt.Errorf("attribute %q without '='", a)
		}
		v, err := unescape(v, map[byte]byte{'\\': '\\', 't': '\t', 'n': '\n', 'r': '\r'})
		if err != nil {
			return r, err
		}
		r.Attrs[k] = v
	}
	return r, nil
}

// syslogMsg is a parsed RFC 5424 message.
type syslogMsg struct {
	PRI                                       int
	Timestamp, Host, App, ProcID, MsgID, SDID string
	Params                                    map[string]string
	Msg                                       string
	VersionOK                                 bool
	_                                         struct{}
}

// parseSyslog parses an RFC 5424 message with at most one SD element.
func parseSyslog(s string) (syslogMsg, error) {
	var m syslogMsg
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return m, fmt.Errorf("bad PRI %q", s[1:end])
	}
	m.PRI = pri
	f := strings.SplitN(s[end+1:], " ", 7)
	if len(f) < 7 || f[0] != "1" {
		return m, errors.New("not RFC 5424 (VERSION 1)")
	}
	m.VersionOK = true
	m.Timestamp, m.Host, m.App, m.ProcID, m.MsgID = f[1], f[2], f[3], f[4], f[5]
	rest := f[6]
	m.Params = map[string]string{}
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	} else {
		if !strings.HasPrefix(rest, "[") {
			return m, errors.New("no SD")
		}
		i := 1
		for i < len(rest) && rest[i] != ' ' && rest[i] != ']' {
			i++
		}
		m.SDID = rest[1:i]
		for rest[i] == ' ' {
			i++
			eq := strings.IndexByte(rest[i:], '=')
			name := rest[i : i+eq]
			i += eq + 1
			if rest[i] != '"' {
				return m, fmt.Errorf("param %s: no opening quote", name)
			}
			i++
			var v strings.Builder
			for ; rest[i] != '"'; i++ {
				if rest[i] == '\\' && (rest[i+1] == '"' || rest[i+1] == '\\' || rest[i+1] == ']') {
					i++
				} else if rest[i] == ']' {
					return m, fmt.Errorf("param %s: unescaped ]", name)
				}
				v.WriteByte(rest[i])
			}
			m.Params[name] = v.String()
			i++
		}
		if rest[i] != ']' {
			return m, errors.New("SD not closed")
		}
		rest = rest[i+1:]
	}
	m.Msg = strings.TrimPrefix(rest, " ")
	m.Msg = strings.TrimPrefix(m.Msg, "\ufeff")
	return m, nil
}
