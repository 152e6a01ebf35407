package crypto

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// RFC 4231 test case 2 (HMAC-SHA-256) and RFC 5869 test cases 1 and 3
// (HKDF-SHA-256, the first 32 bytes of each OKM).
func TestKDFVectors(t *testing.T) {
	mac := HMACSHA256([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if got, want := hex.EncodeToString(mac[:]), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("HMAC-SHA-256 = %s, want %s", got, want)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	okm := HKDFSHA256(ikm, unhex("000102030405060708090a0b0c"), string(unhex("f0f1f2f3f4f5f6f7f8f9")))
	if got, want := hex.EncodeToString(okm[:]), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"; got != want {
		t.Errorf("HKDF case 1 = %s, want %s", got, want)
	}
	okm = HKDFSHA256(ikm, nil, "")
	if got, want := hex.EncodeToString(okm[:]), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"; got != want {
		t.Errorf("HKDF case 3 = %s, want %s", got, want)
	}
}

func TestKDFAllocations(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 16)
	salt := bytes.Repeat([]byte{9}, 16)
	if n := testing.AllocsPerRun(100, func() {
		HKDFSHA256(secret, salt, "payload")
		HMACSHA256(secret, []byte("age-encryption.org/v1\n-> cairn-key v1\n\n---"))
	}); n != 0 {
		t.Errorf("%v allocations per derivation, want 0", n)
	}
}

// FuzzKDF holds both functions to the standard library's, on every length
// of key, message and info (past the stack buffers too).
func FuzzKDF(f *testing.F) {
	f.Add([]byte("key"), []byte("salt"), "info")
	f.Add([]byte{}, []byte{}, "")
	f.Add(bytes.Repeat([]byte{1}, 65), bytes.Repeat([]byte{2}, 129), strings.Repeat("i", 128))
	f.Fuzz(func(t *testing.T, a, b []byte, info string) {
		m := hmac.New(sha256.New, a)
		m.Write(b)
		if got := HMACSHA256(a, b); !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("HMACSHA256(%x, %x) differs from crypto/hmac", a, b)
		}
		if len(info) > 255*32 {
			return
		}
		want, err := hkdf.Key(sha256.New, a, b, info, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := HKDFSHA256(a, b, info); !bytes.Equal(got[:], want) {
			t.Fatalf("HKDFSHA256(%x, %x, %q) differs from crypto/hkdf", a, b, info)
		}
		if len(b) == 0 {
			if got := HKDFSHA256(a, nil, info); !bytes.Equal(got[:], want) {
				t.Fatalf("HKDFSHA256 with a nil salt differs")
			}
		}
	})
}
