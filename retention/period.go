package retention

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Period is how long a rule keeps mail: calendar years, months, weeks and
// days, added to a message's start date the way time.AddDate adds them
// (2024-02-29 plus 1y is 2025-03-01), or Forever.
type Period struct {
	Years, Months, Weeks, Days int
	Forever                    bool
}

// maxPeriodYears bounds a period (a typo such as 70000y is refused rather
// than kept for ever by accident).
const maxPeriodYears = 1000

// ErrPeriod is wrapped by ParsePeriod's errors.
var ErrPeriod = errors.New("retention: invalid period")

// ParsePeriod reads a period: "forever", or one or more of <n>y, <n>m
// (months), <n>w, <n>d, in that order, each at most once, lower case, no
// spaces: "7y", "6y", "10y", "1y6m", "90d". The total must be at least one
// day and at most 1000 years.
func ParsePeriod(s string) (Period, error) {
	var p Period
	if s == "forever" {
		p.Forever = true
		return p, nil
	}
	bad := func(why string) (Period, error) {
		return Period{}, fmt.Errorf("%w %q: %s (want e.g. 7y, 6y, 10y, 1y6m, 90d or forever)", ErrPeriod, s, why)
	}
	if s == "" {
		return bad("empty")
	}
	rest := s
	order := "ymwd"
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return bad("a number must come before each unit")
		}
		if i == len(rest) {
			return bad("the last number has no unit (y, m, w or d)")
		}
		if i > 6 {
			return bad("number too large")
		}
		if rest[0] == '0' {
			return bad("a zero or a leading zero") // one spelling per period
		}
		n, _ := strconv.Atoi(rest[:i])
		unit := rest[i]
		k := strings.IndexByte(order, unit)
		if k < 0 {
			return bad(fmt.Sprintf("unknown unit %q", unit))
		}
		order = order[k+1:] // each unit once, in order
		switch unit {
		case 'y':
			p.Years = n
		case 'm':
			p.Months = n
		case 'w':
			p.Weeks = n
		case 'd':
			p.Days = n
		}
		rest = rest[i+1:]
	}
	if float64(p.Years)+float64(p.Months)/12+float64(p.Weeks)/52+float64(p.Days)/365 > maxPeriodYears {
		return bad("longer than 1000 years")
	}
	return p, nil
}

// String returns the period in ParsePeriod's syntax.
func (p Period) String() string {
	if p.Forever {
		return "forever"
	}
	var b strings.Builder
	for _, c := range []struct {
		n    int
		unit byte
	}{{p.Years, 'y'}, {p.Months, 'm'}, {p.Weeks, 'w'}, {p.Days, 'd'}} {
		if c.n != 0 {
			b.WriteString(strconv.Itoa(c.n))
			b.WriteByte(c.unit)
		}
	}
	if b.Len() == 0 {
		return "0d"
	}
	return b.String()
}

// IsZero reports whether p is the zero Period (not set).
func (p Period) IsZero() bool { return p == Period{} }

// After returns start plus the period, in UTC; ok is false for Forever.
func (p Period) After(start time.Time) (t time.Time, ok bool) {
	if p.Forever {
		return time.Time{}, false
	}
	return start.UTC().AddDate(p.Years, p.Months, 7*p.Weeks+p.Days), true
}

// MarshalText writes the period in ParsePeriod's syntax ("7y").
func (p Period) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads ParsePeriod's syntax.
func (p *Period) UnmarshalText(b []byte) error {
	q, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}
