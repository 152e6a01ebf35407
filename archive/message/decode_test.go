package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"math/rand"
	"mime/quotedprintable"
	"testing"
	"testing/iotest"
)

func decodeAll(t *testing.T, enc, body string) string {
	t.Helper()
	p := &Part{MediaType: "application", MediaSubtype: "octet-stream", Encoding: enc, BodyEnd: int64(len(body))}
	r, err := p.DecodedReader([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	// One byte at a time exercises the buffered paths.
	one, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil {
		t.Fatal(err)
	}
	r, _ = p.DecodedReader([]byte(body))
	all, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one, all) {
		t.Fatalf("%s %q: byte-wise %q, whole %q", enc, body, one, all)
	}
	return string(all)
}

func TestDecodeBase64(t *testing.T) {
	tests := []struct{ in, want string }{
		{"SGVsbG8gV29ybGQh", "Hello World!"},
		{"SGVs\r\nbG8g\r\nV29y\r\nbGQh\r\n", "Hello World!"},
		{"SGVsbG8=", "Hello"},
		{"SGVsbA==", "Hell"},
		{"SGVsbG8", "Hello"},                  // missing padding
		{"SGVsbG8gV29ybGQhA", "Hello World!"}, // one extra character (corpus)
		{"SG Vs*bG8=", "Hello"},               // junk skipped (RFC 2045 §6.8)
		{"SGk=SGk=", "HiHi"},                  // concatenated encodings
		{"", ""},
		{"====", ""},
	}
	for _, tt := range tests {
		if got := decodeAll(t, "base64", tt.in); got != tt.want {
			t.Errorf("base64 %q = %q, want %q", tt.in, got, tt.want)
		}
	}
	// Random data through the standard encoder, with line breaks.
	rng := rand.New(rand.NewSource(1))
	for n := 0; n < 200; n++ {
		data := make([]byte, rng.Intn(300))
		rng.Read(data)
		enc := base64.StdEncoding.EncodeToString(data)
		var folded bytes.Buffer
		for i := 0; i < len(enc); i += 76 {
			folded.WriteString(enc[i:min(i+76, len(enc))])
			folded.WriteString("\r\n")
		}
		if got := decodeAll(t, "base64", folded.String()); got != string(data) {
			t.Fatalf("round trip of %d bytes failed", len(data))
		}
	}
}

func TestDecodeQuotedPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Gr=C3=BC=C3=9Fe", "Grüße"},
		{"lower =c3=a9", "lower é"},
		{"soft=\r\nbreak", "softbreak"},
		{"soft=\nbreak", "softbreak"},
		{"soft=  \r\nbreak", "softbreak"},
		{"trailing   \r\nspace\t\r\n", "trailing\r\nspace\r\n"},
		{"inner   space", "inner   space"},
		{"bad =ZZ escape", "bad =ZZ escape"},
		{"end =", "end "},
		{"end =4", "end =4"},
		{"a=3Db", "a=b"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := decodeAll(t, "quoted-printable", tt.in); got != tt.want {
			t.Errorf("qp %q = %q, want %q", tt.in, got, tt.want)
		}
	}
	rng := rand.New(rand.NewSource(2))
	for n := 0; n < 200; n++ {
		data := make([]byte, rng.Intn(300))
		for i := range data {
			data[i] = "ab \t=\xc3\xa9\r\n"[rng.Intn(9)]
		}
		var enc bytes.Buffer
		w := quotedprintable.NewWriter(&enc)
		w.Binary = true
		w.Write(data)
		w.Close()
		if got := decodeAll(t, "quoted-printable", enc.String()); got != string(data) {
			t.Fatalf("round trip of %q failed: %q via %q", data, got, enc.String())
		}
	}
}

func TestDecodeIdentityAndUnknown(t *testing.T) {
	for _, enc := range []string{"", "7bit", "8bit", "binary"} {
		if got := decodeAll(t, enc, "=41 as is"); got != "=41 as is" {
			t.Errorf("%q: %q", enc, got)
		}
	}
	p := &Part{MediaType: "application", MediaSubtype: "zip", Encoding: "base9000"}
	if _, err := p.DecodedReader(nil); !errors.Is(err, ErrUnknownEncoding) {
		t.Errorf("base9000: %v", err)
	}
	// The corpus message with the unknown encoding.
	raw := corpus(t)["low-quality_unk-encoding-part.raw"]
	m, _ := Parse(raw)
	q, _ := m.Section([]int{2})
	if _, err := q.DecodedReader(raw); !errors.Is(err, ErrUnknownEncoding) {
		t.Errorf("corpus part 2: %v", err)
	}
}
