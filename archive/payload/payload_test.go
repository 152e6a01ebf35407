package payload

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/cairn-archive/cairn/crypto"
)

func seal(t testing.TB, raw []byte) ([]byte, *crypto.MessageKey) {
	return sealAs(t, raw, Fast)
}

func sealAs(t testing.TB, raw []byte, c Compression) ([]byte, *crypto.MessageKey) {
	mk := crypto.NewMessageKeySalt()
	var buf bytes.Buffer
	if err := Seal(&buf, raw, mk, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mk
}

func TestRoundTripSizes(t *testing.T) {
	for _, c := range []Compression{Fast, Compact} {
		for _, n := range []int{0, 1, 100, 70_000, 200_000, FrameSize - 1, FrameSize, FrameSize + 1, 3*FrameSize + 17} {
			roundTrip(t, c, n)
		}
	}
}

func roundTrip(t *testing.T, c Compression, n int) {
	t.Helper()
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte('a' + i%23)
	}
	rand.Read(raw[:n/3])
	obj, mk := sealAs(t, raw, c)
	r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
	if err != nil {
		t.Fatalf("%v n=%d: %v", c, n, err)
	}
	if r.Size() != int64(n) {
		t.Fatalf("%v n=%d: size %d", c, n, r.Size())
	}
	got, err := r.Bytes()
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("%v n=%d: round trip differs (err %v)", c, n, err)
	}
	// OpenBuffer, which decrypts a one-chunk object in its buffer and
	// reads any other through age, reads the same bytes.
	buf := Buffer(len(obj) + 40)
	copy(buf[40:], obj)
	rb, err := OpenBuffer(buf, buf[40:40+len(obj)], mk)
	if err != nil {
		t.Fatalf("%v n=%d: OpenBuffer: %v", c, n, err)
	}
	if got, err := rb.Bytes(); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("%v n=%d: OpenBuffer reads other bytes (err %v)", c, n, err)
	}
	rb.Close()
	// Random ranges.
	for k := 0; k < 50 && n > 0; k++ {
		off := mrand.IntN(n)
		l := mrand.IntN(n - off + 1)
		part, err := io.ReadAll(r.NewSectionReader(int64(off), int64(l)))
		if err != nil || !bytes.Equal(part, raw[off:off+l]) {
			t.Fatalf("%v n=%d range %d+%d differs (err %v)", c, n, off, l, err)
		}
	}
}

// TestCompressions: both settings give standard zstd that one reader opens;
// Compact is smaller on mail text, Fast stores its literals raw (no
// Huffman-coded literals section: block header type 0 or 1, RFC 8878 §3.1.1.3.1.1).
func TestCompressions(t *testing.T) {
	var raw []byte
	for i := 0; len(raw) < 40<<10; i++ {
		raw = fmt.Appendf(raw, "Received: from mx%d.example.net by archive; line %d of the quarterly figures, %x\r\n", i%7, i, i*7919)
	}
	sizes := map[Compression]int{}
	for _, c := range []Compression{Fast, Compact} {
		obj, mk := sealAs(t, raw, c)
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := r.Bytes(); err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%v: round trip differs (err %v)", c, err)
		}
		sizes[c] = len(obj)
		// The plaintext's first block: frame header, then the block's
		// literals section header.
		plain := r.whole
		if plain == nil {
			t.Fatalf("%v: a %d-byte object is not read whole", c, len(obj))
		}
		lit := literalsType(t, plain)
		if c == Fast && lit > 1 {
			t.Fatalf("fast: literals section type %d, want raw or RLE", lit)
		}
		if c == Compact && lit < 2 {
			t.Fatalf("compact: literals section type %d, want Huffman-coded", lit)
		}
	}
	if sizes[Compact] >= sizes[Fast] {
		t.Fatalf("compact %d bytes, fast %d: compact is not smaller", sizes[Compact], sizes[Fast])
	}
	for s, want := range map[string]Compression{"": Fast, "fast": Fast, "compact": Compact} {
		if c, err := ParseCompression(s); err != nil || c != want {
			t.Fatalf("ParseCompression(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCompression("zip"); err == nil {
		t.Fatal("ParseCompression(zip) accepted")
	}
}

// literalsType is Literals_Block_Type of the first compressed block of the
// zstd frame at the start of plain (RFC 8878 §3.1.1).
func literalsType(t *testing.T, plain []byte) int {
	t.Helper()
	if len(plain) < 6 || plain[0] != 0x28 || plain[1] != 0xb5 || plain[2] != 0x2f || plain[3] != 0xfd {
		t.Fatal("plaintext does not start with a zstd frame")
	}
	fhd := plain[4]
	pos := 5
	single := fhd>>5&1 == 1
	if !single {
		pos++ // window descriptor
	}
	pos += []int{0, 1, 2, 4}[fhd&3] // dictionary ID
	fcs := []int{0, 2, 4, 8}[fhd>>6]
	if fcs == 0 && single {
		fcs = 1
	}
	pos += fcs
	bh := int(plain[pos]) | int(plain[pos+1])<<8 | int(plain[pos+2])<<16
	if bt := bh >> 1 & 3; bt != 2 {
		t.Fatalf("first block type %d, want compressed (2)", bt)
	}
	return int(plain[pos+3] & 3)
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
	flipsDetected(t, obj, mk, 10, len(obj)/2, len(obj)-1)
	// An object of several age chunks that Open reads whole (its
	// plaintext is at most smallObject) and one it reads a frame at a
	// time: a flipped bit anywhere is found.
	for _, n := range []int{100 << 10, smallObject - 1000, smallObject + 1000} {
		raw := make([]byte, n)
		rand.Read(raw)
		obj, mk := seal(t, raw)
		flipsDetected(t, obj, mk, 10, 200, 70_000, len(obj)/2, len(obj)-1)
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

// flipsDetected flips one bit of obj at each position in turn and checks
// that opening and reading it fails.
func flipsDetected(t *testing.T, obj []byte, mk *crypto.MessageKey, positions ...int) {
	t.Helper()
	for _, pos := range positions {
		bad := bytes.Clone(obj)
		bad[pos] ^= 1
		r, err := Open(bytes.NewReader(bad), int64(len(bad)), mk)
		if err == nil {
			_, err = r.Bytes()
		}
		if err == nil {
			t.Fatalf("%d-byte object: flip at %d not detected", len(obj), pos)
		}
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
		if err := Seal(&buf, raw, mk, Fast); err != nil {
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

// BenchmarkOpen100K: a 100 KB message that does not compress (an
// attachment), two age chunks: opened and read whole.
func BenchmarkOpen100K(b *testing.B) {
	raw := make([]byte, 100<<10)
	rand.Read(raw)
	obj, mk := seal(b, raw)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), mk)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Bytes(); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// FuzzReader: Open and its range reads on any container plaintext (a valid
// one, of one frame or two, edited), encrypted as Seal encrypts: never a
// panic, and when the whole reads, reading it in pieces gives the same bytes.
func FuzzReader(f *testing.F) {
	var containers [][]byte
	for _, n := range []int{1200, FrameSize + 300} {
		raw := bytes.Repeat([]byte("Subject: fuzz\r\n\r\nbody line\r\n"), n/28+1)[:n]
		obj, mk := seal(f, raw)
		c, err := ageOpen(obj, mk)
		if err != nil {
			f.Fatal(err)
		}
		containers = append(containers, c)
	}
	f.Add(uint16(0), []byte{}, uint8(0), uint16(7))
	f.Add(uint16(0), []byte{}, uint8(4), uint16(5000))
	f.Add(uint16(3), []byte{0xff}, uint8(4), uint16(1000))
	f.Add(uint16(60000), []byte{1, 2, 3}, uint8(5), uint16(4096))
	f.Add(uint16(10), []byte("x"), uint8(2), uint16(13))
	f.Fuzz(func(t *testing.T, at uint16, data []byte, op uint8, step uint16) {
		c := containers[int(op>>2)%len(containers)]
		m := edit(c, at, data, op)
		var mk crypto.MessageKey
		var obj bytes.Buffer
		w, err := mk.Encrypt(&obj)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(m)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		unchanged := bytes.Equal(m, c)
		r, err := Open(bytes.NewReader(obj.Bytes()), int64(obj.Len()), &mk)
		if err != nil {
			if unchanged {
				t.Fatalf("Open refused an unedited container: %v", err)
			}
			return
		}
		whole, err := r.Bytes()
		if err != nil {
			if unchanged {
				t.Fatalf("an unedited container does not read: %v", err)
			}
			return // a frame that does not decode
		}
		n := int(step)%4099 + 1
		p := make([]byte, n)
		var pieces []byte
		for off := int64(0); off < r.Size(); off += int64(n) {
			k, err := r.ReadAt(p, off)
			if err != nil && err != io.EOF {
				t.Fatalf("the whole read, a piece at %d did not: %v", off, err)
			}
			pieces = append(pieces, p[:k]...)
		}
		if !bytes.Equal(whole, pieces) {
			t.Fatalf("whole (%d bytes) and pieces of %d (%d bytes) differ", len(whole), n, len(pieces))
		}
	})
}

// Closed readers give their buffers to the next ones: many readers opened,
// read (by ranges and whole) and closed at once, on several goroutines,
// each still reads exactly its own message, and a closed reader reads
// nothing.
func TestReadersReuseBuffers(t *testing.T) {
	type msg struct {
		raw, obj []byte
		mk       *crypto.MessageKey
	}
	var msgs []msg
	for i, n := range []int{1, 700, 9000, 14000, 60000, FrameSize + 5000, 2*FrameSize + 1} {
		raw := make([]byte, n)
		for j := range raw {
			raw[j] = byte('a' + (i*7+j)%26)
		}
		rand.Read(raw[:n/4])
		obj, mk := seal(t, raw)
		msgs = append(msgs, msg{raw, obj, mk})
	}
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			var err error
			defer func() { done <- err }()
			for k := 0; k < 200; k++ {
				m := msgs[mrand.IntN(len(msgs))]
				r, oerr := Open(bytes.NewReader(m.obj), int64(len(m.obj)), m.mk)
				if oerr != nil {
					err = oerr
					return
				}
				off := mrand.IntN(len(m.raw))
				part := make([]byte, mrand.IntN(len(m.raw)-off)+1)
				if _, rerr := r.ReadAt(part, int64(off)); rerr != nil && rerr != io.EOF || !bytes.Equal(part, m.raw[off:off+len(part)]) {
					err = fmt.Errorf("%d bytes at %d of a %d-byte message differ (%v)", len(part), off, len(m.raw), rerr)
					return
				}
				var whole bytes.Buffer
				if _, werr := r.WriteTo(&whole); werr != nil || !bytes.Equal(whole.Bytes(), m.raw) {
					err = fmt.Errorf("a %d-byte message read whole differs (%v)", len(m.raw), werr)
					return
				}
				r.Close()
				if _, rerr := r.ReadAt(make([]byte, 1), 0); rerr == nil {
					err = fmt.Errorf("a closed reader read")
					return
				}
				if _, werr := r.WriteTo(io.Discard); werr == nil {
					err = fmt.Errorf("a closed reader wrote")
					return
				}
				r.Close() // twice is harmless
			}
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// writeCounter counts the Writes an io.Writer gets and keeps their bytes.
type writeCounter struct {
	bytes.Buffer
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

// Seal assembles a one-chunk object in a pooled buffer: concurrent seals
// never see each other's bytes, an object is one Write exactly when
// OneWrite says so, and what was written stays intact after the buffer
// goes back to the pool and is used again.
func TestSealsReuseBuffers(t *testing.T) {
	sizes := []int{0, 1, 700, 9000, 14000, 60000, 64 << 10, FrameSize + 5000}
	type sealed struct {
		raw []byte
		obj *writeCounter
		mk  *crypto.MessageKey
	}
	results := make(chan sealed)
	for g := 0; g < 4; g++ {
		go func() {
			for k := 0; k < 50; k++ {
				n := sizes[mrand.IntN(len(sizes))]
				raw := make([]byte, n)
				rand.Read(raw[:n/2])
				mk := crypto.NewMessageKeySalt()
				w := &writeCounter{}
				if err := Seal(w, raw, mk, Fast); err != nil {
					panic(err)
				}
				results <- sealed{raw, w, mk}
			}
		}()
	}
	var all []sealed
	for range 4 * 50 {
		all = append(all, <-results)
	}
	for _, s := range all {
		if one := OneWrite(len(s.raw)); one != (s.obj.writes == 1) {
			t.Errorf("%d bytes: OneWrite %v, %d writes", len(s.raw), one, s.obj.writes)
		}
		obj := s.obj.Bytes()
		r, err := Open(bytes.NewReader(obj), int64(len(obj)), s.mk)
		if err != nil {
			t.Fatalf("%d bytes: %v", len(s.raw), err)
		}
		if got, err := r.Bytes(); err != nil || !bytes.Equal(got, s.raw) {
			t.Fatalf("%d bytes: the object reads back other bytes (%v)", len(s.raw), err)
		}
	}
	if !OneWrite(40<<10) || OneWrite(64<<10) {
		t.Errorf("OneWrite(40 KiB) %v, OneWrite(64 KiB) %v: want one chunk for the first only", OneWrite(40<<10), OneWrite(64<<10))
	}
}
