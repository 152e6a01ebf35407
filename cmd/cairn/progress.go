package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progress shows the advance of a long command on stderr: a bar redrawn in
// place with rate and ETA on a terminal, a plain line every few seconds
// otherwise (logs, CI).
type progress struct {
	w       io.Writer
	tty     bool
	unit    string
	start   time.Time
	mu      sync.Mutex
	last    time.Time
	printed bool
}

func newProgress(unit string) *progress {
	return &progress{w: os.Stderr, tty: term.IsTerminal(int(os.Stderr.Fd())), unit: unit, start: time.Now()}
}

// update reports done of total units (total 0 when unknown) and bytes so
// far (0 to omit).
func (p *progress) update(done, total, bytes int64) {
	p.updateBytes(done, total, bytes, 0)
}

// updateBytes is update with a known byte total: the percentage and ETA
// then follow bytes (an import knows its files' sizes, not their message
// counts).
func (p *progress) updateBytes(done, total, bytes, totalBytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now.Sub(p.last) < every {
		return
	}
	p.last = now
	p.draw(done, total, bytes, totalBytes, now)
}

func (p *progress) draw(done, total, bytes, totalBytes int64, now time.Time) {
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(done) / el
	}
	var b strings.Builder
	frac := -1.0
	switch {
	case totalBytes > 0:
		frac = min(float64(bytes)/float64(totalBytes), 1)
	case total > 0:
		frac = min(float64(done)/float64(total), 1)
	}
	if frac >= 0 {
		if p.tty {
			const width = 28
			n := int(frac * width)
			b.WriteString("[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "] ")
		}
		if total > 0 {
			fmt.Fprintf(&b, "%3.0f%% %d/%d %s", frac*100, done, total, p.unit)
		} else {
			fmt.Fprintf(&b, "%3.0f%% %d %s", frac*100, done, p.unit)
		}
	} else {
		fmt.Fprintf(&b, "%d %s", done, p.unit)
	}
	fmt.Fprintf(&b, ", %.0f %s/s", rate, p.unit)
	if bytes > 0 && el > 0 {
		fmt.Fprintf(&b, ", %.1f MB/s", float64(bytes)/el/1e6)
	}
	if frac > 0 && frac < 1 {
		eta := time.Duration(el * (1 - frac) / frac * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(&b, ", ETA %s", eta)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", b.String())
	} else {
		fmt.Fprintln(p.w, b.String())
	}
	p.printed = true
}

// done ends the display (a final newline on a terminal).
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.printed {
		fmt.Fprintln(p.w)
	}
}
