package retention

import (
	"errors"
	"testing"
	"time"
)

func TestParsePeriod(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Period
		ok   bool
	}{
		{"7y", Period{Years: 7}, true},
		{"6y", Period{Years: 6}, true},
		{"10y", Period{Years: 10}, true},
		{"1y6m", Period{Years: 1, Months: 6}, true},
		{"90d", Period{Days: 90}, true},
		{"2w3d", Period{Weeks: 2, Days: 3}, true},
		{"1y2m3w4d", Period{1, 2, 3, 4, false}, true},
		{"forever", Period{Forever: true}, true},
		{"1000y", Period{Years: 1000}, true},
		{"0y0d", Period{}, false},
		{"01y", Period{}, false},
		{"0y1d", Period{}, false},
		{"1001y", Period{}, false},
		{"", Period{}, false},
		{"y", Period{}, false},
		{"7", Period{}, false},
		{"7Y", Period{}, false},
		{"7 y", Period{}, false},
		{"6m1y", Period{}, false}, // out of order
		{"1y1y", Period{}, false},
		{"-1y", Period{}, false},
		{"1x", Period{}, false},
		{"9999999d", Period{}, false},
		{"Forever", Period{}, false},
	} {
		got, err := ParsePeriod(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParsePeriod(%q) = %+v, %v; want %+v ok=%v", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !errors.Is(err, ErrPeriod) {
			t.Errorf("ParsePeriod(%q): error %v does not wrap ErrPeriod", c.in, err)
		}
		if err == nil && got.String() != c.in {
			t.Errorf("Period(%q).String() = %q", c.in, got.String())
		}
	}
}

func TestPeriodAfter(t *testing.T) {
	leap := time.Date(2024, 2, 29, 13, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		p    string
		from time.Time
		want time.Time
	}{
		{"1y", leap, time.Date(2025, 3, 1, 13, 0, 0, 0, time.UTC)},
		{"7y", time.Date(2019, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"1m", time.Date(2025, 1, 31, 0, 0, 0, 0, time.UTC), time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)},
		{"2w", time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600)), time.Date(2025, 1, 14, 23, 0, 0, 0, time.UTC)},
	} {
		p, _ := ParsePeriod(c.p)
		got, ok := p.After(c.from)
		if !ok || !got.Equal(c.want) {
			t.Errorf("%s after %v = %v; want %v", c.p, c.from, got, c.want)
		}
	}
	if _, ok := (Period{Forever: true}).After(leap); ok {
		t.Error("forever has an end")
	}
}

// FuzzParsePeriod: any accepted period prints back to itself, parses to
// the same value, and ends after it starts.
func FuzzParsePeriod(f *testing.F) {
	for _, s := range []string{"7y", "1y6m", "90d", "forever", "1y2m3w4d", "0d", "12", "y7", "1000y", "999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeriod(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("%q parsed to %+v, prints %q", s, p, p.String())
		}
		q, err := ParsePeriod(p.String())
		if err != nil || q != p {
			t.Fatalf("%q: reparse %+v %v", s, q, err)
		}
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if end, ok := p.After(start); ok && !end.After(start) {
			t.Fatalf("%q ends %v, not after %v", s, end, start)
		}
	})
}
