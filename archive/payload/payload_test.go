package payload

import (
	"bytes"
	"crypto/rand"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/cairn-archive/cairn/crypto"
)

func seal(t testing.TB, raw []byte) ([]byte, *crypto.MessageKey) {
	mk := crypto.NewMessageKeySalt()
	var buf bytes.Buffer
	if err := Seal(&buf, raw, mk); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mk
}

func TestRoundTripSizes(t *testing.T) {
	for _, n := range []int{0, 1, 100, FrameSize - 1, FrameSize, FrameSize + 1, 3*FrameSize + 17} {
		raw := make([]byte, n)
		for i := range raw {
			raw[i] = byte('a' + i%23)
		}
		rand.Read(raw[:n/3])
		obj, mk := seal(t, raw)
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if r.Size() != int64(n) {
			t.Fatalf("n=%d: size %d", n, r.Size())
		}
		got, err := r.Bytes()
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("n=%d: round trip differs (err %v)", n, err)
		}
		// Random ranges.
		for k := 0; k < 50 && n > 0; k++ {
			off := mrand.IntN(n)
			l := mrand.IntN(n - off + 1)
			part, err := io.ReadAll(r.NewSectionReader(int64(off), int64(l)))
			if err != nil || !bytes.Equal(part, raw[off:off+l]) {
				t.Fatalf("n=%d range %d+%d differs (err %v)", n, off, l, err)
			}
		}
	}
}

func TestNoPlaintextAndWrongKey(t *testing.T) {
	raw := bytes.Repeat([]byte("secret-body-word-xyzzy "), 500)
	obj, _ := seal(t, raw)
	if bytes.Contains(obj, []byte("xyzzy")) {
		t.Fatal("plaintext visible in the object")
	}
	other := crypto.NewMessageKeySalt()
	other.FileKey[0] = 1
	if _, err := Open(bytes.NewReader(obj), int64(len(obj)), other); err == nil {
		t.Fatal("opened with the wrong file key")
	}
}

func TestTamperDetected(t *testing.T) {
	raw := bytes.Repeat([]byte("0123456789abcdef"), 40000)
	obj, mk := seal(t, raw)
	for _, pos := range []int{10, len(obj) / 2, len(obj) - 1} {
		bad := bytes.Clone(obj)
		bad[pos] ^= 1
		r, err := Open(bytes.NewReader(bad), int64(len(bad)), mk)
		if err == nil {
			_, err = r.Bytes()
		}
		if err == nil {
			t.Fatalf("flip at %d not detected", pos)
		}
	}
	// Truncation.
	r, err := Open(bytes.NewReader(obj[:len(obj)-100]), int64(len(obj)-100), mk)
	if err == nil {
		_, err = r.Bytes()
	}
	if err == nil {
		t.Fatal("truncation not detected")
	}
}

func BenchmarkSeal10K(b *testing.B) {
	raw := make([]byte, 10240)
	for i := range raw {
		raw[i] = "the quick brown fox jumps over the lazy dog\r\n"[i%45]
	}
	b.SetBytes(int64(len(raw)))
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		mk := crypto.NewMessageKeySalt()
		if err := Seal(&buf, raw, mk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen10K: open a stored 10 KB message and read it whole, as the
// IMAP view serves one.
func BenchmarkOpen10K(b *testing.B) {
	raw := make([]byte, 10240)
	for i := range raw {
		raw[i] = "the quick brown fox jumps over the lazy dog\r\n"[i%45]
	}
	obj, mk := seal(b, raw)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}
