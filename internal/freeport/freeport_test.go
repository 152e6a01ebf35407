package freeport

import (
	"net"
	"testing"
)

// No port is handed out twice, even when the kernel offers one again, and
// each is free to listen on when handed out.
func TestPortsAreNewAndFree(t *testing.T) {
	seen := map[int]bool{}
	for range 300 {
		p := Port(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	l, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// Ports come from below the kernel's ephemeral range, where no outgoing
// connection can take one before the server binds it.
func TestPortsBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low <= lowest+1000 {
		t.Skipf("ephemeral range starts at %d: no room below it", low)
	}
	for range 50 {
		if p := Port(t); p < lowest || p >= low {
			t.Fatalf("port %d is not in [%d, %d)", p, lowest, low)
		}
	}
}
