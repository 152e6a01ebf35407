package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// lineBatcher gathers log lines and writes them in one write every delay
// (or once maxBatch bytes wait), instead of one write a line: under an
// SMTP load serve logs a line a message, and the write(2) per line was
// ~3.5 µs of serve's CPU a message. A line waits at most delay; Flush
// writes what waits at once. Lines still waiting when the process dies
// (kill -9, a panic) are lost, hence serve flushes at every warning and
// error (flushAtWarn) and before it exits; the ledger and the audit log,
// not the log, are the record of what was archived.
type lineBatcher struct {
	w     io.Writer
	delay time.Duration

	mu    sync.Mutex
	buf   []byte
	timer *time.Timer
}

const maxBatch = 64 << 10

func newLineBatcher(w io.Writer, delay time.Duration) *lineBatcher {
	b := &lineBatcher{w: w, delay: delay}
	b.timer = time.AfterFunc(time.Hour, b.Flush)
	b.timer.Stop()
	return b
}

// Write keeps a copy of p (slog handlers write one whole line a call).
// It never fails: an error writing the batch out is the log's to lose, as
// it is for an unbatched handler, whose error slog drops too.
func (b *lineBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		b.timer.Reset(b.delay)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= maxBatch {
		b.flushLocked()
	}
	return len(p), nil
}

// Flush writes the waiting lines now.
func (b *lineBatcher) Flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
}

func (b *lineBatcher) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	b.w.Write(b.buf)
	if cap(b.buf) > maxBatch {
		b.buf = nil // a burst's buffer is not kept
	} else {
		b.buf = b.buf[:0]
	}
}

// flushAtWarn writes a warning or an error, and every line before it, at
// once: the lines that matter when something goes wrong are never left
// waiting in a batch.
type flushAtWarn struct {
	slog.Handler
	b *lineBatcher
}

func (h flushAtWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.b.Flush()
	}
	return err
}

func (h flushAtWarn) WithAttrs(as []slog.Attr) slog.Handler {
	return flushAtWarn{h.Handler.WithAttrs(as), h.b}
}

func (h flushAtWarn) WithGroup(name string) slog.Handler {
	return flushAtWarn{h.Handler.WithGroup(name), h.b}
}
