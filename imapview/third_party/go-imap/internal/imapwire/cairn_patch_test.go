package imapwire

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
)

// upstreamQuoted is Quoted as go-imap v2.0.0-beta.8 wrote it, before cairn
// patch 12.
func upstreamQuoted(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '"' || ch == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(ch)
	}
	sb.WriteByte('"')
	return sb.String()
}

func encode(f func(enc *Encoder)) string {
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	enc := NewEncoder(w, ConnSideServer)
	f(enc)
	if err := enc.CRLF(); err != nil {
		panic(err)
	}
	return b.String()
}

// Patch 12 writes the same bytes as upstream's encoder.
func TestPatch12SameBytes(t *testing.T) {
	for _, s := range []string{"", "a", `"`, `\`, `say "hi" \ then \"bye\"`, `""\\`, "tail\\", "\"head"} {
		if got, want := encode(func(enc *Encoder) { enc.Quoted(s) }), upstreamQuoted(s)+"\r\n"; got != want {
			t.Errorf("Quoted(%q) = %q, want %q", s, got, want)
		}
	}
	for _, v := range []int64{0, 1, 42, math.MaxInt64, -7} {
		got := encode(func(enc *Encoder) {
			enc.Number64(v).SP().Special('(')
			if v >= 0 {
				enc.Number(uint32(v)).SP().ModSeq(uint64(v))
			}
			enc.Special(')')
		})
		want := strconv.FormatInt(v, 10) + " ("
		if v >= 0 {
			want += strconv.FormatUint(uint64(uint32(v)), 10) + " " + strconv.FormatInt(v, 10)
		}
		want += ")\r\n"
		if got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
	// Nothing is written while a literal is open, as before.
	var b bytes.Buffer
	enc := NewEncoder(bufio.NewWriter(&b), ConnSideServer)
	enc.literal = true
	enc.Special('(').Quoted("x").Number(1)
	if enc.err == nil {
		t.Error("writing while a literal is open: no error")
	}
}

func FuzzPatch12Quoted(f *testing.F) {
	f.Add(`say "hi" \ then`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := encode(func(enc *Encoder) { enc.Quoted(s) }), upstreamQuoted(s)+"\r\n"; got != want {
			t.Fatalf("Quoted(%q) = %q, want %q", s, got, want)
		}
	})
}
