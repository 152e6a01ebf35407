package importer

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// FuzzMboxReader checks the streaming mbox reader against the whole-input
// reference reader on any input, quoting, size limit and buffer size: no
// panic; spans tile the input; each message is its span's content with the
// From_ line, the writer's blank line and one level of quoting removed, so
// every byte yielded comes from the input.
func FuzzMboxReader(f *testing.F) {
	seeds := []string{
		"",
		"From a Thu Jan  1 00:00:00 2024\nS: a\n\nbody\n\nFrom b\nS: b\n",
		"From a\r\nS: a\r\n\r\n>From x\r\n>>From y\r\n\r\nFrom b\r\n",
		"junk\nFrom a\n\n\nFrom b\n>From\n",
		"From : obsolete\n\nFrom a\nFrom b\n\nFrom c",
		"\n\r\nFrom a\nx\r\rFrom y\n\n>From z",
		"From a\n" + strings.Repeat(">", 70) + "From q\n\n" + strings.Repeat("x", 90) + "\n",
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint8(i%3), uint16(i*7), uint8(i))
	}
	f.Fuzz(func(t *testing.T, data []byte, q uint8, max uint16, buf uint8) {
		quoting := Quoting(q % 3)
		limit := int64(max)
		if limit == 0 {
			limit = 1 << 20
		}
		bufSize := 16 + int(buf)
		got := readSpans(t, data, quoting, limit, bufSize)
		var total int64
		for i, sp := range got {
			if sp.Offset != total {
				t.Fatalf("span %d at %d, want %d", i, sp.Offset, total)
			}
			total += sp.Length
			if sp.Err == nil {
				if int64(len(sp.Raw)) > limit {
					t.Fatalf("span %d: %d bytes over the limit %d", i, len(sp.Raw), limit)
				}
				in := data[sp.Offset : sp.Offset+sp.Length]
				if !isSubsequence(sp.Raw, in) {
					t.Fatalf("span %d: message is not made of its span's bytes", i)
				}
			}
		}
		if total != int64(len(data)) {
			t.Fatalf("spans cover %d of %d bytes", total, len(data))
		}
		if d := diffSpans(got, referenceSpans(data, quoting, limit)); d != "" {
			t.Fatal(d)
		}
	})
}

// isSubsequence reports whether sub is s with some bytes removed.
func isSubsequence(sub, s []byte) bool {
	for _, c := range sub {
		i := bytes.IndexByte(s, c)
		if i < 0 {
			return false
		}
		s = s[i+1:]
	}
	return true
}

// FuzzParseMaildirName: no panic; the parts put back together give the name;
// flags come from a version 2 info; a time comes from the leading digits.
func FuzzParseMaildirName(f *testing.F) {
	for _, s := range []string{
		"1700000000.M123P456Q7.host,S=1234,W=1300:2,FS",
		"1700000000.M1.host:2,",
		"1700000000.M1.host",
		"1700000000.M1.host!2,RS",
		"1700000000.M1.host;2,T",
		"1700000000.M1.host:1,experimental",
		":2,S",
		"1.2.3",
		"12345678901.x:2,S:2,T",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		n := ParseMaildirName(name)
		// Either all of it is the unique part, or unique, one separator, info.
		if n.Unique != name && (len(n.Unique)+1+len(n.Info) != len(name) || !strings.HasPrefix(name, n.Unique) || !strings.HasSuffix(name, n.Info)) {
			t.Fatalf("%q: %q + sep + %q does not give the name back", name, n.Unique, n.Info)
		}
		if strings.ContainsRune(n.Unique, ':') {
			t.Fatalf("%q: unique %q holds the separator", name, n.Unique)
		}
		if n.Flags != "" && n.Info != "2,"+n.Flags {
			t.Fatalf("%q: flags %q not from info %q", name, n.Flags, n.Info)
		}
		if !n.Time.IsZero() && !strings.HasPrefix(n.Unique, strconv.FormatInt(n.Time.Unix(), 10)+".") {
			t.Fatalf("%q: time %v not from the leading digits", name, n.Time)
		}
	})
}
