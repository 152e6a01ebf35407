package payload

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/cairn-archive/cairn/crypto"
)

// ageOpen is the reference: the plaintext as age decrypts it.
func ageOpen(obj []byte, mk *crypto.MessageKey) ([]byte, error) {
	r, n, err := age.DecryptReaderAt(bytes.NewReader(obj), int64(len(obj)), mk.Identity())
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	if _, err := r.ReadAt(out, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return out, nil
}

// checkAgainstAge holds openSmall to age on obj: the same plaintext when
// it takes the object, an error from age too when it refuses it.
func checkAgainstAge(t testing.TB, obj []byte, mk *crypto.MessageKey) (took bool) {
	t.Helper()
	got, _, err := openSmall(bytes.NewReader(obj), int64(len(obj)), mk.FileKey[:])
	// Decrypting in place (OpenBuffer's way) judges alike, and leaves an
	// object it does not take as it was, for age to read.
	cp := append([]byte(nil), obj...)
	inPlace, ierr := decryptSmall(cp, mk.FileKey[:])
	switch {
	case errors.Is(ierr, errNotSmall) != errors.Is(err, errNotSmall), (ierr == nil) != (err == nil):
		t.Fatalf("in place: %v, openSmall: %v (%d-byte object)", ierr, err, len(obj))
	case errors.Is(ierr, errNotSmall) && !bytes.Equal(cp, obj):
		t.Fatalf("decryptSmall changed a %d-byte object it does not take", len(obj))
	case ierr == nil && !bytes.Equal(inPlace, got):
		t.Fatalf("in place and openSmall differ on a %d-byte object", len(obj))
	}
	want, aerr := ageOpen(obj, mk)
	switch {
	case errors.Is(err, errNotSmall):
		return false
	case err != nil:
		if aerr == nil {
			t.Fatalf("openSmall refused an object age opens (%d bytes): %v", len(obj), err)
		}
	case aerr != nil:
		t.Fatalf("openSmall opened an object age refuses (%d bytes): %v", len(obj), aerr)
	case !bytes.Equal(got, want):
		t.Fatalf("openSmall and age differ on a %d-byte object", len(obj))
	}
	return true
}

// Objects around the STREAM chunk size: one chunk is opened by openSmall
// with age's result, two chunks are left to age; Open reads both.
func TestOpenSmallMatchesAge(t *testing.T) {
	took := map[bool]int{}
	for _, n := range []int{1, 100, 10 << 10, 65400, 65480, 65490, 65500, 65510, 65520, 65536, 65600, 70000, 200 << 10} {
		raw := make([]byte, n)
		rand.Read(raw) // incompressible: the plaintext is about n bytes
		obj, mk := seal(t, raw)
		took[checkAgainstAge(t, obj, mk)]++
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got, err := r.Bytes(); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("n=%d: round trip differs (%v)", n, err)
		}
	}
	if took[true] == 0 || took[false] == 0 {
		t.Fatalf("the sizes did not cover both paths: %v", took)
	}
}

// Every single flipped byte of a small object, and every truncation, is
// refused by Open; where openSmall decides, it agrees with age.
func TestOpenSmallRefusesDamage(t *testing.T) {
	obj, mk := seal(t, []byte("Subject: x\r\n\r\nsmall body\r\n"))
	if !checkAgainstAge(t, obj, mk) {
		t.Fatal("a small object was not taken by openSmall")
	}
	// The MAC's last base64 character carries two unused bits: another
	// spelling of the same MAC is not age's, and age refuses it (a lenient
	// decoder once let openSmall take it, in about one run of ten).
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	last := headerLen - 2
	v := strings.IndexByte(alphabet, obj[last])
	if v < 0 {
		t.Fatalf("byte %d of the header is %q, not the MAC's last character", last, obj[last])
	}
	respelled := bytes.Clone(obj)
	respelled[last] = alphabet[v^1]
	checkAgainstAge(t, respelled, mk)
	if _, err := Open(bytes.NewReader(respelled), int64(len(respelled)), mk); err == nil {
		t.Fatal("a MAC spelled with its unused bits set: opened")
	}
	for i := range obj {
		for bit := byte(1); bit != 0; bit <<= 1 {
			bad := bytes.Clone(obj)
			bad[i] ^= bit
			checkAgainstAge(t, bad, mk)
			if r, err := Open(bytes.NewReader(bad), int64(len(bad)), mk); err == nil {
				if _, err := r.Bytes(); err == nil {
					t.Fatalf("byte %d ^ %#x: opened", i, bit)
				}
			}
		}
	}
	for n := range len(obj) {
		checkAgainstAge(t, obj[:n], mk)
		if _, err := Open(bytes.NewReader(obj[:n]), int64(n), mk); err == nil {
			t.Fatalf("truncated to %d bytes: opened", n)
		}
	}
	other := crypto.NewMessageKeySalt()
	if _, _, err := openSmall(bytes.NewReader(obj), int64(len(obj)), other.FileKey[:]); err == nil || errors.Is(err, errNotSmall) {
		t.Fatalf("another file key: %v", err)
	}
}

// edit is a fuzz input's change to b: data written over b at a position
// from at, inserted there, or as many bytes cut (op % 3).
func edit(b []byte, at uint16, data []byte, op uint8) []byte {
	pos := int(at) % (len(b) + 1)
	switch op % 3 {
	case 0: // overwrite
		m := bytes.Clone(b)
		copy(m[pos:], data)
		return m
	case 1: // insert
		return append(append(append([]byte{}, b[:pos]...), data...), b[pos:]...)
	default: // cut
		return append(append([]byte{}, b[:pos]...), b[min(len(b), pos+len(data)):]...)
	}
}

// FuzzOpenSmall: any edit of a valid object (bytes replaced, inserted or
// cut) gets the same verdict and plaintext from openSmall as from age.
func FuzzOpenSmall(f *testing.F) {
	raw := bytes.Repeat([]byte("Subject: fuzz\r\n\r\nbody line\r\n"), 20)
	var mk crypto.MessageKey
	for i := range mk.FileKey {
		mk.FileKey[i] = byte(i)
	}
	var buf bytes.Buffer
	if err := Seal(&buf, raw, &mk, Fast); err != nil {
		f.Fatal(err)
	}
	obj := buf.Bytes()
	f.Add(uint16(0), []byte{}, uint8(0))
	f.Add(uint16(20), []byte("x"), uint8(1))
	f.Add(uint16(headerLen-3), []byte("AA"), uint8(2))
	f.Add(uint16(len(obj)-5), []byte{0}, uint8(3))
	f.Fuzz(func(t *testing.T, at uint16, data []byte, op uint8) {
		m := edit(obj, at, data, op)
		key := mk // Seal set the file key; keep it
		checkAgainstAge(t, m, &key)
	})
}

// What Seal writes is what openSmall expects: every object, small or not,
// decrypts with age to the plaintext Open reads, and the small ones carry
// the cairn header that openSmall takes.
func TestSealIsAge(t *testing.T) {
	for _, n := range []int{0, 1, 10 << 10, 65000, 65500, 70000, FrameSize, FrameSize + 1, 2*FrameSize + 5} {
		raw := make([]byte, n)
		rand.Read(raw[:n/2]) // half incompressible
		obj, mk := seal(t, raw)
		plain, err := ageOpen(obj, mk)
		if err != nil {
			t.Fatalf("n=%d: age cannot open the object: %v", n, err)
		}
		small := int64(len(obj)) <= smallLimit
		if small && !bytes.HasPrefix(obj, []byte(cairnHeader+" ")) {
			t.Fatalf("n=%d: a small object without the cairn header", n)
		}
		if small {
			got, _, err := openSmall(bytes.NewReader(obj), int64(len(obj)), mk.FileKey[:])
			if err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("n=%d: openSmall: %v", n, err)
			}
		}
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got, err := r.Bytes(); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("n=%d: round trip differs (%v)", n, err)
		}
	}
	// Incompressible messages at the largest size sealSmall takes and just
	// past it (age then writes the object): a frame as large as zstd makes.
	limit := 0
	for zstdBound(limit+1)+tableSize(1) <= chunkSize {
		limit++
	}
	for _, n := range []int{limit - 1, limit, limit + 1} {
		raw := make([]byte, n)
		rand.Read(raw)
		obj, mk := seal(t, raw)
		plain, err := ageOpen(obj, mk)
		if err != nil {
			t.Fatalf("n=%d: age cannot open the object: %v", n, err)
		}
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got, err := r.Bytes(); err != nil || !bytes.Equal(got, raw) || len(plain) < n {
			t.Fatalf("n=%d: round trip differs (%v)", n, err)
		}
	}
	// Two seals of the same bytes share nothing: file key and nonce are
	// fresh each time.
	a, mka := seal(t, []byte("same"))
	b, mkb := seal(t, []byte("same"))
	if mka.FileKey == mkb.FileKey || bytes.Equal(a[headerLen:headerLen+nonceLen], b[headerLen:headerLen+nonceLen]) {
		t.Fatal("file key or payload nonce reused")
	}
}
