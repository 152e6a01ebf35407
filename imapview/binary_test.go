package imapview

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cairn-archive/cairn/archive/message"
)

// FuzzDecoders: the streaming BINARY decoders give exactly what
// message.Part.DecodedReader gives on the whole body, read in any pieces.
func FuzzDecoders(f *testing.F) {
	for _, s := range []string{"aGVsbG8gd29ybGQ=\r\n", "aGVs\r\nbG8=", "a=b", "caf=C3=A9 \r\nsoft=\r\nbreak=\n", "=4", "trailing   \n", "x=\r", "abc", ""} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Add(strings.Repeat("QUJD", 30000)+"\r\n", true)
	f.Add(strings.Repeat("line with = and =3D  \r\n", 4000), false)
	f.Fuzz(func(t *testing.T, body string, b64 bool) {
		enc := "quoted-printable"
		if b64 {
			enc = "base64"
		}
		p := &message.Part{MediaType: "application", MediaSubtype: "octet-stream", Encoding: enc, BodyEnd: int64(len(body))}
		ref, err := p.DecodedReader([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := io.ReadAll(ref)
		r, err := decodedReader(iotest.OneByteReader(strings.NewReader(body)), p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(iotest.HalfReader(r))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %q: got %q, want %q", enc, body, got, want)
		}
	})
}

func TestDecodedReaderUnknown(t *testing.T) {
	if _, err := decodedReader(strings.NewReader(""), &message.Part{MediaType: "text", Encoding: "x-uuencode"}); err == nil {
		t.Fatal("unknown encoding accepted")
	}
}
