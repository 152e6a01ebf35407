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
