//go:build integration

package audit

// Integration tests against a real rsyslog on 127.0.0.1 (issue 5's checks).
// They fail, never skip, when rsyslogd cannot be had: scripts/rsyslog.sh
// install is run first, so a machine without rsyslog installs it.
//
//	go test -tags integration -run Rsyslog -v ./audit

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/internal/freeport"
)

// rsyslog is one private rsyslogd started by scripts/rsyslog.sh.
type rsyslog struct {
	t        testing.TB
	dir      string
	tcp, tls int
	running  bool
}

var installOnce sync.Once

func script(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("../scripts/rsyslog.sh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/rsyslog.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func freePort(t testing.TB) int { return freeport.Port(t) }

// startRsyslog installs rsyslog if missing (failing the test if it cannot),
// writes a CA and a server certificate for 127.0.0.1, and starts rsyslogd
// with a plain and a TLS input. It is stopped at cleanup.
func startRsyslog(t testing.TB) *rsyslog {
	t.Helper()
	installOnce.Do(func() { script(t, "install") })
	if _, err := exec.LookPath("rsyslogd"); err != nil {
		t.Fatalf("rsyslogd is required for the integration tests: %v", err)
	}
	r := &rsyslog{t: t, dir: t.TempDir(), tcp: freePort(t), tls: freePort(t)}
	writeCerts(t, r.dir)
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *rsyslog) start() {
	r.t.Helper()
	script(r.t, "start", r.dir, strconv.Itoa(r.tcp), strconv.Itoa(r.tls))
	r.running = true
}

func (r *rsyslog) stop() {
	if r.running {
		script(r.t, "stop", r.dir)
		r.running = false
	}
}

func (r *rsyslog) addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// lines returns the messages rsyslog wrote to DIR/<name>.log.
func (r *rsyslog) lines(name string) []string {
	b, err := os.ReadFile(filepath.Join(r.dir, name+".log"))
	if err != nil && !os.IsNotExist(err) {
		r.t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// entries parses rsyslog's lines back into entries (RFC 5424, MSG = line form).
func (r *rsyslog) entries(t testing.TB, name string) []Entry {
	t.Helper()
	var out []Entry
	for i, l := range r.lines(name) {
		m, err := parseSyslog(l)
		if err != nil {
			t.Fatalf("%s line %d: %v\n%s", name, i+1, err, l)
		}
		en, err := ParseLine([]byte(m.Msg))
		if err != nil {
			t.Fatalf("%s line %d: %v\n%s", name, i+1, err, l)
		}
		if m.Params["seq"] != strconv.FormatUint(uint64(en.Seq), 10) || m.Params["hash"] != en.Hash.String() || m.MsgID != string(en.Event.Action) {
			t.Fatalf("%s line %d: SD does not match MSG: %s", name, i+1, l)
		}
		out = append(out, en)
	}
	return out
}

func writeCerts(t testing.TB, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cairn test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "siem.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		DNSNames: []string{"siem.test", "localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("cert.pem", "CERTIFICATE", srvDER)
	write("key.pem", "EC PRIVATE KEY", srvKeyDER)
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func syslogSinks(r *rsyslog, tlsName string) []Sink {
	tcp, err := NewSyslogSink(SyslogConfig{Name: "rsyslog-tcp", Address: r.addr(r.tcp), Render: RenderOptions{Hostname: "cairn.test"}})
	if err != nil {
		panic(err)
	}
	tl, err := NewSyslogSink(SyslogConfig{Name: "rsyslog-tls", Address: r.addr(r.tls), Render: RenderOptions{Hostname: "cairn.test"},
		TLS: &TLSConfig{CAFile: filepath.Join(r.dir, "ca.pem"), ServerName: tlsName}})
	if err != nil {
		panic(err)
	}
	return []Sink{tcp, tl}
}

// TestRsyslogTCPAndTLS: events over TCP and TLS arrive, and the lines
// rsyslog writes parse back to exactly the recorded events.
func TestRsyslogTCPAndTLS(t *testing.T) {
	r := startRsyslog(t)
	e := newEnv(t, func(o *Options) {
		o.Sinks = syslogSinks(r, "siem.test")
		o.Delivery = fastDelivery
		o.KeepQueries = true
	})
	// Hostile values and every action.
	for i, s := range hostile {
		ev := hostileEvent(i, s)
		ev.Details.Query = s
		if _, err := e.log.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	recordParallel(t, e.log, 300)
	head := e.log.Head()
	var want []Entry
	e.log.Events(context.Background(), Query{}, func(en *Entry) error { want = append(want, *en); return nil })
	for _, name := range []string{"tcp", "tls"} {
		waitFor(t, name+" lines", 20*time.Second, func() bool { return len(r.lines(name)) >= int(head) })
		got := r.entries(t, name)
		if len(got) != len(want) {
			t.Fatalf("%s: %d lines, want %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i].Bytes, want[i].Bytes) || got[i].Hash != want[i].Hash {
				t.Fatalf("%s line %d differs:\n got %s\nwant %s", name, i+1, got[i].Bytes, want[i].Bytes)
			}
		}
		t.Logf("%s: %d events arrived and parse back exactly", name, len(got))
	}
	for _, st := range e.log.SinkStatus() {
		if st.LastError != "" {
			t.Errorf("%s: %s", st.Name, st.LastError)
		}
	}
}

// TestRsyslogTLSVerifiesServerName: a wrong server name is refused, and
// nothing is delivered or acknowledged.
func TestRsyslogTLSVerifiesServerName(t *testing.T) {
	r := startRsyslog(t)
	e := newEnv(t, func(o *Options) { o.Sinks = syslogSinks(r, "other.test")[1:]; o.Delivery = fastDelivery })
	record(t, e.log, 3)
	st := waitStatus(t, e.log, "the handshake to be refused", 20*time.Second, func(s SinkStatus) bool {
		return strings.Contains(s.LastError, "certificate")
	})[0]
	if st.Cursor != 0 || st.Delivered != 0 {
		t.Fatalf("status %+v", st)
	}
	if n := len(r.lines("tls")); n != 0 {
		t.Fatalf("%d lines delivered to an unverified server", n)
	}
}

// recordRate records n events from 32 goroutines and returns events/s.
func recordRate(t testing.TB, l *Log, n int) float64 {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	const workers = 32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if _, err := l.Record(context.Background(), sampleEvent(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// recordUntil records from 32 goroutines until ctx ends.
func recordUntil(ctx context.Context, t testing.TB, l *Log) {
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ctx.Err() == nil; i += 32 {
				if _, err := l.Record(context.Background(), sampleEvent(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestRsyslogOutage: rsyslog stopped while 10,000 events are recorded, then
// started: every event arrives, in order, none twice beyond the documented
// window, and recording went on while the sink was down.
func TestRsyslogOutage(t *testing.T) {
	r := startRsyslog(t)
	d := fastDelivery
	d.BatchSize = 500
	d.MaxBackoff = time.Second
	sinks := syslogSinks(r, "siem.test")
	e := newEnv(t, func(o *Options) { o.Sinks = sinks; o.Delivery = d; o.SegmentEvents = 4096 })

	// Baseline: 10,000 events with the SIEM up and delivery running.
	upStart := time.Now()
	upRate := recordRate(t, e.log, 10000)
	upTime := time.Since(upStart)
	waitFor(t, "baseline delivery", 30*time.Second, func() bool {
		return e.log.SinkStatus()[0].Cursor == e.log.Head() && e.log.SinkStatus()[1].Cursor == e.log.Head()
	})
	before := e.log.Head()

	// Keep 32 recorders busy; stop rsyslog after 2,000 more events, while
	// delivery is in flight; measure the rate of the next 10,000, recorded
	// while it is down. Those 10,000 completing at all is what shows that a
	// down sink does not hold up Record.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		recordUntil(ctx, t, e.log)
	}()
	waitFor(t, "2,000 events recorded", 30*time.Second, func() bool { return e.log.Head() >= before+2000 })
	var cursorAtStop Seq = e.log.Head()
	for _, st := range e.log.SinkStatus() {
		cursorAtStop = min(cursorAtStop, st.Cursor)
	}
	r.stop()
	t0, h0 := time.Now(), e.log.Head()
	waitFor(t, "10,000 events recorded while down", 60*time.Second, func() bool { return e.log.Head() >= h0+10000 })
	t1, h1 := time.Now(), e.log.Head()
	stop()
	<-done
	head := e.log.Head()
	downRate := float64(h1-h0) / t1.Sub(t0).Seconds()
	sts := waitStatus(t, e.log, "both sinks to notice that rsyslog stopped", 20*time.Second, func(s SinkStatus) bool {
		return s.LastError != "" && s.Lag != 0
	})
	for _, st := range sts {
		t.Logf("while down: %s cursor %d lag %d failures %d last error %q", st.Name, st.Cursor, st.Lag, st.Failures, st.LastError)
	}
	r.start()
	waitFor(t, "delivery after restart", 60*time.Second, func() bool {
		for _, st := range e.log.SinkStatus() {
			if st.Cursor != head {
				return false
			}
		}
		return true
	})
	t.Logf("record rate: %.0f events/s with rsyslog up (%v); %.0f events/s for the %d events recorded while it was down (%v)",
		upRate, upTime.Round(time.Millisecond), downRate, h1-h0, t1.Sub(t0).Round(time.Millisecond))
	// The two rates are logged, not held to a close ratio: each phase lasts
	// about a second or less, and on a 2-core machine the ratio down/up
	// ranged from 0.83 to 3.5 over seven runs of the same code, so a bound
	// such as "down >= 0.75 up" failed by chance. A producer held up by
	// the down sink (waiting out its backoff, up to MaxBackoff = 1s, or a
	// dial timeout) records orders of magnitude slower: fail only on that,
	// and only when both phases lasted long enough for their rates to mean
	// something. A producer blocked outright fails the 60s wait above.
	const minPhase, maxSlowdown = time.Second, 10
	if upTime >= minPhase && t1.Sub(t0) >= minPhase && downRate < upRate/maxSlowdown {
		t.Errorf("recording slowed over %dx while the sink was down: %.0f/s vs %.0f/s", maxSlowdown, downRate, upRate)
	}
	for _, name := range []string{"tcp", "tls"} {
		var seqs []Seq
		for _, en := range r.entries(t, name) {
			seqs = append(seqs, en.Seq)
		}
		dups := checkStream(t, seqs, head)
		// Documented window: only events not yet confirmed when the
		// connection broke (sent in the last confirm_after) are sent again.
		if window := int(h0 - cursorAtStop); dups > window {
			t.Errorf("%s: %d duplicates, over the %d events unconfirmed at the stop", name, dups, window)
		}
		t.Logf("%s: all %d events arrived in order, %d duplicates", name, head, dups)
	}
}

// The kill -9 test re-executes the test binary as a child that records and
// delivers; the parent kills it mid-delivery, restarts delivery, and checks
// that every event whose Record returned reached rsyslog.

const childEnv = "CAIRN_AUDIT_CHILD"

func TestRsyslogChildDeliver(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("helper for TestRsyslogKill9; runs only as a child")
	}
	// spec: dbPath|tcpAddr|events
	parts := strings.Split(spec, "|")
	n, _ := strconv.Atoi(parts[2])
	sink, err := NewSyslogSink(SyslogConfig{Name: "rsyslog-tcp", Address: parts[1], Render: RenderOptions{Hostname: "cairn.test"}})
	if err != nil {
		t.Fatal(err)
	}
	d := fastDelivery
	d.BatchSize = 50 // many small batches: the kill lands mid-delivery
	l, err := Open(Options{Path: parts[0], Origin: testOrigin, QueryKey: []byte("0123456789abcdef"), Sinks: []Sink{sink}, Delivery: d})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		s, err := l.Record(context.Background(), sampleEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("recorded %d\n", s) // the parent trusts only what was acknowledged
		if i%5 == 0 {
			time.Sleep(2 * time.Millisecond) // spread over seconds: the kill lands mid-stream
		}
	}
	select {} // deliver until killed
}

func TestRsyslogKill9(t *testing.T) {
	r := startRsyslog(t)
	db := filepath.Join(t.TempDir(), "audit.db")
	const n = 5000
	cmd := exec.Command(os.Args[0], "-test.run", "^TestRsyslogChildDeliver$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+db+"|"+r.addr(r.tcp)+"|"+strconv.Itoa(n))
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it while events are still arriving at rsyslog.
	waitFor(t, "delivery under way", 60*time.Second, func() bool { return len(r.lines("tcp")) >= n/2 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	var acked Seq
	for _, l := range strings.Split(out.String(), "\n") {
		if s, ok := strings.CutPrefix(l, "recorded "); ok {
			v, _ := strconv.ParseUint(s, 10, 64)
			acked = max(acked, Seq(v))
		}
	}
	atKill := len(r.lines("tcp"))
	t.Logf("child killed after %d acknowledged records, %d lines at rsyslog", acked, atKill)
	if acked == 0 {
		t.Fatalf("child recorded nothing:\n%s", out.String())
	}

	// Restart delivery in this process from the same database and cursor.
	sink, _ := NewSyslogSink(SyslogConfig{Name: "rsyslog-tcp", Address: r.addr(r.tcp), Render: RenderOptions{Hostname: "cairn.test"}})
	l, err := Open(Options{Path: db, Origin: testOrigin, QueryKey: []byte("0123456789abcdef"), Sinks: []Sink{sink}, Delivery: fastDelivery})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	head := l.Head()
	if head < acked {
		t.Fatalf("acknowledged seq %d lost: database head %d", acked, head)
	}
	st := l.SinkStatus()[0]
	t.Logf("reopened: head %d, durable cursor %d", head, st.Cursor)
	waitFor(t, "redelivery", 60*time.Second, func() bool { return l.SinkStatus()[0].Cursor == head })
	var seqs []Seq
	for _, en := range r.entries(t, "tcp") {
		seqs = append(seqs, en.Seq)
	}
	dups := checkStream(t, seqs, head)
	t.Logf("all %d events arrived in order; %d duplicates (resent from the durable cursor)", head, dups)
	// The documented window: only events after the durable cursor are sent
	// again (those unconfirmed, or confirmed within the cursor-save lag).
	if dups > int(head-st.Cursor) {
		t.Fatalf("%d duplicates, more than the %d events after the durable cursor", dups, head-st.Cursor)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
