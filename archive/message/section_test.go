package message

import (
	"errors"
	"os"
	"reflect"
	"testing"
)

func TestSection(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.eml")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Parse(raw)
	// golden.eml: 1 multipart/alternative (1.1 text/plain, 1.2 text/html),
	// 2 application/pdf, 3 message/rfc822 holding multipart/alternative
	// (3.1 text/plain, 3.2 text/enriched), 4 multipart/digest of two
	// message/rfc822 parts with text/plain bodies.
	tests := []struct {
		path string
		typ  string
		ok   bool
	}{
		{"", "multipart/mixed", true},
		{"1", "multipart/alternative", true},
		{"1.1", "text/plain", true},
		{"1.2", "text/html", true},
		{"2", "application/pdf", true},
		{"3", "message/rfc822", true},
		{"3.1", "text/plain", true},
		{"3.2", "text/enriched", true},
		{"4", "multipart/digest", true},
		{"4.1", "message/rfc822", true},
		{"4.1.1", "text/plain", true}, // body of a non-multipart embedded message
		{"4.2.1", "text/plain", true},
		{"5", "", false},
		{"1.3", "", false},
		{"2.1", "", false},
		{"4.1.2", "", false},
		{"4.1.1.1", "", false},
	}
	for _, tt := range tests {
		path, err := ParseSectionPath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		q, err := p.Section(path)
		if !tt.ok {
			if !errors.Is(err, ErrNoSection) {
				t.Errorf("%q: %v, want ErrNoSection", tt.path, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.path, err)
			continue
		}
		if got := q.ContentType(); got != tt.typ {
			t.Errorf("%q: %s, want %s", tt.path, got, tt.typ)
		}
	}
	// 3.HEADER and 3.TEXT are the embedded message's header and body.
	q, _ := p.Section([]int{3})
	if got := string(q.Message.Header(raw)); got[:len("From: Old Sender")] != "From: Old Sender" {
		t.Errorf("3.HEADER starts %q", got[:20])
	}
	if got := q.Message.Envelope.Subject; got != "Forwarded minutes" {
		t.Errorf("3 envelope subject %q", got)
	}
	// 4.1.1 is the embedded message itself: its MIME header is the
	// message's header.
	q, _ = p.Section([]int{4, 1, 1})
	if got := string(q.Body(raw)); got != "First digest body about tulips." {
		t.Errorf("4.1.1 body %q", got)
	}
}

func TestSectionSinglePart(t *testing.T) {
	raw := []byte("Subject: s\r\n\r\nbody\r\n")
	p, _ := Parse(raw)
	q, err := p.Section([]int{1})
	if err != nil || q != p {
		t.Fatalf("section 1 of a single-part message: %v %v", q, err)
	}
	if _, err := p.Section([]int{2}); !errors.Is(err, ErrNoSection) {
		t.Errorf("section 2: %v", err)
	}
	if _, err := p.Section([]int{1, 1}); !errors.Is(err, ErrNoSection) {
		t.Errorf("section 1.1: %v", err)
	}
	// A top-level message/rfc822: 1 is the body, 1.1 the inner body.
	raw = []byte("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n")
	p, _ = Parse(raw)
	q, _ = p.Section([]int{1})
	if q != p {
		t.Error("1 of a message/rfc822 message is the message")
	}
	q, err = p.Section([]int{1, 1})
	if err != nil || string(q.Body(raw)) != "inner body\r\n" {
		t.Errorf("1.1: %v", err)
	}
}

func TestParseSectionPath(t *testing.T) {
	good := map[string][]int{"": nil, "1": {1}, "1.2.3": {1, 2, 3}, "10.1": {10, 1}}
	for in, want := range good {
		got, err := ParseSectionPath(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseSectionPath(%q) = %v, %v", in, got, err)
		}
		if FormatSectionPath(want) != in {
			t.Errorf("FormatSectionPath(%v) = %q", want, FormatSectionPath(want))
		}
	}
	for _, in := range []string{"0", "1.", ".1", "1..2", "a", "01", "+1", "-1", "1.0", "99999999999999999999"} {
		if _, err := ParseSectionPath(in); err == nil {
			t.Errorf("ParseSectionPath(%q) accepted", in)
		}
	}
}
