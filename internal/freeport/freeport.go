// Package freeport hands tests 127.0.0.1 TCP ports that are free now and
// that this process has not handed out before. Asking the kernel for a
// free port (listen on :0, close) twice can return the same port, since the
// first is closed before the second is asked for: two servers of one test
// then collide (TestIMAPClients' IMAP view and SMTP receiver did, once).
package freeport

import (
	"net"
	"strconv"
	"sync"
	"testing"
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Port returns a free port this process has not been given before.
func Port(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !used[p] {
			used[p] = true
			return p
		}
	}
	t.Fatal("freeport: no port not handed out before in 100 tries")
	return 0
}

// Addr is Port as "127.0.0.1:PORT".
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}
