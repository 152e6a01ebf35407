package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden-v1.bin")

// TestGolden pins the version 1 encoding: the committed vector must be what
// MarshalBinary writes for testdata/golden.eml, and must decode to the
// tree Parse returns. If this test fails, the encoding changed: that needs
// a new Version, not a new vector.
func TestGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/golden.eml")
	if err != nil {
		t.Fatal(err)
	}
	p, probs := Parse(raw)
	if len(probs) > 0 {
		t.Errorf("golden.eml has problems: %v", probs)
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("testdata/golden-v1.bin", enc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile("testdata/golden-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, golden) {
		t.Errorf("MarshalBinary differs from testdata/golden-v1.bin (%d vs %d bytes)", len(enc), len(golden))
	}
	back, err := Unmarshal(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("Unmarshal(golden) differs from Parse(golden.eml)")
	}
	// Spot checks of the layout described in the package comment: version,
	// root flags (params, parts, envelope), header delta 0, header length.
	if golden[0] != 1 {
		t.Errorf("version byte %d", golden[0])
	}
	if want := byte(fParams | fParts | fEnvelope | 0x80); golden[1] != want || golden[2] != fLanguage>>7 {
		t.Errorf("root flags % x, want %x %x", golden[1:3], want, fLanguage>>7)
	}
	if golden[3] != 0 {
		t.Errorf("root header delta %d", golden[3])
	}
}

// UnmarshalRoot reads the root of every seed's structure as Unmarshal
// does, without its parts.
func TestUnmarshalRoot(t *testing.T) {
	for _, raw := range fuzzSeeds(t) {
		p, _ := Parse(raw)
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		root, err := UnmarshalRoot(enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRoot(root, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := UnmarshalRoot([]byte{Version, 0x80}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated root: %v", err)
	}
}

// sameRoot compares root, as UnmarshalRoot read it, with full's root.
func sameRoot(root, full *Part) error {
	if root.Parts != nil || root.Message != nil {
		return fmt.Errorf("UnmarshalRoot decoded parts")
	}
	want := *full
	want.Parts, want.Message = nil, nil
	if !reflect.DeepEqual(*root, want) {
		return fmt.Errorf("UnmarshalRoot's root %+v differs from Unmarshal's %+v", *root, want)
	}
	return nil
}

func TestMarshalSize(t *testing.T) {
	raw, err := os.ReadFile("testdata/typical-10k.eml")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := Parse(raw)
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) > 500 {
		t.Errorf("a %d byte message encodes to %d bytes", len(raw), len(enc))
	}
	t.Logf("%d byte message: %d byte structure", len(raw), len(enc))
}

func TestUnmarshalCorrupt(t *testing.T) {
	golden, err := os.ReadFile("testdata/golden-v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unmarshal(nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("empty: %v", err)
	}
	if _, err := Unmarshal([]byte{2}); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: %v", err)
	}
	// Every truncation fails.
	for n := 1; n < len(golden); n++ {
		if _, err := Unmarshal(golden[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := Unmarshal(append(bytes.Clone(golden), 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
	// Every flipped byte either fails or decodes to a consistent tree.
	for i := 1; i < len(golden); i++ {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(golden)
			b[i] ^= x
			p, err := Unmarshal(b)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("byte %d ^ %#x: %v", i, x, err)
				}
				continue
			}
			if err := checkDecoded(p); err != nil {
				t.Fatalf("byte %d ^ %#x: %v", i, x, err)
			}
		}
	}
	// Nested parts that each claim many children fail before allocating
	// more than MaxParts parts in all.
	var nested []byte
	nested = append(nested, 1)
	for i := 0; i < 3; i++ {
		nested = append(nested, fParts, 0, 0, 0, 7, 9) // multipart/mixed
		nested = binary.AppendUvarint(nested, MaxParts/2)
	}
	nested = append(nested, make([]byte, 6*MaxParts)...)
	if _, err := Unmarshal(nested); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("nested claims: %v", err)
	}
	// Huge counts do not allocate before failing.
	huge := []byte{1, fParts, 0, 0, 0, 7, 9, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := Unmarshal(huge); !errors.Is(err, ErrCorrupt) {
		t.Errorf("huge count: %v", err)
	}
}

// checkDecoded checks the structural invariants Unmarshal promises (the
// offsets cannot be checked against a raw message here).
func checkDecoded(root *Part) error {
	var walk func(p *Part, depth int) error
	n := 0
	walk = func(p *Part, depth int) error {
		n++
		if depth > MaxDepth || n > MaxParts {
			return errors.New("limits")
		}
		if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.BodyEnd) {
			return errors.New("offsets out of order")
		}
		if (p.MediaType == "multipart") != (len(p.Parts) > 0) || isMessageType(p.MediaType, p.MediaSubtype) != (p.Message != nil) {
			return errors.New("type and children disagree")
		}
		prev := p.BodyStart
		for i := range p.Parts {
			c := &p.Parts[i]
			if c.HeaderStart < prev || c.BodyEnd > p.BodyEnd {
				return errors.New("child outside parent")
			}
			if err := walk(c, depth+1); err != nil {
				return err
			}
			prev = c.BodyEnd
		}
		if m := p.Message; m != nil {
			if m.HeaderStart < p.BodyStart || m.BodyEnd > p.BodyEnd || m.Envelope == nil {
				return errors.New("bad embedded message")
			}
			return walk(m, depth+1)
		}
		return nil
	}
	if err := walk(root, 0); err != nil {
		return err
	}
	// What decodes must encode again to the same bytes' meaning.
	enc, err := root.MarshalBinary()
	if err != nil {
		return err
	}
	back, err := Unmarshal(enc)
	if err != nil {
		return err
	}
	if !reflect.DeepEqual(back, root) {
		return errors.New("re-encoding differs")
	}
	return nil
}

func TestMarshalRejectsBadTrees(t *testing.T) {
	bad := []*Part{
		{HeaderStart: 5, BodyStart: 4, BodyEnd: 6, MediaType: "text", MediaSubtype: "plain"},
		{BodyEnd: 10, MediaType: "multipart", MediaSubtype: "mixed", Parts: []Part{{HeaderStart: 2, BodyStart: 3, BodyEnd: 11, MediaType: "text", MediaSubtype: "plain"}}},
	}
	for i, p := range bad {
		if _, err := p.MarshalBinary(); err == nil {
			t.Errorf("tree %d encoded", i)
		}
	}
}
