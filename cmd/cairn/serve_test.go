package main

import (
	"runtime"
	"testing"
)

// serve runs Go code on one thread on 2 CPUs or fewer, unless GOMAXPROCS
// says otherwise; on more CPUs it keeps Go's default.
func TestOneThread(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	t.Setenv("GOMAXPROCS", "")
	for _, tc := range []struct{ before, after int }{{1, 1}, {2, 1}, {3, 3}, {8, 8}} {
		runtime.GOMAXPROCS(tc.before)
		oneThread()
		if got := runtime.GOMAXPROCS(0); got != tc.after {
			t.Errorf("default %d: GOMAXPROCS %d, want %d", tc.before, got, tc.after)
		}
	}
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	oneThread()
	if got := runtime.GOMAXPROCS(0); got != 2 {
		t.Errorf("GOMAXPROCS=2 in the environment: %d", got)
	}
}
