package message

import (
	"encoding/base64"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func textOf(t *testing.T, raw []byte) string {
	t.Helper()
	p, _ := Parse(raw)
	var b strings.Builder
	if err := Text(raw, p, func(s string) error {
		if !utf8.ValidString(s) {
			t.Errorf("chunk is not UTF-8: %q", s)
		}
		if len(s) > textChunk {
			t.Errorf("chunk of %d bytes", len(s))
		}
		b.WriteString(s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestTextCorpus checks words extracted from corpus messages, each checked
// by hand against the raw message.
func TestTextCorpus(t *testing.T) {
	c := corpus(t)
	tests := []struct {
		file    string
		want    []string
		notWant []string
	}{
		// Subject, quoted-printable ISO-8859-1 text and the HTML alternative.
		{"mail_qp-utf8-header.raw", []string{"MIME UTF8 Test ¢ More Text", "Nullam venenatis ante", "Praesent non nibh odio"}, []string{"=\r\n", "<p>"}},
		// UTF-8 bytes in a part declared us-ascii stay UTF-8.
		{"low-quality_incorrect-charset.raw", []string{"∮ E⋅da = Q", "ði ıntəˈnæʃənəl"}, nil},
		// Quoted-printable Latin-1 HTML without MIME parts; title and body text.
		{"mail_non-mime-html-charset-header-only.raw", []string{"Page Title", "Test Müller"}, []string{"<html>", "M=FCller"}},
		// Base64 text declared us-ascii but in Latin-1.
		{"parts_chardet-success-iso-8859-1.raw", []string{"Drachenköpfe", "dreißig Kilometer"}, nil},
		// Raw 8-bit UTF-8 attachment file name.
		{"mail_mime-bad-8bit-filename.raw", []string{"Text part", "管理.doc"}, nil},
		// One extra base64 character in each part.
		{"parts_extra-base64-character.raw", []string{"Hello World!", "Hello World"}, nil},
		// Unknown charset: read as UTF-8.
		{"low-quality_unk-charset-part.raw", []string{"A text section", "foo_9E5D72.zip"}, nil},
		// HTML with a style sheet and an inline image name.
		{"mail_html-only-inline.raw", []string{"MIME test 1", "Test of HTML section", "favicon.png"}, []string{"<", "font-family"}},
		// Delivery status notification with its status report.
		{"dsn_testdata_simple_dsn.raw", []string{"Returned mail: Cannot send message for 5 days", "Reporting-MTA"}, nil},
		// No header at all.
		{"mail_erroneous.raw", []string{"Not an RFC-822 Document"}, nil},
		// Encoded-word subject.
		{"mail_qp-ascii-header.raw", []string{"Test QP Subject!"}, []string{"=?US-ASCII"}},
	}
	for _, tt := range tests {
		raw, ok := c[tt.file]
		if !ok {
			t.Fatalf("%s missing", tt.file)
		}
		got := textOf(t, raw)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: text lacks %q:\n%s", tt.file, w, got)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(got, w) {
				t.Errorf("%s: text has %q:\n%s", tt.file, w, got)
			}
		}
	}
}

func TestTextGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.eml")
	if err != nil {
		t.Fatal(err)
	}
	want := `Quarterly report – entwürf (draft)
Grüße aus Zürich, the quarterly figures are attached. 
Softbreak joined.

Hello & welcome, Zürich and Hamburg friends
Q3 Bericht über alles.pdf
Forwarded minutes
The minutes mention the Zeppelin budget.
<bold>Zeppelin</bold>
Digest item one
First digest body about tulips.
Digest item two
Second digest body.
`
	if got := textOf(t, raw); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestHTMLText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<p>Hello <b>wo</b>rld</p>", "\nHello world\n"},
		{"a &amp; b &lt;c&gt; &eacute;&#233;&#xe9; &nbsp;x", "a & b <c> ééé \u00a0x"},
		{"<script>var x = '<p>';</script>after", " after"},
		{"<STYLE type=text/css>p{}</STYLE>after", " after"},
		{"<!-- a -- comment -->after", " after"},
		{"<!DOCTYPE html>x", "x"},
		{`<a href="x>y">link</a>`, "link"},
		{"1 < 2 and 3 > 2", "1 < 2 and 3 > 2"},
		{"a\r\n\t  b", "a b"},
		{"line<br>break<br/>twice", "line\nbreak\ntwice"},
		{"&unknown; &amp", "&unknown; &"},
		{"<td>a</td><td>b</td>", " a b "},
	}
	for _, tt := range tests {
		h := &htmlText{}
		// Feed byte by byte to prove the state machine streams.
		var got []byte
		for i := 0; i < len(tt.in); i++ {
			got = h.appendText(got, []byte{tt.in[i]})
		}
		got = h.finish(got)
		if string(got) != tt.want {
			t.Errorf("html %q = %q, want %q", tt.in, got, tt.want)
		}
		h = &htmlText{}
		if whole := string(h.finish(h.appendText(nil, []byte(tt.in)))); whole != tt.want {
			t.Errorf("html %q whole = %q", tt.in, whole)
		}
	}
}

func TestTextLimits(t *testing.T) {
	// A large body: output stops at MaxText and chunks stay whole UTF-8.
	body := strings.Repeat("ünïcödé text ", 200000)
	raw := []byte("Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
	got := textOf(t, raw)
	if len(got) > MaxText || len(got) < MaxText-utf8.UTFMax {
		t.Errorf("text of %d bytes, want about %d", len(got), MaxText)
	}
	if !strings.HasPrefix(body, got) {
		t.Errorf("text is not the start of the body")
	}
	// Characters split across reads of the decoder survive, in UTF-8 and
	// in a legacy charset.
	for _, cs := range []string{"utf-8", "iso-8859-1"} {
		b := strings.Repeat("ab€ü", 5000)
		if cs == "iso-8859-1" {
			b = strings.Repeat("ab\xfc", 5000)
		}
		raw := []byte("Content-Type: text/plain; charset=" + cs + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.StdEncoding.EncodeToString([]byte(b)))
		want := strings.Repeat("ab€ü", 5000)
		if cs == "iso-8859-1" {
			want = strings.Repeat("abü", 5000)
		}
		if got := strings.TrimSuffix(textOf(t, raw), "\n"); got != want {
			t.Errorf("%s: text differs from the body (%d vs %d bytes)", cs, len(got), len(want))
		}
	}
	// An error from fn stops the walk and is returned.
	p, _ := Parse(raw)
	stop := errors.New("stop")
	calls := 0
	err := Text(raw, p, func(string) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("err %v after %d calls", err, calls)
	}
}

func TestTextCharsets(t *testing.T) {
	tests := []struct{ charset, body, want string }{
		{"iso-8859-1", "caf\xe9", "café"},
		{"windows-1252", "\x93quoted\x94", "“quoted”"},
		{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", "Привет"},
		{"shift_jis", "\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd", "こんにちは"},
		{"gb2312", "\xc4\xe3\xba\xc3", "你好"},
		{"utf-8", "ok \xff bad", "ok ÿ bad"},
		{"x-made-up", "caf\xc3\xa9 caf\xe9", "café café"},
		{"", "plain", "plain"},
	}
	for _, tt := range tests {
		raw := []byte("Content-Type: text/plain; charset=\"" + tt.charset + "\"\r\n\r\n" + tt.body)
		if got := strings.TrimSpace(textOf(t, raw)); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.charset, got, tt.want)
		}
	}
}

// Text reuses its buffers: calls in turn and at once, on messages that stop
// early (fn's error), fill MaxText, or end mid-chunk, each give what a
// first call gives, and no chunk is changed while fn holds it.
func TestTextReusesBuffers(t *testing.T) {
	msgs := [][]byte{
		[]byte("Subject: one\r\nContent-Type: text/html\r\n\r\n<p>first &amp; <b>only</b></p>" + strings.Repeat("<i>word</i> ", 3000)),
		[]byte("Content-Type: text/plain\r\n\r\n" + strings.Repeat("x€y ", MaxText/5)),
		[]byte("Subject: short\r\n\r\nhello"),
	}
	for _, raw := range corpus(t) {
		msgs = append(msgs, raw)
	}
	collect := func(raw []byte) string {
		p, _ := Parse(raw)
		var b strings.Builder
		Text(raw, p, func(s string) error {
			kept := strings.Clone(s)
			b.WriteString(s)
			runtime.Gosched() // let other calls run while s is held
			if kept != s {
				t.Errorf("chunk changed while fn held it")
			}
			return nil
		})
		return b.String()
	}
	want := make([]string, len(msgs))
	for i, raw := range msgs {
		want[i] = collect(raw)
	}
	if len(want[1]) != MaxText {
		t.Fatalf("%d bytes from the long message, want MaxText", len(want[1]))
	}
	stop := errors.New("stop")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 3 {
				for i := range msgs {
					j := (i + g + round) % len(msgs)
					if got := collect(msgs[j]); got != want[j] {
						t.Errorf("message %d: text differs on reuse (%d vs %d bytes)", j, len(got), len(want[j]))
					}
					// A walk stopped by fn leaves nothing for the next.
					p, _ := Parse(msgs[j])
					Text(msgs[j], p, func(string) error { return stop })
				}
			}
		}()
	}
	wg.Wait()
}
