package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// span is what a test expects of one mboxSpan.
type span struct {
	raw  string // message after unquoting; ignored when err is set
	from string // FromLine
	err  error
	off  int64
}

// readSpans reads every span of input.
func readSpans(t testing.TB, input []byte, q Quoting, max int64, bufSize int) []*mboxSpan {
	t.Helper()
	rd := newMboxReader(bytes.NewReader(input), q, max, bufSize)
	var out []*mboxSpan
	for {
		sp, err := rd.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		out = append(out, sp)
		if len(out) > len(input)+2 {
			t.Fatalf("more spans than bytes: the reader does not advance")
		}
	}
	if _, err := rd.next(); err != io.EOF {
		t.Fatalf("after the end: %v, want io.EOF", err)
	}
	return out
}

func TestMboxReader(t *testing.T) {
	const from1 = "From alice@example.com Thu Jan  1 00:00:00 2024"
	const from2 = "From bob@example.com Fri Jan  2 10:00:00 2024"
	tests := []struct {
		name    string
		in      string
		quoting Quoting
		max     int64
		want    []span
	}{
		{name: "empty mbox", in: "", want: nil},
		{
			name: "one message, no blank line at the end",
			in:   from1 + "\nSubject: a\n\nbody\n",
			want: []span{{raw: "Subject: a\n\nbody\n", from: from1[5:]}},
		},
		{
			name: "two messages, blank line before each From_ line and at the end",
			in:   from1 + "\nSubject: a\n\nbody a\n\n" + from2 + "\nSubject: b\n\nbody b\n\n",
			want: []span{
				{raw: "Subject: a\n\nbody a\n", from: from1[5:]},
				{raw: "Subject: b\n\nbody b\n", from: from2[5:], off: int64(len(from1) + 21)},
			},
		},
		{
			name: "message ending in blank lines keeps all but the writer's",
			in:   from1 + "\nS: a\n\nbody\n\n\n\n" + from2 + "\nS: b\n",
			want: []span{
				{raw: "S: a\n\nbody\n\n\n", from: from1[5:]},
				{raw: "S: b\n", from: from2[5:], off: int64(len(from1) + 15)},
			},
		},
		{
			name: "From_ in a body, not after a blank line, stays in its message",
			in:   from1 + "\nS: a\n\nline\nFrom here on it is fine\n\n" + from2 + "\nS: b\n",
			want: []span{
				{raw: "S: a\n\nline\nFrom here on it is fine\n", from: from1[5:]},
				{raw: "S: b\n", from: from2[5:], off: int64(len(from1) + 37)},
			},
		},
		{
			name: "unquoted From_ in a body after a blank line splits (broken writer)",
			in:   from1 + "\nS: a\n\nFrom the desk of the CFO\n",
			want: []span{
				{raw: "S: a\n", from: from1[5:]},
				{raw: "", from: "the desk of the CFO", off: int64(len(from1) + 7)},
			},
		},
		{
			name: "mboxrd quoting at several depths",
			in:   from1 + "\nS: a\n\n>From one\n>>From two\n>>>From three\n>Fromage\n> From x\nFrom\n",
			want: []span{{raw: "S: a\n\nFrom one\n>From two\n>>From three\n>Fromage\n> From x\nFrom\n", from: from1[5:]}},
		},
		{
			name:    "mboxo quoting: depth one only",
			in:      from1 + "\nS: a\n\n>From one\n>>From two\n>>>From three\n",
			quoting: QuotingMboxo,
			want:    []span{{raw: "S: a\n\nFrom one\n>>From two\n>>>From three\n", from: from1[5:]}},
		},
		{
			name:    "no unquoting",
			in:      from1 + "\nS: a\n\n>From one\n>>From two\n",
			quoting: QuotingNone,
			want:    []span{{raw: "S: a\n\n>From one\n>>From two\n", from: from1[5:]}},
		},
		{
			name: "a quoted From_ after a blank line is not a separator",
			in:   from1 + "\nS: a\n\n>From b\nx\n",
			want: []span{{raw: "S: a\n\nFrom b\nx\n", from: from1[5:]}},
		},
		{
			name: "CRLF",
			in:   from1 + "\r\nS: a\r\n\r\nbody\r\n>From x\r\n\r\n" + from2 + "\r\nS: b\r\n\r\nbody\r\n\r\n",
			want: []span{
				{raw: "S: a\r\n\r\nbody\r\nFrom x\r\n", from: from1[5:]},
				{raw: "S: b\r\n\r\nbody\r\n", from: from2[5:], off: int64(len(from1) + 27)},
			},
		},
		{
			name: "mixed line endings: an LF blank line after a CRLF message",
			in:   from1 + "\nS: a\r\n\r\nbody\r\n\n" + from2 + "\r\nS: b\r\n",
			want: []span{
				{raw: "S: a\r\n\r\nbody\r\n", from: from1[5:]},
				{raw: "S: b\r\n", from: from2[5:], off: int64(len(from1) + 16)},
			},
		},
		{
			name: "a lone CR is not a line ending",
			in:   from1 + "\nS: a\n\nx\r\rFrom y\n",
			want: []span{{raw: "S: a\n\nx\r\rFrom y\n", from: from1[5:]}},
		},
		{
			name: "missing trailing newline",
			in:   from1 + "\nS: a\n\nbody",
			want: []span{{raw: "S: a\n\nbody", from: from1[5:]}},
		},
		{
			name: "first line is not a From_ line",
			in:   "X-Junk: 1\nmore\n" + from1 + "\nS: a\n",
			want: []span{
				{err: errNoFromLine},
				{raw: "S: a\n", from: from1[5:], off: 15},
			},
		},
		{
			name: "no From_ line at all",
			in:   "Subject: a\n\nbody\n",
			want: []span{{err: errNoFromLine}},
		},
		{
			name: "blank lines before the first From_ line",
			in:   "\n\r\n" + from1 + "\nS: a\n",
			want: []span{{err: errNoFromLine}, {raw: "S: a\n", from: from1[5:], off: 3}},
		},
		{
			name: "obsolete From header form is not a From_ line",
			in:   "From : alice@example.com\nS: a\n",
			want: []span{{err: errNoFromLine}},
		},
		{
			name: "only a From_ line",
			in:   from1 + "\n",
			want: []span{{raw: "", from: from1[5:]}},
		},
		{
			name: "two From_ lines in a row: the second is content",
			in:   from1 + "\n" + from2 + "\n",
			want: []span{{raw: from2 + "\n", from: from1[5:]}},
		},
		{
			name: "empty message between two From_ lines",
			in:   "From a\n\nFrom b\nx\n",
			want: []span{{raw: "", from: "a"}, {raw: "x\n", from: "b", off: 8}},
		},
		{
			name: "From_ line without a line ending",
			in:   "From a",
			want: []span{{raw: "", from: "a"}},
		},
		{
			name: "over the limit, then the import goes on",
			in:   "From a\n0123456789\n\nFrom b\nok\n",
			max:  10,
			want: []span{{err: errTooLarge, from: "a"}, {raw: "ok\n", from: "b", off: 19}},
		},
		{
			name: "exactly at the limit: the blank line does not count",
			in:   "From a\n0123456789\n\nFrom b\nok\n",
			max:  11,
			want: []span{{raw: "0123456789\n", from: "a"}, {raw: "ok\n", from: "b", off: 19}},
		},
		{
			name: "at the limit after unquoting",
			in:   "From a\n>From 12345\n\nFrom b\nok\n",
			max:  11,
			want: []span{{raw: "From 12345\n", from: "a"}, {raw: "ok\n", from: "b", off: 20}},
		},
		{
			name: "one over the limit",
			in:   "From a\n01234567890\n",
			max:  11,
			want: []span{{err: errTooLarge, from: "a"}},
		},
		{
			name: "a line longer than the buffer",
			in:   "From a\nS: x\n\n" + strings.Repeat("y", 100) + "From z\n\nFrom b\n>" + strings.Repeat(">", 40) + "From q\n",
			want: []span{
				{raw: "S: x\n\n" + strings.Repeat("y", 100) + "From z\n", from: "a"},
				{raw: strings.Repeat(">", 40) + "From q\n", from: "b", off: 121},
			},
		},
		{
			name: "a From_ line longer than the cap",
			in:   "From " + strings.Repeat("x", 1500) + "\nS: a\n",
			want: []span{{raw: "S: a\n", from: strings.Repeat("x", fromLineCap)}},
		},
	}
	for _, tt := range tests {
		for _, bufSize := range []int{16, 17, 64, 0} {
			t.Run(fmt.Sprintf("%s/buf%d", tt.name, bufSize), func(t *testing.T) {
				max := tt.max
				if max == 0 {
					max = 1 << 20
				}
				got := readSpans(t, []byte(tt.in), tt.quoting, max, bufSize)
				if len(got) != len(tt.want) {
					t.Fatalf("got %d spans, want %d: %s", len(got), len(tt.want), dumpSpans(got))
				}
				var total int64
				for i, w := range tt.want {
					g := got[i]
					if g.Offset != total {
						t.Errorf("span %d: offset %d, want %d (spans must tile the input)", i, g.Offset, total)
					}
					total += g.Length
					if g.Offset != w.off {
						t.Errorf("span %d: offset %d, want %d", i, g.Offset, w.off)
					}
					if !errors.Is(g.Err, w.err) {
						t.Errorf("span %d: err %v, want %v", i, g.Err, w.err)
					}
					if w.err == nil && string(g.Raw) != w.raw {
						t.Errorf("span %d: raw\n%q, want\n%q", i, g.Raw, w.raw)
					}
					if w.err == nil && g.Raw == nil {
						t.Errorf("span %d: nil Raw for a message", i)
					}
					if w.err != errNoFromLine && g.FromLine != w.from {
						t.Errorf("span %d: From_ line %q, want %q", i, g.FromLine, w.from)
					}
				}
				if total != int64(len(tt.in)) {
					t.Errorf("spans cover %d bytes, input has %d", total, len(tt.in))
				}
				// The reference reader agrees.
				ref := referenceSpans([]byte(tt.in), tt.quoting, max)
				if d := diffSpans(got, ref); d != "" {
					t.Errorf("reference disagrees: %s", d)
				}
			})
		}
	}
}

// TestMboxReaderOneByteReads feeds the reader one byte per Read, as a slow
// pipe or a gzip stream at a block edge would.
func TestMboxReaderOneByteReads(t *testing.T) {
	in := []byte("junk\nFrom a Thu Jan  1 00:00:00 2024\r\nS: a\r\n\r\n>From x\r\n\r\nFrom b\nS: b\n\n")
	rd := newMboxReader(iotest.OneByteReader(bytes.NewReader(in)), QuotingMboxrd, 1<<20, 16)
	var got []*mboxSpan
	for {
		sp, err := rd.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sp)
	}
	if d := diffSpans(got, referenceSpans(in, QuotingMboxrd, 1<<20)); d != "" {
		t.Fatal(d)
	}
}

// TestMboxReaderReadError: an error from the stream is returned, sticky.
func TestMboxReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("From a\nS: a\n\nFrom b\nS: b"), iotest.ErrReader(boom))
	rd := newMboxReader(r, QuotingMboxrd, 1<<20, 0)
	sp, err := rd.next()
	if err != nil || string(sp.Raw) != "S: a\n" {
		t.Fatalf("first: %v %q", err, sp.Raw)
	}
	if _, err := rd.next(); !errors.Is(err, boom) {
		t.Fatalf("second: %v, want boom", err)
	}
	if _, err := rd.next(); !errors.Is(err, boom) {
		t.Fatalf("third: %v, want boom again", err)
	}
}

func TestParseFromLineDate(t *testing.T) {
	utc := time.UTC
	want := time.Date(2024, 1, 2, 15, 4, 5, 0, utc)
	tests := []struct {
		text string
		want time.Time
		ok   bool
	}{
		{"alice@example.com Tue Jan  2 15:04:05 2024", want, true},
		{"- Tue Jan 02 15:04:05 2024", want, true}, // Thunderbird
		{"MAILER-DAEMON Tue Jan  2 15:04:05 2024", want, true},
		{"a@b Tue Jan  2 15:04:05 2024 remote from host", want, true},
		{"a@b Tue Jan  2 15:04:05 +0100 2024", want.Add(-time.Hour), true},
		{"a@b Tue Jan  2 15:04:05 2024 +0100", want.Add(-time.Hour), true},
		{"a@b Tue, 2 Jan 2024 15:04:05 +0000", want, true},
		{"a@b Tue Jan  2 15:04 2024", want.Truncate(time.Minute), true},
		{"\"john doe\"@example.com Tue Jan  2 15:04:05 2024", want, true},
		{"a@b", time.Time{}, false},
		{"a@b yesterday", time.Time{}, false},
		{"", time.Time{}, false},
		{"a@b Tue Jan 2 99:99:99 2024", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseFromLineDate(tt.text, utc)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseFromLineDate(%q) = %v, %v; want %v, %v", tt.text, got, ok, tt.want, tt.ok)
		}
	}
	// Without a zone, the date is read in the given location.
	ny, err := time.LoadLocation("America/New_York")
	if err == nil {
		got, _ := parseFromLineDate("a@b Tue Jan  2 15:04:05 2024", ny)
		if !got.Equal(want.Add(5 * time.Hour)) {
			t.Errorf("New York: %v", got)
		}
	}
}

func TestParseQuoting(t *testing.T) {
	for _, q := range []Quoting{QuotingMboxrd, QuotingMboxo, QuotingNone} {
		got, err := ParseQuoting(strings.ToUpper(q.String()))
		if err != nil || got != q {
			t.Errorf("ParseQuoting(%q) = %v, %v", q, got, err)
		}
	}
	if _, err := ParseQuoting("mboxcl2"); err == nil || !strings.HasPrefix(err.Error(), "importer: ") {
		t.Errorf("ParseQuoting(mboxcl2) = %v", err)
	}
}

// referenceSpans is a second, simple mbox reader that holds the whole input
// and works line by line: the specification the streaming reader must meet.
func referenceSpans(data []byte, q Quoting, max int64) []*mboxSpan {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	var (
		out      []*mboxSpan
		cur      *mboxSpan
		content  [][]byte
		off      int64
		prevBlnk = true
		started  bool
		allBlank = true
	)
	flush := func() {
		if cur == nil {
			return
		}
		if !started {
			if cur.Length > 0 {
				cur.Err, cur.blank = errNoFromLine, allBlank
				out = append(out, cur)
			}
			return
		}
		if n := len(content); n > 0 && isBlankLine(content[n-1]) {
			content = content[:n-1]
		}
		raw := []byte{}
		for _, l := range content {
			depth := 0
			for depth < len(l) && l[depth] == '>' {
				depth++
			}
			if depth > 0 && bytes.HasPrefix(l[depth:], []byte("From ")) && (q == QuotingMboxrd || q == QuotingMboxo && depth == 1) {
				l = l[1:]
			}
			raw = append(raw, l...)
		}
		if int64(len(raw)) > max {
			cur.Err = errTooLarge
		} else {
			cur.Raw = raw
		}
		out = append(out, cur)
	}
	cur = &mboxSpan{}
	for _, l := range lines {
		if (!started || prevBlnk) && isFromLine(l) {
			flush()
			started = true
			text := bytes.TrimRight(l[5:], "\r\n")
			if len(text) > fromLineCap {
				text = text[:fromLineCap]
			}
			cur = &mboxSpan{Offset: off, Length: int64(len(l)), FromLine: string(text)}
			content = nil
			prevBlnk = false
		} else {
			cur.Length += int64(len(l))
			content = append(content, l)
			prevBlnk = isBlankLine(l)
			allBlank = allBlank && prevBlnk
		}
		off += int64(len(l))
	}
	flush()
	return out
}

// diffSpans describes the first difference between two span lists.
func diffSpans(got, want []*mboxSpan) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d spans, want %d:\ngot  %s\nwant %s", len(got), len(want), dumpSpans(got), dumpSpans(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		switch {
		case g.Offset != w.Offset || g.Length != w.Length:
			return fmt.Sprintf("span %d at %d+%d, want %d+%d", i, g.Offset, g.Length, w.Offset, w.Length)
		case g.Err != w.Err:
			return fmt.Sprintf("span %d: err %v, want %v", i, g.Err, w.Err)
		case g.Err == errNoFromLine && g.blank != w.blank:
			return fmt.Sprintf("span %d: blank %v, want %v", i, g.blank, w.blank)
		case g.Err == nil && !bytes.Equal(g.Raw, w.Raw):
			return fmt.Sprintf("span %d: raw %q, want %q", i, g.Raw, w.Raw)
		case g.Err == nil && (g.Raw == nil) != (w.Raw == nil):
			return fmt.Sprintf("span %d: raw nil %v, want %v", i, g.Raw == nil, w.Raw == nil)
		case g.Err != errNoFromLine && g.FromLine != w.FromLine:
			return fmt.Sprintf("span %d: From_ %q, want %q", i, g.FromLine, w.FromLine)
		}
	}
	return ""
}

func dumpSpans(sps []*mboxSpan) string {
	var b strings.Builder
	for _, s := range sps {
		fmt.Fprintf(&b, "[%d+%d err=%v from=%q raw=%q] ", s.Offset, s.Length, s.Err, s.FromLine, s.Raw)
	}
	return b.String()
}
