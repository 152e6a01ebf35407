package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// marshal is what every function here must equal.
func marshal(t *testing.T, v any) ([]byte, error) {
	t.Helper()
	return json.Marshal(v)
}

var strings_ = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>",
	"\x00\x01\x07\b\t\n\v\f\r\x1b\x1f\x7f", "héllo wörld ✓ 😀",
	"line\u2028para\u2029end", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate",
	"\xf4\x90\x80\x80 beyond U+10FFFF", "trailing \xe2\x80",
}

func TestStringIsMarshals(t *testing.T) {
	for _, s := range strings_ {
		want, _ := marshal(t, s)
		if got := String([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("String(%q) = %s, want x%s", s, got, want)
		}
	}
}

func TestTimeIsMarshals(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 27, 20, 0, 0, 123456789, time.UTC),
		time.Date(2026, 11, 27, 20, 0, 0, 120000000, time.FixedZone("", 5*3600+1800)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	} {
		want, err := marshal(t, tm)
		got, gerr := Time(nil, tm)
		if err != nil || gerr != nil || !bytes.Equal(got, want) {
			t.Errorf("Time(%v) = %s, %v; want %s, %v", tm, got, gerr, want, err)
		}
	}
	// The times json.Marshal refuses, Time refuses too.
	for _, tm := range []time.Time{
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		if _, err := marshal(t, tm); err == nil {
			t.Fatalf("json.Marshal(%v) did not fail", tm)
		}
		if got, err := Time(nil, tm); err == nil {
			t.Errorf("Time(%v) = %s, want an error", tm, got)
		}
	}
}

func TestCollectionsAreMarshals(t *testing.T) {
	for _, ss := range [][]string{nil, {}, {"a"}, strings_} {
		want, _ := marshal(t, ss)
		if got := Strings(nil, ss); !bytes.Equal(got, want) {
			t.Errorf("Strings(%q) = %s, want %s", ss, got, want)
		}
	}
	for _, m := range []map[string]string{nil, {}, {"b": "2", "a": "1", "<": ">", "\xff": "x", "A": "é"}} {
		want, _ := marshal(t, m)
		if got := StringMap(nil, m); !bytes.Equal(got, want) {
			t.Errorf("StringMap(%q) = %s, want %s", m, got, want)
		}
	}
	for _, n := range []int64{0, -1, 1 << 62, -1 << 63} {
		want, _ := marshal(t, n)
		if got := Int(nil, n); !bytes.Equal(got, want) {
			t.Errorf("Int(%d) = %s, want %s", n, got, want)
		}
	}
	want, _ := marshal(t, uint64(1<<64-1))
	if got := Uint(nil, 1<<64-1); !bytes.Equal(got, want) {
		t.Errorf("Uint(max) = %s, want %s", got, want)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range strings_ {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := String(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("String(%q) = %s, want %s", s, got, want)
		}
		m := map[string]string{s: s, "k" + s: ""}
		want, _ = json.Marshal(m)
		if got := StringMap(nil, m); !bytes.Equal(got, want) {
			t.Fatalf("StringMap(%q) = %s, want %s", m, got, want)
		}
	})
}

func FuzzTime(f *testing.F) {
	f.Add(int64(0), int64(0), 0)
	f.Add(int64(1795000000), int64(123456789), 3600)
	f.Add(int64(253402300800), int64(0), 0) // year 10000
	f.Add(int64(1795000000), int64(5), 61)
	f.Fuzz(func(t *testing.T, sec, nsec int64, offset int) {
		tm := time.Unix(sec, nsec).In(time.FixedZone("", offset%(30*3600)))
		want, err := json.Marshal(tm)
		got, gerr := Time(nil, tm)
		if (err == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Time(%v) = %s, %v; json.Marshal: %s, %v", tm, got, gerr, want, err)
		}
	})
}
