package message

import (
	"strings"
	"sync/atomic"
	"time"
	"unsafe"
)

// ParseDate parses a Date header value leniently: RFC 5322 §3.3 date-time
// with the obsolete forms of §4.3 (two-digit years, named and military
// zones, comments, white space anywhere), a missing day of week, seconds
// or zone (read as UTC), "18-Oct-2012", "2012-10-18 12:00:00" and RFC 3339.
// It reports false and returns the zero time when no valid date is found.
func ParseDate(s string) (time.Time, bool) {
	if len(s) > 256 {
		s = s[:256]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	// RFC 3339 only where time.Parse may read it (at least
	// "2006-01-02T1:04:05Z": it takes a one-digit hour): it allocates an
	// error for every Date header it refuses, and the IMAP view parses one
	// for each ENVELOPE it sends.
	if len(s) >= len("2006-01-02T1:04:05Z") && s[4] == '-' && s[10] == 'T' {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, true
		}
	}
	var (
		year, month, day   = -1, -1, -1
		hour, min, sec     = 0, 0, 0
		haveTime, haveZone bool
		offset             int // seconds east of UTC
		pm, am             bool
		yearDigits         int
	)
	var toks [17]string
	var lower [32]byte
	for _, tok := range dateTokens(s, toks[:0]) {
		switch {
		case strings.IndexByte(tok, ':') > 0 && isDigit(tok[0]) && !haveTime:
			t, zone := tok, ""
			if i := strings.IndexAny(tok, "+-Zz"); i > 0 {
				t, zone = tok[:i], tok[i:]
			}
			h, m, sc, ok := parseClock(t)
			if !ok {
				return time.Time{}, false
			}
			hour, min, sec, haveTime = h, m, sc, true
			if zone != "" {
				if off, ok := parseZone(zone); ok {
					offset, haveZone = off, true
				}
			}
		case (tok[0] == '+' || tok[0] == '-') && len(tok) > 1 && isDigit(tok[1]):
			if off, ok := parseZone(tok); ok && !haveZone {
				offset, haveZone = off, true
			}
		case isDigit(tok[0]):
			if y, m, d, ok := parseNumericDate(tok); ok {
				year, month, day, yearDigits = y, m, d, 4
				continue
			}
			if !allDigits(tok) {
				// "18-Oct-2012" and the like.
				parts := strings.FieldsFunc(tok, func(r rune) bool { return r == '-' || r == '/' || r == '.' })
				if len(parts) == 3 {
					if m := monthNumber(parts[1]); m > 0 && allDigits(parts[0]) && allDigits(parts[2]) {
						day, month = atoi(parts[0]), m
						year, yearDigits = atoi(parts[2]), len(parts[2])
						continue
					}
				}
				return time.Time{}, false
			}
			n := atoi(tok)
			switch {
			case len(tok) >= 3 || n > 31:
				if year >= 0 {
					return time.Time{}, false
				}
				year, yearDigits = n, len(tok)
			case day < 0:
				day = n
			case year < 0:
				year, yearDigits = n, len(tok)
			default:
				return time.Time{}, false
			}
		default:
			lt := lowerInto(tok, lower[:0])
			if m := monthNumber(lt); m > 0 && month < 0 {
				month = m
				continue
			}
			if isWeekday(lt) {
				continue
			}
			switch lt {
			case "am":
				am = true
				continue
			case "pm":
				pm = true
				continue
			}
			// Zone names, possibly followed by an offset: "GMT+0100".
			name, rest := lt, ""
			if i := strings.IndexAny(lt, "+-"); i > 0 {
				name, rest = lt[:i], lt[i:]
			}
			if off, ok := zoneNames[name]; ok {
				if rest != "" {
					if o, ok := parseZone(rest); ok {
						off += o
					}
				}
				if !haveZone {
					offset, haveZone = off, true
				}
				continue
			}
			if len(name) == 1 && name[0] >= 'a' && name[0] <= 'z' && name != "j" {
				// Military zones are to be read as -0000 (RFC 5322 §4.3).
				haveZone = true
				continue
			}
			// Unknown words ("at", "o'clock") are skipped.
		}
	}
	if year < 0 || month < 0 || day < 0 {
		return time.Time{}, false
	}
	// RFC 5322 §4.3: two-digit years 00-49 are 2000-2049, 50-99 1950-1999;
	// three-digit years add 1900.
	switch {
	case yearDigits <= 2 && year < 50:
		year += 2000
	case yearDigits <= 2:
		year += 1900
	case yearDigits == 3:
		year += 1900
	}
	if pm && hour < 12 {
		hour += 12
	} else if am && hour == 12 {
		hour = 0
	}
	if sec == 60 {
		sec = 59 // leap second
	}
	if year < 1 || year > 9999 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || min > 59 || sec > 59 {
		return time.Time{}, false
	}
	loc := time.UTC
	if offset != 0 {
		loc = fixedZone(offset)
	}
	return time.Date(year, time.Month(month), day, hour, min, sec, 0, loc), true
}

// dateTokens appends to out the tokens of a date, split on white space and
// commas, comments dropped.
func dateTokens(s string, out []string) []string {
	depth := 0
	start := -1
	for i := 0; i <= len(s); i++ {
		var c byte = ' '
		if i < len(s) {
			c = s[i]
		}
		switch {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
			c = ' '
		}
		sep := depth > 0 || c == '(' || c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\n'
		if sep {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		if len(out) > 16 {
			break
		}
	}
	return out
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && i < 9; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// parseClock parses "hh:mm[:ss[.frac]]".
func parseClock(s string) (h, m, sec int, ok bool) {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	var fields [3]string
	f := fields[:0]
	for len(f) < 3 {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			f = append(f, s)
			s = ""
			break
		}
		f, s = append(f, s[:i]), s[i+1:]
	}
	if len(f) < 2 || s != "" {
		return 0, 0, 0, false
	}
	for _, x := range f {
		if !allDigits(x) || len(x) > 2 {
			return 0, 0, 0, false
		}
	}
	h, m = atoi(f[0]), atoi(f[1])
	if len(f) == 3 {
		sec = atoi(f[2])
	}
	return h, m, sec, true
}

// parseZone parses "+hhmm", "-hh:mm", "+hh" and "Z".
func parseZone(s string) (int, bool) {
	if s == "Z" || s == "z" {
		return 0, true
	}
	if len(s) < 2 || (s[0] != '+' && s[0] != '-') {
		return 0, false
	}
	d := strings.ReplaceAll(s[1:], ":", "")
	if !allDigits(d) {
		return 0, false
	}
	var h, m int
	switch len(d) {
	case 1, 2:
		h = atoi(d)
	case 4:
		h, m = atoi(d[:2]), atoi(d[2:])
	default:
		return 0, false
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return off, true
}

// parseNumericDate parses "yyyy-mm-dd" and "yyyy/mm/dd".
func parseNumericDate(s string) (y, m, d int, ok bool) {
	if strings.IndexAny(s, "-/") < 0 {
		return 0, 0, 0, false
	}
	f := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '/' })
	if len(f) != 3 || len(f[0]) != 4 || !allDigits(f[0]) || !allDigits(f[1]) || !allDigits(f[2]) {
		return 0, 0, 0, false
	}
	m = atoi(f[1])
	if m < 1 || m > 12 {
		return 0, 0, 0, false
	}
	return atoi(f[0]), m, atoi(f[2]), true
}

func monthNumber(s string) int {
	if len(s) < 3 {
		return 0
	}
	switch strings.ToLower(s[:3]) {
	case "jan":
		return 1
	case "feb":
		return 2
	case "mar":
		return 3
	case "apr":
		return 4
	case "may":
		return 5
	case "jun":
		return 6
	case "jul":
		return 7
	case "aug":
		return 8
	case "sep":
		return 9
	case "oct":
		return 10
	case "nov":
		return 11
	case "dec":
		return 12
	}
	return 0
}

func isWeekday(s string) bool {
	if len(s) < 3 {
		return false
	}
	switch s[:3] {
	case "mon", "tue", "wed", "thu", "fri", "sat", "sun":
		return true
	}
	return false
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// zoneNames are the zones of RFC 5322 §4.3 and a few more that mailers
// write; the value is seconds east of UTC.
var zoneNames = map[string]int{
	"ut": 0, "utc": 0, "gmt": 0, "z": 0, "wet": 0,
	"est": -5 * 3600, "edt": -4 * 3600,
	"cst": -6 * 3600, "cdt": -5 * 3600,
	"mst": -7 * 3600, "mdt": -6 * 3600,
	"pst": -8 * 3600, "pdt": -7 * 3600,
	"bst": 3600, "cet": 3600, "met": 3600, "west": 3600,
	"cest": 2 * 3600, "mest": 2 * 3600, "eet": 2 * 3600,
	"eest": 3 * 3600, "msk": 3 * 3600,
	"ist": 5*3600 + 1800, "hkt": 8 * 3600, "sgt": 8 * 3600, "awst": 8 * 3600,
	"jst": 9 * 3600, "kst": 9 * 3600,
	"aest": 10 * 3600, "aedt": 11 * 3600, "nzst": 12 * 3600, "nzdt": 13 * 3600,
}

// lowerInto returns s with ASCII letters lower-cased, in buf when it fits
// and s has upper-case letters (the result is then valid while buf is).
func lowerInto(s string, buf []byte) string {
	upper := false
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return s
	}
	if len(s) > cap(buf) {
		return strings.ToLower(s)
	}
	buf = buf[:len(s)]
	for i := 0; i < len(s); i++ {
		buf[i] = lowerASCII(s[i])
	}
	return unsafe.String(unsafe.SliceData(buf), len(buf))
}

// zones caches the fixed zones of whole-minute offsets, so that parsing a
// date does not allocate one each time.
var zones [2*24*60 + 1]atomic.Pointer[time.Location]

func fixedZone(offset int) *time.Location {
	if offset%60 != 0 || offset <= -24*3600 || offset >= 24*3600 {
		return time.FixedZone("", offset)
	}
	z := &zones[offset/60+24*60]
	if loc := z.Load(); loc != nil {
		return loc
	}
	loc := time.FixedZone("", offset)
	z.Store(loc)
	return loc
}
