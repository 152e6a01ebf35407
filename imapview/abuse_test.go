package imapview

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// TestHugeLiteral: a {4294967295} literal is refused without being
// accepted, in every state, and the connection goes on.
func TestHugeLiteral(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 1})
	r := f.raw()
	r.send("A LOGIN {4294967295}\r\n")
	if got := r.until("A "); !strings.HasPrefix(got, "A NO [TOOBIG]") {
		t.Fatalf("LOGIN literal: %q", got)
	}
	r.login("auditor", f.password)
	r.send("B SELECT {4294967295}\r\n")
	if got := r.until("B "); !strings.HasPrefix(got, "B NO [TOOBIG]") {
		t.Fatalf("SELECT literal: %q", got)
	}
	r.send("C APPEND INBOX {4294967295}\r\n")
	if got := r.until("C "); !strings.HasPrefix(got, "C NO [TOOBIG]") {
		t.Fatalf("APPEND literal: %q", got)
	}
	r.send("D SELECT INBOX\r\nE SEARCH BODY {4294967295}\r\n")
	r.until("D OK")
	if got := r.until("E "); !strings.HasPrefix(got, "E NO [TOOBIG]") {
		t.Fatalf("SEARCH literal: %q", got)
	}
	r.send("F NOOP\r\n")
	if got := r.until("F "); !strings.HasPrefix(got, "F OK") {
		t.Fatalf("after: %q", got)
	}
	// A non-synchronizing one: its bytes follow anyway, so the server
	// answers and closes.
	r2 := f.raw()
	r2.send("A LOGIN {4294967295+}\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	got := r2.until("A ")
	if !strings.HasPrefix(got, "A NO [TOOBIG]") {
		t.Fatalf("non-synchronizing literal: %q", got)
	}
}

// TestLongLine: a 1 MiB line without CRLF gets BAD and BYE, memory stays
// bounded, and other clients are served meanwhile.
func TestLongLine(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 1})
	for _, state := range []string{"", "auth"} {
		r := f.raw()
		if state == "auth" {
			r.login("auditor", f.password)
		}
		go func() {
			line := strings.Repeat("x", 1<<20)
			r.conn.Write([]byte("A SEARCH " + line))
		}()
		got := r.until("* BYE")
		if !strings.Contains(got, "TOOBIG") && !strings.Contains(got, "too long") {
			t.Fatalf("%s: %q", state, got)
		}
		c := f.auditor()
		if err := c.Noop().Wait(); err != nil {
			t.Fatalf("another client: %v", err)
		}
	}
}

// TestIdleConnections: thousands of idle connections cost bounded memory,
// connections over the limit get BYE, and a client is still served.
func TestIdleConnections(t *testing.T) {
	n := 2000
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(2*n+200) {
		lim.Cur = min(lim.Max, uint64(2*n+200))
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); lim.Cur < uint64(2*n+200) {
			t.Fatalf("need %d file descriptors, have %d", 2*n+200, lim.Cur)
		}
	}
	f := newFixture(t, fixtureOpts{generated: 1, opts: func(o *Options) {
		o.MaxConnections = n + 10
		o.MaxConnectionsPerIP = n + 10
	}})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 512)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(buf); err != nil { // the greeting
			t.Fatalf("greeting %d: %v", i, err)
		}
	}
	for f.srv.Connections() < n {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapInuse) + int64(after.StackInuse) - int64(before.HeapInuse) - int64(before.StackInuse)) / int64(n)
	t.Logf("%d idle connections: %d bytes each (heap and stacks of client and server)", n, per)
	if per > 64<<10 {
		t.Errorf("an idle connection costs %d bytes", per)
	}
	c := f.auditor()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("a client among %d idle ones: %v", n, err)
	}
	// Over the limit: BYE at once.
	var extra []net.Conn
	for i := 0; i < 20; i++ {
		x, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, x)
	}
	x := extra[len(extra)-1]
	x.SetReadDeadline(time.Now().Add(10 * time.Second))
	k, _ := x.Read(buf)
	if !strings.HasPrefix(string(buf[:k]), "* BYE") {
		t.Fatalf("connection over the limit: %q", buf[:k])
	}
	for _, x := range extra {
		x.Close()
	}
	_ = imap.CapIMAP4rev1
	_ = fmt.Sprint
}
