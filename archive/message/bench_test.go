package message

import (
	"os"
	"testing"
)

func benchFile(b *testing.B, name string) []byte {
	raw, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

// BenchmarkParse parses a typical 10 KB message: multipart/alternative with
// a quoted-printable text part, a base64 HTML part and 2 KB of header.
func BenchmarkParse(b *testing.B) {
	raw := benchFile(b, "testdata/typical-10k.eml")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(raw)
	}
}

func BenchmarkMarshal(b *testing.B) {
	raw := benchFile(b, "testdata/typical-10k.eml")
	p, _ := Parse(raw)
	var enc []byte
	b.ReportAllocs()
	for b.Loop() {
		enc, _ = p.MarshalBinary()
	}
	b.ReportMetric(float64(len(enc)), "bytes/msg")
}

func BenchmarkUnmarshal(b *testing.B) { benchDecode(b, Unmarshal) }

func BenchmarkUnmarshalRoot(b *testing.B) { benchDecode(b, UnmarshalRoot) }

// benchDecode times decode on the stored structure of a typical message.
func benchDecode(b *testing.B, decode func([]byte) (*Part, error)) {
	raw := benchFile(b, "testdata/typical-10k.eml")
	p, _ := Parse(raw)
	enc, _ := p.MarshalBinary()
	b.ReportAllocs()
	for b.Loop() {
		decode(enc)
	}
}

func BenchmarkText(b *testing.B) {
	raw := benchFile(b, "testdata/typical-10k.eml")
	p, _ := Parse(raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		Text(raw, p, func(string) error { return nil })
	}
}
