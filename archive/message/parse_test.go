package message

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// checkTree verifies the invariants the package comment promises for a
// tree Parse returned for raw, and that it survives the binary encoding.
func checkTree(raw []byte, root *Part) error {
	if root.HeaderStart != 0 || root.BodyEnd != int64(len(raw)) {
		return fmt.Errorf("root spans %d..%d, want 0..%d", root.HeaderStart, root.BodyEnd, len(raw))
	}
	if root.Envelope == nil {
		return fmt.Errorf("root without envelope")
	}
	n := 0
	var walk func(p *Part, depth int, path string) error
	walk = func(p *Part, depth int, path string) error {
		n++
		if depth > MaxDepth {
			return fmt.Errorf("%s: depth %d", path, depth)
		}
		if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.BodyEnd && p.BodyEnd <= int64(len(raw))) {
			return fmt.Errorf("%s: offsets %d/%d/%d, len %d", path, p.HeaderStart, p.BodyStart, p.BodyEnd, len(raw))
		}
		if p.MediaType == "" || p.MediaSubtype == "" || p.MediaType != strings.ToLower(p.MediaType) || p.MediaSubtype != strings.ToLower(p.MediaSubtype) {
			return fmt.Errorf("%s: media type %q/%q", path, p.MediaType, p.MediaSubtype)
		}
		if (p.MediaType == "multipart") != (len(p.Parts) > 0) {
			return fmt.Errorf("%s: %s with %d parts", path, p.ContentType(), len(p.Parts))
		}
		if isMessageType(p.MediaType, p.MediaSubtype) != (p.Message != nil) {
			return fmt.Errorf("%s: %s, message %v", path, p.ContentType(), p.Message != nil)
		}
		want := int64(0)
		if hasLines(p.MediaType, p.MediaSubtype) {
			want = countLines(p.Body(raw))
		}
		if p.Lines != want {
			return fmt.Errorf("%s: lines %d, want %d", path, p.Lines, want)
		}
		prev := p.BodyStart
		for i := range p.Parts {
			c := &p.Parts[i]
			if c.HeaderStart < prev || c.BodyEnd > p.BodyEnd {
				return fmt.Errorf("%s.%d: %d..%d not inside %d..%d", path, i+1, c.HeaderStart, c.BodyEnd, prev, p.BodyEnd)
			}
			if c.Envelope != nil {
				return fmt.Errorf("%s.%d: envelope on a part", path, i+1)
			}
			if err := walk(c, depth+1, fmt.Sprintf("%s.%d", path, i+1)); err != nil {
				return err
			}
			prev = c.BodyEnd
		}
		if m := p.Message; m != nil {
			if m.HeaderStart != p.BodyStart || m.BodyEnd != p.BodyEnd {
				return fmt.Errorf("%s: message %d..%d, part body %d..%d", path, m.HeaderStart, m.BodyEnd, p.BodyStart, p.BodyEnd)
			}
			if m.Envelope == nil {
				return fmt.Errorf("%s: message without envelope", path)
			}
			if err := walk(m, depth+1, path+".msg"); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0, "root"); err != nil {
		return err
	}
	if n > MaxParts {
		return fmt.Errorf("%d parts", n)
	}
	if !bytes.Equal(append(root.Header(raw), root.Body(raw)...), raw) {
		return fmt.Errorf("root header+body differ from raw")
	}
	enc, err := root.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshal: %v", err)
	}
	back, err := Unmarshal(enc)
	if err != nil {
		return fmt.Errorf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, root) {
		return fmt.Errorf("binary round trip differs")
	}
	return nil
}

func corpus(t testing.TB) map[string][]byte {
	files, err := filepath.Glob("testdata/enmime/*.raw")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	m := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(f)] = b
	}
	return m
}

// TestCorpus parses every corpus message, also with LF line ends and with
// CRLF line ends, and checks the invariants of the tree.
func TestCorpus(t *testing.T) {
	for name, raw := range corpus(t) {
		for _, variant := range []string{"as-is", "lf", "crlf"} {
			b := raw
			switch variant {
			case "lf":
				b = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
			case "crlf":
				b = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
			}
			p, _ := Parse(b)
			if err := checkTree(b, p); err != nil {
				t.Errorf("%s (%s): %v", name, variant, err)
			}
		}
	}
}

// shape renders the structure compactly: type/subtype and children.
func shape(p *Part) string {
	s := p.ContentType()
	if len(p.Parts) > 0 {
		var c []string
		for i := range p.Parts {
			c = append(c, shape(&p.Parts[i]))
		}
		s += "(" + strings.Join(c, " ") + ")"
	}
	if p.Message != nil {
		s += "[" + shape(p.Message) + "]"
	}
	return s
}

func TestCorpusShapes(t *testing.T) {
	c := corpus(t)
	tests := []struct {
		file, shape string
		problem     string // a substring of one problem, if any
	}{
		{"mail_multipart-wo-boundary.raw", "text/plain", "without boundary"},
		{"parts_multimixed-no-closing-boundary.raw", "multipart/mixed(text/html)", "close delimiter"},
		{"low-quality_bad-final-boundary.raw", "multipart/mixed(text/plain application/x-zip-compressed text/plain)", "close delimiter"},
		{"parts_similar-boundary.raw", "multipart/mixed(text/plain multipart/alternative(text/plain text/html))", ""},
		{"parts_multi-malformed.raw", "multipart/mixed(text/plain text/plain text/plain)", "no header"},
		{"parts_empty-ctype-bad-content.raw", "multipart/alternative(text/plain)", "unusable media type"},
		{"parts_barren-content-type.raw", "text/plain", "unusable media type"},
		{"parts_ctype-invalid-characters.raw", "text/plain", "junk after media type"},
		{"mail_header-only.raw", "text/plain", "without parts"},
		{"mail_erroneous.raw", "text/plain", "no header"},
		{"dsn_testdata_simple_dsn.raw", "multipart/report(text/plain message/delivery-status message/rfc822[text/plain])", ""},
		{"mail_mime-signed.raw", "multipart/mixed(multipart/signed(text/plain application/pgp-signature) text/plain)", ""},
		{"low-quality_bad-header-wrap.raw", "multipart/mixed(text/plain application/x-zip-compressed)", "without colon"},
		{"low-quality_bad-header-start.raw", "multipart/alternative(text/plain text/plain)", "starts with white space"},
		{"mail_mime-bad-content-type.raw", "multipart/mixed(text/plain application/pdf)", "missing ';'"},
		{"parts_html-with-boundary.raw", "multipart/mixed(text/html)", ""},
	}
	for _, tt := range tests {
		raw, ok := c[tt.file]
		if !ok {
			t.Fatalf("%s missing", tt.file)
		}
		p, probs := Parse(raw)
		if got := shape(p); got != tt.shape {
			t.Errorf("%s: shape %s, want %s", tt.file, got, tt.shape)
		}
		if tt.problem != "" && !hasProblem(probs, tt.problem) {
			t.Errorf("%s: problems %v, want one with %q", tt.file, probs, tt.problem)
		}
	}
}

func hasProblem(probs []Problem, s string) bool {
	for _, p := range probs {
		if strings.Contains(p.Text, s) {
			return true
		}
	}
	return false
}

func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

// TestParseOffsets checks exact offsets for small messages, including the
// RFC 2046 rule that the line break before a delimiter is not body.
func TestParseOffsets(t *testing.T) {
	type want struct {
		path         string
		typ          string
		header, body string
		lines        int64
	}
	tests := []struct {
		name string
		raw  []byte
		want []want
	}{
		{
			name: "simple CRLF",
			raw:  crlf("Subject: x\n\nhello\nworld\n"),
			want: []want{{"", "text/plain", "Subject: x\r\n\r\n", "hello\r\nworld\r\n", 2}},
		},
		{
			name: "multipart CRLF",
			raw:  crlf("Content-Type: multipart/mixed; boundary=b\n\npre\n--b\nContent-Type: text/plain\n\none\n--b\n\ntwo\n\n--b--\nepi\n"),
			want: []want{
				{"", "multipart/mixed", "Content-Type: multipart/mixed; boundary=b\r\n\r\n", "pre\r\n--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\n\r\ntwo\r\n\r\n--b--\r\nepi\r\n", 0},
				{"1", "text/plain", "Content-Type: text/plain\r\n\r\n", "one", 1},
				{"2", "text/plain", "\r\n", "two\r\n", 1},
			},
		},
		{
			name: "multipart LF",
			raw:  []byte("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b--\n"),
			want: []want{
				{"1", "text/plain", "\n", "one", 1},
			},
		},
		{
			name: "mixed line ends",
			raw:  []byte("Content-Type: multipart/mixed; boundary=b\r\n\n--b\r\nContent-Type: text/html\n\r\n<p>x</p>\r\n--b  \n\none\n--b--"),
			want: []want{
				{"", "multipart/mixed", "Content-Type: multipart/mixed; boundary=b\r\n\n", "--b\r\nContent-Type: text/html\n\r\n<p>x</p>\r\n--b  \n\none\n--b--", 0},
				{"1", "text/html", "Content-Type: text/html\n\r\n", "<p>x</p>", 1},
				{"2", "text/plain", "\n", "one", 1},
			},
		},
		{
			name: "header ended by delimiter",
			raw:  crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n--b\n\nx\n--b--\n"),
			want: []want{
				{"1", "text/plain", "Content-Type: text/plain", "", 0},
				{"2", "text/plain", "\r\n", "x", 1},
			},
		},
		{
			name: "empty part between delimiters",
			raw:  crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n"),
			want: []want{
				{"1", "text/plain", "", "", 0},
				{"2", "text/plain", "\r\n", "x", 1},
			},
		},
		{
			name: "message/rfc822 with empty body before delimiter",
			raw:  crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\n--b--\n"),
			want: []want{
				{"1", "message/rfc822", "Content-Type: message/rfc822\r\n\r\n", "Subject: inner\r\n", 1},
				{"1.1", "text/plain", "Subject: inner\r\n", "", 0},
			},
		},
		{
			name: "inner multipart closed by outer delimiter",
			raw:  crlf("Content-Type: multipart/mixed; boundary=outer\n\n--outer\nContent-Type: multipart/alternative; boundary=inner\n\n--inner\n\na\n--outer\n\nb\n--outer--\n"),
			want: []want{
				{"1", "multipart/alternative", "Content-Type: multipart/alternative; boundary=inner\r\n\r\n", "--inner\r\n\r\na", 0},
				{"1.1", "text/plain", "\r\n", "a", 1},
				{"2", "text/plain", "\r\n", "b", 1},
			},
		},
		{
			name: "header only, no blank line",
			raw:  []byte("Subject: x\r\nFrom: a@b"),
			want: []want{{"", "text/plain", "Subject: x\r\nFrom: a@b", "", 0}},
		},
		{
			name: "empty input",
			raw:  nil,
			want: []want{{"", "text/plain", "", "", 0}},
		},
		{
			name: "no header at all",
			raw:  []byte("just text\nmore\n"),
			want: []want{{"", "text/plain", "", "just text\nmore\n", 2}},
		},
		{
			name: "mbox From line",
			raw:  []byte("From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: s\n\nbody\n"),
			want: []want{{"", "text/plain", "From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: s\n\n", "body\n", 1}},
		},
		{
			name: "digest default",
			raw:  crlf("Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d--\n"),
			want: []want{
				{"1", "message/rfc822", "\r\n", "Subject: one\r\n\r\nbody", 3},
				{"1.1", "text/plain", "Subject: one\r\n\r\n", "body", 1},
			},
		},
		{
			name: "8-bit junk and NUL",
			raw:  []byte("Subject: \xff\xfe\x00\n\n\x00\x80\x81\n"),
			want: []want{{"", "text/plain", "Subject: \xff\xfe\x00\n\n", "\x00\x80\x81\n", 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := Parse(tt.raw)
			if err := checkTree(tt.raw, p); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				path, err := ParseSectionPath(w.path)
				if err != nil {
					t.Fatal(err)
				}
				q, err := p.Section(path)
				if err != nil {
					t.Fatalf("section %q: %v (shape %s)", w.path, err, shape(p))
				}
				if got := q.ContentType(); got != w.typ {
					t.Errorf("section %q: type %s, want %s", w.path, got, w.typ)
				}
				if got := string(q.Header(tt.raw)); got != w.header {
					t.Errorf("section %q: header %q, want %q", w.path, got, w.header)
				}
				if got := string(q.Body(tt.raw)); got != w.body {
					t.Errorf("section %q: body %q, want %q", w.path, got, w.body)
				}
				if q.Lines != w.lines {
					t.Errorf("section %q: lines %d, want %d", w.path, q.Lines, w.lines)
				}
			}
		})
	}
}

func TestContentFields(t *testing.T) {
	raw := crlf(`Content-Type: Text/HTML; Charset="UTF-8"; name*0*=utf-8''%E2%82%AC; name*1=".txt"
Content-Transfer-Encoding: Quoted-Printable (comment)
Content-ID:  <id@x>
Content-Description: =?utf-8?q?caf=C3=A9?=
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Disposition: Attachment; filename="a b.txt"; size=12
Content-Language: en, (comment) de-CH
Content-Location: http://example.org/a

x
`)
	p, probs := Parse(raw)
	if len(probs) > 0 {
		t.Errorf("problems: %v", probs)
	}
	want := &Part{
		HeaderStart: 0, BodyStart: int64(len(raw) - 3), BodyEnd: int64(len(raw)),
		MediaType: "text", MediaSubtype: "html",
		Params:            []Param{{"charset", "UTF-8"}, {"name", "€.txt"}},
		Encoding:          "quoted-printable",
		ID:                "<id@x>",
		Description:       "=?utf-8?q?caf=C3=A9?=",
		MD5:               "Q2hlY2sgSW50ZWdyaXR5IQ==",
		Disposition:       "attachment",
		DispositionParams: []Param{{"filename", "a b.txt"}, {"size", "12"}},
		Language:          []string{"en", "de-CH"},
		Location:          "http://example.org/a",
		Lines:             1,
		Envelope:          &Envelope{},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if got := p.Charset(); got != "utf-8" {
		t.Errorf("charset %q", got)
	}
	if got := p.Filename(); got != "a b.txt" {
		t.Errorf("filename %q", got)
	}
}

// TestAdversarial checks that hostile inputs stay within the limits and
// finish quickly; the test's own timeout catches quadratic behaviour.
func TestAdversarial(t *testing.T) {
	big := func(s string, n int) string { return strings.Repeat(s, n) }
	tests := []struct {
		name string
		raw  string
	}{
		{"many tiny parts", "Content-Type: multipart/mixed; boundary=b\n\n" + big("--b\n\nx\n", 100000) + "--b--\n"},
		{"deep nesting", big("Content-Type: multipart/mixed; boundary=b\n\n--b\n", 200) + "x\n"},
		{"deep messages", big("Content-Type: message/rfc822\n\n", 200) + "x\n"},
		{"huge header line", "Subject: " + big("x", 4<<20) + "\n\nbody\n"},
		{"huge folded header", "Subject: x" + big("\n y", 1<<20) + "\n\nbody\n"},
		{"many delimiter-like lines", "Content-Type: multipart/mixed; boundary=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n\n" + big("--bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbX\n", 50000)},
		{"nested similar boundaries", func() string {
			var b strings.Builder
			for i := 0; i < 60; i++ {
				fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%s\n\n--%s\n", strings.Repeat("a", 60+i), strings.Repeat("a", 60+i))
			}
			b.WriteString(big("--"+strings.Repeat("a", 59)+"\n", 20000))
			return b.String()
		}()},
		{"many params", "Content-Type: text/plain" + big("; a=b", 100000) + "\n\n"},
		{"many rfc2231 sections", "Content-Type: text/plain" + big("; n*7*=%41", 100000) + "\n\n"},
		{"many addresses", "To: " + big("a@b, ", 200000) + "\n\n"},
		{"unclosed angles", "To: " + big("<a,", 100000) + "\n\n"},
		{"unclosed comments", "To: " + big("(", 100000) + "\n\n"},
		{"many encoded words", "Subject: " + big("=?utf-8?q?a?= ", 100000) + "\n\n"},
		{"many broken words", "Subject: " + big("=?", 200000) + "\n\n"},
		{"many unterminated words", "Subject: " + big("=?utf-8?q?a", 100000) + "\n\n"},
		{"many words ended far away", "Subject: " + big("=?utf-8?q?a", 100000) + "?=\n\n"},
		{"many bad header lines", big("junk\n", 100000)},
		{"only line feeds", big("\n", 1<<20)},
		{"no line feeds", big("x", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := []byte(tt.raw)
			p, probs := Parse(raw)
			if err := checkTree(raw, p); err != nil {
				t.Fatal(err)
			}
			if len(probs) > maxProblems+1 {
				t.Errorf("%d problems", len(probs))
			}
			var n int
			if err := Text(raw, p, func(s string) error { n += len(s); return nil }); err != nil {
				t.Fatal(err)
			}
			if n > MaxText {
				t.Errorf("text %d bytes", n)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	raw := []byte("Content-Type: multipart/mixed; boundary=b\n\n" + strings.Repeat("--b\n\nx\n", MaxParts+10) + "--b--\n")
	p, probs := Parse(raw)
	if len(p.Parts) != MaxParts-1 {
		t.Errorf("%d parts, want %d", len(p.Parts), MaxParts-1)
	}
	if !hasProblem(probs, "too many parts") {
		t.Errorf("problems %v", probs)
	}
	raw = []byte(strings.Repeat("Content-Type: multipart/mixed; boundary=b\n\n--b\n", MaxDepth+5) + "x\n")
	p, probs = Parse(raw)
	depth := 0
	for q := p; len(q.Parts) > 0; q = &q.Parts[0] {
		depth++
	}
	if depth != MaxDepth {
		t.Errorf("depth %d, want %d", depth, MaxDepth)
	}
	if !hasProblem(probs, "nesting too deep") {
		t.Errorf("problems %v", probs)
	}
}
