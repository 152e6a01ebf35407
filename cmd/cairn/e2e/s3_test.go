//go:build integration

package e2e

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
	"github.com/cairn-archive/cairn/internal/proctest"
)

// s3Server is a private versitygw started by scripts/s3-server.sh, so that
// a test can stop and kill it without touching the one other packages use.
type s3Server struct {
	t        *testing.T
	endpoint string
	access   string
	secret   string
	dir      string
	pid      int
	argv     []string // its command line, to start it again after a kill
	proc     *os.Process
}

func startS3(t *testing.T) *s3Server {
	t.Helper()
	out := runScript(t, nil, "s3-server.sh")
	s := &s3Server{t: t}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if !ok {
			continue
		}
		switch k {
		case "CAIRN_TEST_S3_ENDPOINT":
			s.endpoint = v
		case "CAIRN_TEST_S3_ACCESS_KEY":
			s.access = v
		case "CAIRN_TEST_S3_SECRET_KEY":
			s.secret = v
		case "CAIRN_TEST_S3_DIR":
			s.dir = v
		case "CAIRN_TEST_S3_PID":
			s.pid, _ = strconv.Atoi(v)
		}
	}
	if s.endpoint == "" || s.pid == 0 || s.dir == "" {
		t.Fatalf("scripts/s3-server.sh printed no server:\n%s", out)
	}
	t.Cleanup(s.stop)
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/cmdline")
	if err != nil {
		t.Fatalf("versitygw pid %d: %v", s.pid, err)
	}
	s.argv = strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	return s
}

func (s *s3Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := syscall.Kill(s.pid, sig); err != nil {
		s.t.Fatalf("versitygw pid %d: %v: %v", s.pid, sig, err)
	}
}

// waitStopped returns once every thread of versitygw is stopped: kill(2)
// returns before a SIGSTOP has taken effect, and on a loaded machine the
// server once answered a whole probe in between (TestObjectStoreOutage saw
// a 250 in 23 ms after the signal).
func (s *s3Server) waitStopped() {
	s.t.Helper()
	proctest.WaitStopped(s.t, s.pid, 10*time.Second)
}

// kill9 kills versitygw; restart starts it again on the same port and
// data, as an S3 service coming back after a crash.
func (s *s3Server) kill9() {
	s.t.Helper()
	s.signal(syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(s.pid, 0) == nil; i++ {
		if s.proc != nil {
			s.proc.Wait()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *s3Server) restart() {
	s.t.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		s.pid, s.proc = cmd.Process.Pid, cmd.Process
		os.WriteFile(filepath.Join(s.dir, "pid"), []byte(strconv.Itoa(s.pid)), 0o600)
		for i := 0; i < 50; i++ {
			if c, err := net.DialTimeout("tcp", s.endpoint, time.Second); err == nil {
				c.Close()
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The port may still be held by the dying one: try again.
		cmd.Process.Kill()
		cmd.Wait()
		if time.Now().After(deadline) {
			s.t.Fatalf("versitygw did not come back on %s", s.endpoint)
		}
		cmd = exec.Command(s.argv[0], s.argv[1:]...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
}

func (s *s3Server) stop() {
	syscall.Kill(s.pid, syscall.SIGCONT)
	cmd := exec.Command("bash", filepath.Join(repoRoot, "scripts", "s3-server.sh"), "stop")
	cmd.Env = append(os.Environ(), "CAIRN_TEST_S3_PID="+strconv.Itoa(s.pid), "CAIRN_TEST_S3_DIR="+s.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Errorf("scripts/s3-server.sh stop: %v\n%s", err, out)
	}
	if s.proc != nil {
		s.proc.Wait()
	}
}

// Issue 3, check 5: `cairn serve` on the S3 store (versitygw), the store made
// unavailable twice in the middle of a load: first hung (SIGSTOP: requests
// time out), then gone (kill -9, connections refused) and started again.
// While it is down, a probe gets 451 4.3.0 and the index does not grow (no
// 250 is possible for a message that is not stored); the load's sessions
// retry like an MTA, and once the store is back every message is archived.
// Every 250 is then checked byte for byte and `cairn verify --full` reads
// every object back from S3.
func TestObjectStoreOutage(t *testing.T) {
	s3 := startS3(t)
	in := newInstance(t, config{
		"store.type":             "s3",
		"store.s3.endpoint":      s3.endpoint,
		"store.s3.bucket":        "cairn-e2e-outage",
		"store.s3.access_key":    s3.access,
		"store.s3.secret_key":    s3.secret,
		"store.s3.secure":        false,
		"store.s3.lookup":        "path",
		"store.s3.create_bucket": true,
		// Fail fast while the store is away, as an operator running on a
		// LAN store would configure it.
		"store.s3.timeout":           "2s",
		"store.s3.max_retries":       1,
		"smtp.archive_timeout":       "30s",
		"ledger.checkpoint_interval": "2s",
	})
	in.start()
	db := in.db()
	deliveries := func() int { return queryInt(t, db, `SELECT COUNT(*) FROM deliveries`) }

	const messages = 2000
	run := "s3" + strconv.FormatInt(time.Now().UnixNano(), 36)
	done := make(chan smtptest.Result, 1)
	go func() {
		res, err := smtptest.Load(withTimeout(t, 10*time.Minute), smtptest.LoadOptions{
			Addr: in.smtpAddr, Sessions: 10, Messages: messages, BodySize: 10240, Run: run,
			Retry: true, RetryDelay: 500 * time.Millisecond, Timeout: 2 * time.Minute,
		})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()

	// outage takes the store away with down, checks that nothing is
	// acknowledged meanwhile, and brings it back with up.
	probe := 0
	outage := func(name string, atLeast int, down, up func()) {
		t.Helper()
		waitCount(t, db, atLeast, 2*time.Minute, `SELECT COUNT(*) FROM deliveries`)
		down()
		t.Logf("%s: store down after %d deliveries", name, deliveries())
		// A message sent now cannot be stored: 451 4.3.0, the sender
		// keeps it and retries.
		probe++
		msg := smtptest.Message(run+"-probe", probe, 10240)
		start := time.Now()
		r := deliverOne(t, in.smtpAddr, "probe@cairn.test", []string{"archive@cairn.test"}, msg)
		if !strings.HasPrefix(r, "451 4.3.0 ") {
			t.Errorf("%s: a message sent while the store is down got %q, want 451 4.3.0", name, r)
		}
		t.Logf("%s: probe answered in %v: %q", name, time.Since(start).Round(time.Millisecond), r)
		// Batches already past their object writes may still commit just
		// after the store went; once the probe has failed, nothing can.
		// The index lists an answered batch up to IndexWait (100 ms) after
		// its 250, later on a loaded machine, and the probe may fail fast
		// (a refused connection): wait until the index stops changing
		// before counting.
		frozen := deliveries()
		for settle := time.Now().Add(30 * time.Second); ; {
			time.Sleep(time.Second)
			n := deliveries()
			if n == frozen {
				break
			}
			if time.Now().After(settle) {
				t.Fatalf("%s: the index still grows 30 s into the outage (%d deliveries, then %d)", name, frozen, n)
			}
			frozen = n
		}
		time.Sleep(4 * time.Second)
		if n := deliveries(); n != frozen {
			t.Errorf("%s: %d deliveries indexed (and answered 250) while the store was down", name, n-frozen)
		}
		up()
		t.Logf("%s: store back", name)
		// The probe's sender retries: now it is archived.
		deadline := time.Now().Add(time.Minute)
		for {
			r = deliverOne(t, in.smtpAddr, "probe@cairn.test", []string{"archive@cairn.test"}, msg)
			if strings.HasPrefix(r, "250 ") || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		seq, ok := smtptest.ParseSeq(r)
		if !ok {
			t.Fatalf("%s: the probe retried after the outage got %q", name, r)
		}
		checkAcked(t, in, run+"-probe", []smtptest.Ack{{N: probe, Seq: seq, Reply: r}}, 0)
	}
	outage("SIGSTOP", messages/5,
		func() { s3.signal(syscall.SIGSTOP); s3.waitStopped() },
		func() { s3.signal(syscall.SIGCONT) })
	outage("kill -9", messages/2, s3.kill9, s3.restart)

	res := <-done
	t.Logf("load: %d acknowledged, %d temporary failures, %d broken connections, in %v",
		len(res.Acked), res.TempFailures, res.ConnFailures, res.Duration.Round(time.Millisecond))
	if len(res.Acked) != messages || len(res.Refused) > 0 || len(res.Unacknowledged) > 0 {
		t.Fatalf("load: %d of %d acknowledged, refused %v, unacknowledged %v", len(res.Acked), messages, res.Refused, res.Unacknowledged)
	}
	if res.TempFailures == 0 {
		t.Errorf("no session saw a 4xx: the outages did not reach the load")
	}
	checkAcked(t, in, run, res.Acked, 10)
	in.stop()
	t.Log(in.verify())
	if b, _ := os.ReadFile(filepath.Join(s3.dir, "server.log")); bytes.Contains(b, []byte("panic")) {
		t.Errorf("versitygw log:\n%s", tail(string(b), 20))
	}
}
