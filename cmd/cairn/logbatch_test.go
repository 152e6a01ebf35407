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
	b := newLineBatcher(&w, 50*time.Millisecond)
	log := slog.New(flushAtWarn{slog.NewTextHandler(b, nil), b})
	t0 := time.Now()
	for i := range 3 {
		log.Info("archived", "seq", i)
	}
	if got := w.get(); len(got) != 0 {
		t.Fatalf("info lines written at once: %q", got)
	}
	for len(w.get()) == 0 {
		if time.Since(t0) > 5*time.Second {
			t.Fatal("the batch was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Errorf("batch written after %v, before the delay", d)
	}
	got := w.get()
	if len(got) != 1 || strings.Count(got[0], "msg=archived") != 3 {
		t.Fatalf("writes %q, want the three lines in one", got)
	}

	// A warning goes out at once, with the lines before it, in order.
	log.Info("archived", "seq", 3)
	log.Warn("object store down")
	got = w.get()
	if len(got) != 2 || !strings.Contains(got[1], "seq=3") || !strings.HasSuffix(got[1], "msg=\"object store down\"\n") {
		t.Fatalf("after a warning: writes %q, want the info line and the warning in one more write", got)
	}
	// So does an error from a derived logger.
	log.With("svc", "smtp").WithGroup("g").Error("failed", "n", 1)
	if got = w.get(); len(got) != 3 || !strings.Contains(got[2], "g.n=1") {
		t.Fatalf("after an error: writes %q", got)
	}
	b.Flush() // nothing waits: no empty write
	if got = w.get(); len(got) != 3 {
		t.Fatalf("Flush with nothing waiting wrote: %q", got[3:])
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
