// Package freeport hands tests 127.0.0.1 TCP ports that are free now and
// that this process has not handed out before, for servers a test starts
// in another process (cairn serve, Postfix, rsyslog) and so cannot hand a
// listener.
//
// Asking the kernel for a free port (listen on :0, close) twice can return
// the same port, since the first is closed before the second is asked for:
// two servers of one test then collide (TestIMAPClients' IMAP view and
// SMTP receiver did, once). And a port from the kernel's ephemeral range
// (ip_local_port_range) may be taken, between the close and the server's
// bind, by any outgoing connection on the machine: go test runs packages
// side by side, and a load test opens thousands a second. So ports come
// from below that range, where the kernel never picks one for a connect.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// lowest is the first port Port hands out from below the ephemeral range.
const lowest = 10000

// Port returns a free port this process has not been given before.
func Port(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	below := ephemeralLow()
	for range 1000 {
		p := 0
		if below > lowest+1000 {
			p = lowest + rand.IntN(below-lowest)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			if p != 0 {
				continue // in use: try another
			}
			t.Fatal(err)
		}
		p = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !used[p] {
			used[p] = true
			return p
		}
	}
	t.Fatal("freeport: no free port not handed out before in 1000 tries")
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range, or 0
// when it is unknown (not Linux). Port falls back to the kernel's choice
// when it leaves no room above lowest.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}

// Addr is Port as "127.0.0.1:PORT".
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}
