package message

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds returns the corpus, the test messages, and a few small
// hostile inputs.
func fuzzSeeds(f testing.TB) [][]byte {
	var seeds [][]byte
	for _, raw := range corpus(f) {
		seeds = append(seeds, raw)
	}
	for _, name := range []string{"testdata/golden.eml", "testdata/typical-10k.eml"} {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, raw)
	}
	for _, s := range []string{
		"",
		"\n",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n--b--",
		"Content-Type: multipart/digest; boundary=b\n\n--b\n\n--b--\n",
		"Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n",
		"Content-Type: multipart/mixed; boundary=\"\"\n\n----\n",
		"To: a:b:c;;<@x:y@z>,(((\n\n",
		"Content-Type: a/b; n*0*=x'y'%; n*1*=%ZZ\n\n",
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzParse checks that Parse never panics and keeps its invariants, and
// that everything the IMAP view does with the result works on it.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, probs := Parse(raw)
		if err := checkTree(raw, p); err != nil {
			t.Fatal(err)
		}
		if len(probs) > maxProblems+1 {
			t.Fatalf("%d problems", len(probs))
		}
		for _, pr := range probs {
			if pr.Offset < 0 || pr.Offset > int64(len(raw)) {
				t.Fatalf("problem offset %d", pr.Offset)
			}
		}
		n := 0
		if err := Text(raw, p, func(s string) error {
			if !utf8.ValidString(s) {
				t.Fatalf("text chunk not UTF-8: %q", s)
			}
			n += len(s)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n > MaxText {
			t.Fatalf("%d bytes of text", n)
		}
		// Every part is reachable by a section path, and decodes.
		var visit func(q *Part, path []int)
		visit = func(q *Part, path []int) {
			if r, err := q.DecodedReader(raw); err == nil {
				if _, err := io.Copy(io.Discard, r); err != nil {
					t.Fatal(err)
				}
			}
			HeaderFields(nil, q.Header(raw), []string{"content-type", "subject"}, false)
			for i := range q.Parts {
				c := &q.Parts[i]
				cp := append(append([]int(nil), path...), i+1)
				if got, err := p.Section(cp); err != nil || got != c {
					t.Fatalf("section %v: %v", cp, err)
				}
				visit(c, cp)
			}
			if q.Message != nil {
				// The parts of an embedded message are numbered below the
				// message/rfc822 part; a top-level message/rfc822 message
				// is part 1 of itself (RFC 9051 §6.4.5).
				mp := path
				if len(mp) == 0 {
					mp = []int{1}
				}
				if len(q.Message.Parts) == 0 {
					// A message that is not multipart is part 1 of itself.
					mp = append(append([]int(nil), mp...), 1)
					if got, err := p.Section(mp); err != nil || got != q.Message {
						t.Fatalf("section %v: %v", mp, err)
					}
				}
				visit(q.Message, mp)
			}
		}
		visit(p, nil)
	})
}

// FuzzUnmarshal checks that Unmarshal never panics, that whatever it
// accepts keeps the invariants and encodes again to the same tree, and
// that UnmarshalRoot reads the same root from it.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		p, _ := Parse(s)
		enc, err := p.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		root, rootErr := UnmarshalRoot(b)
		p, err := Unmarshal(b)
		if err != nil {
			return
		}
		if err := checkDecoded(p); err != nil {
			t.Fatal(err)
		}
		if rootErr != nil {
			t.Fatalf("Unmarshal accepts what UnmarshalRoot refuses: %v", rootErr)
		}
		if err := sameRoot(root, p); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzHeaderFields checks that the header selector returns whole lines of
// the header, in order, and that FIELDS and FIELDS.NOT split it.
func FuzzHeaderFields(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		p, _ := Parse(s)
		f.Add(p.Header(s), "subject,from,content-type")
		f.Add(p.Header(s), "x-mailer,received,")
	}
	f.Fuzz(func(t *testing.T, header []byte, list string) {
		names := strings.Split(list, ",")
		in := HeaderFields(nil, header, names, false)
		out := HeaderFields(nil, header, names, true)
		for _, sel := range [][]byte{in, out} {
			// Each selected line is a line of header, in order.
			pos := 0
			for len(sel) > 0 {
				e := bytes.IndexByte(sel, '\n') + 1
				if e == 0 {
					e = len(sel)
				}
				line := sel[:e]
				i := bytes.Index(header[pos:], line)
				if i < 0 {
					t.Fatalf("line %q not in header after %d", line, pos)
				}
				pos += i + len(line)
				sel = sel[e:]
			}
		}
		if len(in)+len(out) > 2*len(header) || len(in) > len(header) || len(out) > len(header) {
			t.Fatalf("selections %d + %d of a %d byte header", len(in), len(out), len(header))
		}
		all := HeaderFields(nil, header, nil, true)
		if len(in)+len(out) < len(all) {
			t.Fatalf("FIELDS (%d) and FIELDS.NOT (%d) lose lines of %d", len(in), len(out), len(all))
		}
	})
}
