package message

import (
	"reflect"
	"testing"
)

func TestParseContentType(t *testing.T) {
	tests := []struct {
		in       string
		typ, sub string
		params   []Param
		ok       bool
		problems int
	}{
		{"text/plain", "text", "plain", nil, true, 0},
		{"Text/HTML; Charset=UTF-8", "text", "html", []Param{{"charset", "UTF-8"}}, true, 0},
		{`multipart/mixed; boundary="----=_Part_1"`, "multipart", "mixed", []Param{{"boundary", "----=_Part_1"}}, true, 0},
		{"text/plain (a comment); charset=us-ascii (another)", "text", "plain", []Param{{"charset", "us-ascii (another)"}}, true, 0},
		{"text / plain ; charset = utf-8", "text", "plain", []Param{{"charset", "utf-8"}}, true, 0},
		// Lenient forms from the corpus.
		{"text/calendar; method=text/calendar", "text", "calendar", []Param{{"method", "text/calendar"}}, true, 0},
		{"text/html;iso-8859-1", "text", "html", nil, true, 1},
		{`text/HTML; charset="UTF-8Return-Path: x`, "text", "html", []Param{{"charset", "UTF-8Return-Path: x"}}, true, 1},
		{"text/plain>", "text", "plain", nil, true, 1},
		{"<html>", "", "", nil, false, 2},
		{"; name=\"\"", "", "", []Param{{"name", ""}}, false, 1},
		{`application/pdf name="a.pdf"`, "application", "pdf", []Param{{"name", "a.pdf"}}, true, 1},
		{`application/pdf; name="a.pdf"; name="b.pdf"`, "application", "pdf", []Param{{"name", "a.pdf"}}, true, 1},
		{`application/pdf; name="a.pdf" filename="b.pdf"`, "application", "pdf", []Param{{"name", "a.pdf"}, {"filename", "b.pdf"}}, true, 0},
		{"text/plain;; charset=utf-8;", "text", "plain", []Param{{"charset", "utf-8"}}, true, 0},
		{`text/plain; name="a \"b\" c"`, "text", "plain", []Param{{"name", `a "b" c`}}, true, 0},
		{"application/octet-stream; name=my file.txt", "application", "octet-stream", []Param{{"name", "my file.txt"}}, true, 0},
		// RFC 2231 §3, §4: continuations and charsets.
		{`application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A`, "application", "x-stuff",
			[]Param{{"title", "This is ***fun***"}}, true, 0},
		{`message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"`, "message", "external-body",
			[]Param{{"access-type", "URL"}, {"url", "ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"}}, true, 0},
		{`application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2="isn't it!"`, "application", "x-stuff",
			[]Param{{"title", "This is even more ***fun*** isn't it!"}}, true, 0},
		// Sections out of order, and an RFC 2231 form winning over the plain one.
		{`a/b; n*1="b"; name="plain"; n*0="a"; name*=iso-8859-1''caf%E9`, "a", "b",
			[]Param{{"n", "ab"}, {"name", "café"}}, true, 0},
		// Unknown charset in RFC 2231: bytes kept as UTF-8/Latin-1.
		{`a/b; name*=x-bogus''%C3%A9t%E9`, "a", "b", []Param{{"name", "été"}}, true, 0},
		{`a/b; name*0="x"; name*2="z"`, "a", "b", []Param{{"name", "xz"}}, true, 1},
	}
	for _, tt := range tests {
		typ, sub, params, probs, ok := parseContentType(tt.in)
		if typ != tt.typ || sub != tt.sub || ok != tt.ok || !reflect.DeepEqual(params, tt.params) || len(probs) != tt.problems {
			t.Errorf("parseContentType(%q)\n got  %q %q %v ok=%v problems=%q\n want %q %q %v ok=%v problems=%d",
				tt.in, typ, sub, params, ok, probs, tt.typ, tt.sub, tt.params, tt.ok, tt.problems)
		}
	}
}

func TestParseDisposition(t *testing.T) {
	typ, params, probs := parseDisposition(`Attachment; filename="Invoice 12.pdf"; creation-date="Wed, 12 Feb 1997 16:29:51 -0500"`)
	want := []Param{{"filename", "Invoice 12.pdf"}, {"creation-date", "Wed, 12 Feb 1997 16:29:51 -0500"}}
	if typ != "attachment" || !reflect.DeepEqual(params, want) || len(probs) != 0 {
		t.Errorf("got %q %v %v", typ, params, probs)
	}
	typ, params, _ = parseDisposition(";\tfilename=\"\"")
	if typ != "" || !reflect.DeepEqual(params, []Param{{"filename", ""}}) {
		t.Errorf("barren: got %q %v", typ, params)
	}
}

func TestParseEncodingAndLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"Base64":                  "base64",
		" quoted-printable (qp) ": "quoted-printable",
		"(c) 7BIT":                "7bit",
		"":                        "",
		"base9000":                "base9000",
		"8bit; junk":              "8bit",
	} {
		if got := parseEncoding(in); got != want {
			t.Errorf("parseEncoding(%q) = %q, want %q", in, got, want)
		}
	}
	if got := parseLanguage("en, (comment) de-CH ,, fr"); !reflect.DeepEqual(got, []string{"en", "de-CH", "fr"}) {
		t.Errorf("parseLanguage: %q", got)
	}
}
