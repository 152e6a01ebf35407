package audit

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets for the escapers: whatever the value, the escaped form must
// parse back (with the independent parsers in parse_test.go) to the value,
// and must never break the record apart (no raw newline, no stray
// delimiter). Run each for a minute:
//
//	go test ./audit -run '^$' -fuzz '^FuzzCEFValue$' -fuzztime 1m

func FuzzCEFValue(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		line := "k1=" + string(appendCEFValue(nil, a)) + " k2=" + string(appendCEFValue(nil, b))
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("raw newline: %q", line)
		}
		m, err := parseCEFExt(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if m["k1"] != a || m["k2"] != b || len(m) != 2 {
			t.Fatalf("round trip: %q %q -> %q", a, b, m)
		}
	})
}

func FuzzCEFHeader(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, "Cairn")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		line := "CEF:0|" + string(appendCEFHeader(nil, a)) + "|" + string(appendCEFHeader(nil, b)) + "|1|id|name|3|k=" + string(appendCEFValue(nil, a))
		r, err := parseCEF(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		nl := strings.NewReplacer("\r", " ", "\n", " ")
		if r.Header[1] != nl.Replace(a) || r.Header[2] != nl.Replace(b) || r.Header[3] != "1" || r.Ext["k"] != a {
			t.Fatalf("round trip: %q %q -> %q %q", a, b, r.Header, r.Ext)
		}
	})
}

func FuzzLEEFValue(f *testing.F) {
	for _, s := range hostile {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		line := "LEEF:2.0|" + string(appendLEEFHeader(nil, a)) + "|P|1|id|x09|k1=" + string(appendLEEFValue(nil, a)) + "\tk2=" + string(appendLEEFValue(nil, b))
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("raw newline: %q", line)
		}
		r, err := parseLEEF(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		nl := strings.NewReplacer("\r", " ", "\n", " ")
		if r.Header[1] != nl.Replace(a) || r.Attrs["k1"] != a || r.Attrs["k2"] != b || len(r.Attrs) != 2 {
			t.Fatalf("round trip: %q %q -> %q %q", a, b, r.Header, r.Attrs)
		}
	})
}

func FuzzSDValue(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Add("\xff\xfe]\"\\")
	f.Fuzz(func(t *testing.T, a string) {
		line := `<110>1 2026-01-01T00:00:00.000000Z h app - m [x@32473 p="` + string(appendSDValue(nil, a)) + `" q="2"] msg`
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("raw newline: %q", line)
		}
		m, err := parseSyslog(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want := strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return utf8.RuneError
			}
			return r
		}, a) // Map turns each invalid byte into U+FFFD
		if m.Params["p"] != want || m.Params["q"] != "2" || m.Msg != "msg" {
			t.Fatalf("round trip: %q -> %q (want %q)", a, m.Params, want)
		}
	})
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","id":"01936b2e-8a4c-7def-8123-456789abcdef","time":"2026-11-26T08:30:00Z","action":"auth.login","outcome":"success","hash":"0000000000000000000000000000000000000000000000000000000000000000"}`))
	f.Add([]byte(`{"hash":"x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			return
		}
		if got := AppendLine(nil, e.Bytes, e.Hash); !bytes.Equal(got, bytes.TrimRight(line, "\r\n")) {
			t.Fatalf("accepted %q but renders %q", line, got)
		}
	})
}
