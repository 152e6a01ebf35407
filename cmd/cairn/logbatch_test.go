package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records each Write call separately.
type writes struct {
	mu    sync.Mutex
	calls []string
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), nil
}

func (w *writes) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func TestLineBatcherWritesLinesTogether(t *testing.T) {
	var w writes
	b := newLineBatcher(&w, time.Hour) // only warnings and Flush write here
	log := slog.New(flushAtWarn{slog.NewTextHandler(b, nil), b})
	for i := range 3 {
		log.Info("archived", "seq", i)
	}
	if got := w.get(); len(got) != 0 {
		t.Fatalf("info lines written at once: %q", got)
	}
	// A warning goes out at once, with the lines before it, in order.
	log.Warn("object store down")
	got := w.get()
	if len(got) != 1 || !inOrder(got[0], "seq=0", "seq=1", "seq=2", `msg="object store down"`) {
		t.Fatalf("after a warning: writes %q, want the three info lines and the warning in one", got)
	}
	// So does an error from a derived logger.
	log.With("svc", "smtp").WithGroup("g").Error("failed", "n", 1)
	if got = w.get(); len(got) != 2 || !strings.Contains(got[1], "g.n=1") {
		t.Fatalf("after an error: writes %q", got)
	}
	b.Flush() // nothing waits: no empty write
	if got = w.get(); len(got) != 2 {
		t.Fatalf("Flush with nothing waiting wrote: %q", got[2:])
	}
	log.Info("archived", "seq", 3)
	b.Flush()
	if got = w.get(); len(got) != 3 || !strings.Contains(got[2], "seq=3") {
		t.Fatalf("Flush: writes %q", got)
	}
}

// inOrder reports whether s holds each of parts, one after the other.
func inOrder(s string, parts ...string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// Info lines wait at most the delay, and not less.
func TestLineBatcherWritesAfterTheDelay(t *testing.T) {
	var w writes
	const delay = 30 * time.Millisecond
	b := newLineBatcher(&w, delay)
	log := slog.New(flushAtWarn{slog.NewTextHandler(b, nil), b})
	t0 := time.Now()
	for i := range 3 {
		log.Info("archived", "seq", i)
	}
	for len(w.get()) == 0 {
		if time.Since(t0) > 5*time.Second {
			t.Fatal("the lines were never written")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if d := time.Since(t0); d < delay {
		t.Errorf("first write after %v, before the delay", d)
	}
	for deadline := time.Now().Add(5 * time.Second); strings.Count(strings.Join(w.get(), ""), "msg=archived") < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("writes %q, want the three lines", w.get())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestLineBatcherWritesAFullBatchAtOnce(t *testing.T) {
	var w writes
	b := newLineBatcher(&w, time.Hour)
	line := bytes.Repeat([]byte("x"), 1000)
	line[999] = '\n'
	for range maxBatch / 1000 {
		b.Write(line)
	}
	if got := w.get(); len(got) != 0 {
		t.Fatalf("%d writes before the batch was full", len(got))
	}
	b.Write(line)
	got := w.get()
	if len(got) != 1 || len(got[0]) != (maxBatch/1000+1)*1000 {
		t.Fatalf("%d writes, want 1 of %d bytes", len(got), (maxBatch/1000+1)*1000)
	}
	b.Write(line)
	b.Flush()
	if got = w.get(); len(got) != 2 || got[1] != string(line) {
		t.Fatalf("Flush: %d writes", len(got))
	}
}
