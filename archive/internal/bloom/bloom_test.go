package bloom

import (
	"fmt"
	"sync"
	"testing"
)

func TestNeverAbsentOnceAdded(t *testing.T) {
	f := New(100_000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50_000 {
				f.Add(fmt.Sprintf("messages/%d/%d", g, i))
			}
		}()
	}
	wg.Wait()
	if f.Absent("messages/0/0") {
		t.Fatal("Absent before Ready")
	}
	f.Ready()
	for g := range 4 {
		for i := range 50_000 {
			if k := fmt.Sprintf("messages/%d/%d", g, i); f.Absent(k) {
				t.Fatalf("%s was added, Absent says it was not", k)
			}
		}
	}
}

func TestMostlyAbsentWithinCapacity(t *testing.T) {
	const size = 1 << 20
	const n = size / bitsPerKey
	f := withBits(size)
	for i := range n {
		f.Add(fmt.Sprint("in/", i))
	}
	f.Ready()
	maybe := 0
	for i := range 100_000 {
		if !f.Absent(fmt.Sprint("out/", i)) {
			maybe++
		}
	}
	// About 1% at 10 bits per key; 3% would mean the hashing is off.
	if rate := float64(maybe) / 100_000; rate > 0.03 {
		t.Fatalf("false positive rate %.3f at capacity", rate)
	}
}

func TestSizeBounds(t *testing.T) {
	for _, c := range []struct{ expected, bits int }{
		{-1, MinBits}, {0, MinBits}, {1000, MinBits},
		{MinBits/bitsPerKey + 1, 2 * MinBits},
		{100_000_000, MaxBits},
	} {
		if got := len(New(c.expected).words) * 64; got != c.bits {
			t.Errorf("New(%d): %d bits, want %d", c.expected, got, c.bits)
		}
	}
}

func TestNilFilterClaimsNothing(t *testing.T) {
	var f *Filter
	if f.Absent("x") {
		t.Fatal("a nil filter said absent")
	}
}

func BenchmarkAbsent(b *testing.B) {
	f := New(1_000_000)
	f.Ready()
	for b.Loop() {
		f.Absent("messages/abc/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	}
}
