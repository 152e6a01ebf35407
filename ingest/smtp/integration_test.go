//go:build integration

package smtp

// Integration tests against Postfix's own programs: smtp-source for load,
// smtp-sink for the baseline, and private Postfix instances (configured by
// scripts/postfix.sh) delivering into the receiver. They install Postfix
// with scripts/postfix.sh (root, Debian) and fail when it cannot.
//
//	go test -tags integration -run . ./ingest/smtp
//	CAIRN_SMTP_BENCH=1 go test -tags integration -run Ceiling -v ./ingest/smtp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/journal"
	"github.com/cairn-archive/cairn/internal/freeport"
)

var postfixScript = filepath.Join("..", "..", "scripts", "postfix.sh")

func requirePostfix(t testing.TB) {
	t.Helper()
	out, err := exec.Command("bash", postfixScript, "install").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/postfix.sh install: %v\n%s", err, out)
	}
	for _, tool := range []string{"smtp-source", "smtp-sink", "postfix"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found after scripts/postfix.sh install: %v", tool, err)
		}
	}
}

// wholeArchiver checks that every message smtp-source sends arrived whole:
// its four header lines, then exactly msgLen bytes of the numbered 'X' lines.
type wholeArchiver struct {
	msgLen int
	count  atomic.Int64
	bad    atomic.Int64
	first  atomic.Value // string: the first problem
}

var smtpSourceHeader = regexp.MustCompile(`\AFrom: <a@example\.com>\r\nTo: <b@example\.com>\r\nDate: [^\r\n]+\r\nMessage-Id: <[^\r\n]+>\r\n\r\n`)

func (w *wholeArchiver) Archive(_ context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	loc := smtpSourceHeader.FindIndex(raw)
	problem := ""
	switch {
	case loc == nil:
		problem = fmt.Sprintf("unexpected header: %.200q", raw)
	case len(raw)-loc[1] != w.msgLen+2 || !bytes.HasSuffix(raw, []byte("X\r\n")):
		problem = fmt.Sprintf("body is %d bytes, want %d", len(raw)-loc[1], w.msgLen+2)
	case env.Sender != "a@example.com" || len(env.Recipients) != 1:
		problem = fmt.Sprintf("envelope %+v", env)
	}
	if problem != "" {
		w.bad.Add(1)
		w.first.CompareAndSwap(nil, problem)
	}
	n := w.count.Add(1)
	return ingest.Receipt{Seq: uint64(n), MessageSeq: uint64(n)}, nil
}

func runSMTPSource(t testing.TB, addr string, sessions, msgs, length int) time.Duration {
	t.Helper()
	start := time.Now()
	cmd := exec.Command("smtp-source", "-s", strconv.Itoa(sessions), "-m", strconv.Itoa(msgs), "-l", strconv.Itoa(length),
		"-f", "a@example.com", "-t", "b@example.com", addr)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	return time.Since(start)
}

func TestSMTPSourceArrivesWhole(t *testing.T) {
	requirePostfix(t)
	w := &wholeArchiver{msgLen: 10240}
	s, addr := startServer(t, Options{}, w, Runtime{})
	d := runSMTPSource(t, addr, 20, 2000, 10240)
	if n := w.count.Load(); n != 2000 {
		t.Fatalf("%d messages archived, want 2000", n)
	}
	if b := w.bad.Load(); b != 0 {
		t.Fatalf("%d messages damaged; first: %v", b, w.first.Load())
	}
	if st := s.Stats(); st.Accepted != 2000 {
		t.Fatalf("Stats.Accepted %d", st.Accepted)
	}
	t.Logf("2000 messages of 10 KiB from 20 sessions in %v (%.0f msgs/s)", d, 2000/d.Seconds())
}

// postfixInstance is a private Postfix started by scripts/postfix.sh.
type postfixInstance struct {
	dir  string
	addr string // its smtpd
}

func freeAddr(t testing.TB) string { return freeport.Addr(t) }

func startPostfix(t *testing.T, cairnAddr, mode string, tls bool) *postfixInstance {
	t.Helper()
	requirePostfix(t)
	dir, err := os.MkdirTemp("", "cairn-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	p := &postfixInstance{dir: dir, addr: freeAddr(t)}
	args := []string{postfixScript, "instance", dir, "--listen", p.addr, "--cairn", cairnAddr, "--mode", mode}
	if tls {
		args = append(args, "--tls")
	}
	if out, err := exec.Command("bash", args...).CombinedOutput(); err != nil {
		t.Fatalf("postfix.sh instance: %v\n%s", err, out)
	}
	if out, err := exec.Command("bash", postfixScript, "start", dir).CombinedOutput(); err != nil {
		t.Fatalf("postfix.sh start: %v\n%s\n%s", err, out, p.log())
	}
	t.Cleanup(func() {
		exec.Command("bash", postfixScript, "stop", dir).Run()
		// Wait for the master to go before removing its queue.
		for i := 0; i < 50; i++ {
			if _, err := os.Stat(filepath.Join(dir, "queue", "pid", "master.pid")); err != nil {
				break
			}
			if exec.Command("postfix", "-c", filepath.Join(dir, "etc"), "status").Run() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if t.Failed() {
			t.Logf("Postfix log:\n%s", p.log())
		}
		os.RemoveAll(dir)
	})
	// Its smtpd answers once master has started it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix smtpd on %s never came up:\n%s", p.addr, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}

func (p *postfixInstance) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

func (p *postfixInstance) send(t *testing.T, from string, to []string, msg string) {
	t.Helper()
	if err := smtp.SendMail(p.addr, nil, from, to, []byte(msg)); err != nil {
		t.Fatalf("submit to Postfix: %v", err)
	}
}

func waitMessages(t *testing.T, fa interface{ messages() []stored }, n int, p *postfixInstance) []stored {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		m := fa.messages()
		if len(m) >= n {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages reached Cairn\nPostfix log:\n%s", len(m), n, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cairnForPostfix(t *testing.T, a ingest.Archiver) (*Server, string) {
	cfg, _ := testTLS(t)
	return startServer(t, Options{
		AcceptRecipients: []string{"cairn.test"},
		Journal:          journal.Options{ArchiveAddresses: []string{"archive@cairn.test"}, LocalDomains: []string{"example.com"}},
	}, a, Runtime{TLSConfig: cfg})
}

func pfMessage(id string) string {
	return "From: a@example.com\r\nTo: b@example.com\r\nCc: c@example.com\r\nSubject: postfix " + id +
		"\r\nMessage-ID: <" + id + "@example.com>\r\n\r\nBody of " + id + "\r\n"
}

// always_bcc: every message reaches Cairn once, over STARTTLS, as a bcc copy.
func TestPostfixAlwaysBcc(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := cairnForPostfix(t, fa)
	p := startPostfix(t, addr, "always_bcc", true)
	for i := 0; i < 5; i++ {
		p.send(t, "a@example.com", []string{"b@example.com", "c@example.com", "hidden@example.com"}, pfMessage(fmt.Sprint("bcc", i)))
	}
	msgs := waitMessages(t, fa, 5, p)
	time.Sleep(500 * time.Millisecond)
	if n := len(fa.messages()); n != 5 {
		t.Fatalf("%d messages archived, want 5", n)
	}
	for _, m := range msgs {
		e := m.env
		if e.Source != ingest.SourceBcc || e.Sender != "a@example.com" || len(e.Recipients) != 1 || e.Recipients[0].Address != "archive@cairn.test" {
			t.Errorf("envelope %+v", e)
		}
		if !strings.HasPrefix(e.Meta["tls"], "TLS ") {
			t.Errorf("not delivered over STARTTLS: %v", e.Meta)
		}
		if !bytes.Contains(m.raw, []byte("Subject: postfix bcc")) || !bytes.Contains(m.raw, []byte("Received: from ")) {
			t.Errorf("message %q", m.raw)
		}
	}
}

// recipient_bcc_maps with tags: Cairn learns every envelope recipient, the
// Bcc one too, which always_bcc loses.
func TestPostfixRecipientBcc(t *testing.T) {
	fa := &fakeArchiver{}
	_, addr := cairnForPostfix(t, fa)
	p := startPostfix(t, addr, "recipient_bcc", false)
	p.send(t, "a@example.com", []string{"b@example.com", "c@example.com", "hidden@example.com"}, pfMessage("rbcc"))
	msgs := waitMessages(t, fa, 1, p)
	var got []string
	for _, r := range msgs[0].env.Recipients {
		got = append(got, r.Address)
	}
	want := "b@example.com c@example.com hidden@example.com"
	if strings.Join(got, " ") != want || msgs[0].env.Source != ingest.SourceBcc {
		t.Fatalf("recipients %q (source %s), want %q", got, msgs[0].env.Source, want)
	}
	if c := strings.Join(msgs[0].env.Custodians, " "); c != "a@example.com "+want {
		t.Errorf("custodians %q", c)
	}
}

// A journal report relayed through Postfix is unwrapped byte for byte.
func TestPostfixRelaysJournalReport(t *testing.T) {
	report, _ := os.ReadFile("../journal/testdata/exchange-online-report.eml")
	original, _ := os.ReadFile("../journal/testdata/exchange-online-report.original.eml")
	fa := &fakeArchiver{}
	_, addr := cairnForPostfix(t, fa)
	p := startPostfix(t, addr, "relay", true)
	p.send(t, "", []string{"journal@cairn.test"}, string(report))
	m := waitMessages(t, fa, 1, p)[0]
	if !bytes.Equal(m.raw, original) {
		t.Fatalf("archived %q", m.raw)
	}
	if m.env.Source != ingest.SourceJournal || len(m.env.Recipients) != 8 {
		t.Fatalf("envelope %+v", m.env)
	}
}

// The archive fails for a while (the object store is down): Postfix gets
// 451, keeps the messages and retries; every message is archived once it
// recovers, and none was acknowledged before.
func TestPostfixRetriesAfter451(t *testing.T) {
	fa := &fakeArchiver{}
	fa.setFail(errors.New("objstore: connection refused"))
	s, addr := cairnForPostfix(t, fa)
	p := startPostfix(t, addr, "always_bcc", false)
	for i := 0; i < 10; i++ {
		p.send(t, "a@example.com", []string{"b@example.com"}, pfMessage(fmt.Sprint("retry", i)))
	}
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().TempFailures["archive"] < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("Postfix did not try all messages: %+v\n%s", s.Stats(), p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(fa.messages()); n != 0 {
		t.Fatalf("%d archived while the archive was failing", n)
	}
	fa.setFail(nil)
	msgs := waitMessages(t, fa, 10, p)
	seen := map[string]bool{}
	for _, m := range msgs {
		subject := m.raw[bytes.Index(m.raw, []byte("Subject: ")):]
		seen[string(subject[:bytes.IndexByte(subject, '\r')])] = true
	}
	if len(seen) != 10 {
		t.Fatalf("%d distinct messages archived, want 10", len(seen))
	}
	t.Logf("archive failures answered 451: %d; then all 10 archived", s.Stats().TempFailures["archive"])
}

// The receiver's ceiling: the same smtp-source load against smtp-sink (which
// discards) and against the receiver with an archive that does nothing,
// alternated twice; the best run of each counts, since the machine is shared.
// It also reports the receiver's own CPU time per message, which noise on a
// shared machine moves far less. Run with CAIRN_SMTP_BENCH=1 (about a
// minute).
func TestReceiverCeiling(t *testing.T) {
	if os.Getenv("CAIRN_SMTP_BENCH") == "" {
		t.Skip("set CAIRN_SMTP_BENCH=1 to measure")
	}
	requirePostfix(t)
	const sessions, msgs, length = 20, 20000, 10240

	sinkAddr := freeAddr(t)
	sink := exec.Command("smtp-sink", "-u", "nobody", sinkAddr, "256")
	if err := sink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sink.Process.Kill(); sink.Wait() }()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", sinkAddr); err == nil {
			c.Close()
			break
		}
		if i > 50 {
			t.Fatal("smtp-sink did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var a noopArchiver
	_, addr := startServer(t, Options{}, &a, Runtime{})

	var sinkBest, cairnBest float64
	var cpuPerMsg time.Duration
	for round := 0; round < 2; round++ {
		sinkBest = max(sinkBest, float64(msgs)/runSMTPSource(t, sinkAddr, sessions, msgs, length).Seconds())
		before := cpuTime()
		d := runSMTPSource(t, addr, sessions, msgs, length)
		cpu := cpuTime() - before
		if r := float64(msgs) / d.Seconds(); r > cairnBest {
			cairnBest, cpuPerMsg = r, cpu/msgs
		}
	}
	t.Logf("smtp-source -s %d -m %d -l %d, best of 2: smtp-sink %.0f msgs/s; Cairn receiver with a no-op archive %.0f msgs/s (%.0f%%), %v of receiver CPU per message",
		sessions, msgs, length, sinkBest, cairnBest, 100*cairnBest/sinkBest, cpuPerMsg.Round(time.Microsecond))
	if cairnBest < sinkBest/2 {
		t.Errorf("receiver ceiling %.0f msgs/s is below half of smtp-sink's %.0f", cairnBest, sinkBest)
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
