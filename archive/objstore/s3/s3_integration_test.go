//go:build integration

// Integration tests against a real S3 server. Start one and run:
//
//	eval "$(scripts/s3-server.sh)"
//	go test -tags integration ./archive/objstore/s3/
//	scripts/s3-server.sh stop
//
// The tests fail, never skip, without the server: CI must not pass without
// one.
package s3

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/storetest"
	"github.com/cairn-archive/cairn/internal/proctest"
)

type server struct {
	endpoint, access, secret string
	pid                      int
}

// envServer is the server named by the CAIRN_TEST_S3_* variables.
func envServer(t *testing.T) server {
	t.Helper()
	srv := server{
		endpoint: os.Getenv("CAIRN_TEST_S3_ENDPOINT"),
		access:   os.Getenv("CAIRN_TEST_S3_ACCESS_KEY"),
		secret:   os.Getenv("CAIRN_TEST_S3_SECRET_KEY"),
	}
	if srv.endpoint == "" || srv.access == "" || srv.secret == "" {
		t.Fatal(`CAIRN_TEST_S3_ENDPOINT, CAIRN_TEST_S3_ACCESS_KEY and CAIRN_TEST_S3_SECRET_KEY must be set: run eval "$(scripts/s3-server.sh)" first`)
	}
	return srv
}

func (srv server) options(bucket string) Options {
	return Options{
		Endpoint:    srv.endpoint,
		AccessKey:   srv.access,
		SecretKey:   srv.secret,
		Bucket:      bucket,
		Lookup:      LookupPath,
		Region:      "us-east-1",
		Timeout:     20 * time.Second,
		DialTimeout: 2 * time.Second,
	}
}

func bucketName(t *testing.T, kind string) string {
	var b [5]byte
	rand.Read(b[:])
	return "cairn-test-" + kind + "-" + hex.EncodeToString(b[:])
}

// createBucket creates a fresh bucket through Open and returns its options.
func createBucket(t *testing.T, srv server, kind string, lock bool) Options {
	t.Helper()
	o := srv.options(bucketName(t, kind))
	o.CreateBucket, o.ObjectLock = true, lock
	if _, err := Open(t.Context(), o); err != nil {
		t.Fatalf("create bucket %s: %v", o.Bucket, err)
	}
	o.CreateBucket = false
	return o
}

func TestIntegrationConformance(t *testing.T) {
	srv := envServer(t)
	for _, c := range []struct {
		kind string
		lock bool
	}{{"plain", false}, {"lock", true}} {
		t.Run(c.kind, func(t *testing.T) {
			base := createBucket(t, srv, c.kind, c.lock)
			n := 0
			storetest.Run(t, func(t *testing.T) objstore.Store {
				// Each subtest gets its own folder of the bucket: an empty store.
				n++
				o := base
				o.Prefix = fmt.Sprintf("run/%03d", n)
				s, err := Open(t.Context(), o)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestIntegrationOpen(t *testing.T) {
	srv := envServer(t)
	ctx := t.Context()
	missing := srv.options(bucketName(t, "missing"))
	if _, err := Open(ctx, missing); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open of a missing bucket = %v", err)
	}
	plain := createBucket(t, srv, "nolock", false)
	plain.ObjectLock = true
	if _, err := Open(ctx, plain); err == nil || !strings.Contains(err.Error(), "Object Lock") {
		t.Errorf("Open with ObjectLock on a bucket without it = %v", err)
	}
	bad := srv.options(plain.Bucket)
	bad.SecretKey = "wrong"
	if _, err := Open(ctx, bad); err == nil {
		t.Errorf("Open with a wrong secret succeeded")
	}
	// A second CreateBucket on an existing bucket is fine.
	again := srv.options(plain.Bucket)
	again.CreateBucket = true
	if _, err := Open(ctx, again); err != nil {
		t.Errorf("Open with CreateBucket on an existing bucket: %v", err)
	}
}

// TestIntegrationPrefix checks that a store sees only its folder, and
// ignores objects in it that are not valid keys.
func TestIntegrationPrefix(t *testing.T) {
	srv := envServer(t)
	ctx := t.Context()
	base := createBucket(t, srv, "prefix", false)
	open := func(prefix string) *Store {
		o := base
		o.Prefix = prefix
		s, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, ab, whole := open("a"), open("ab/"), open("")
	for _, s := range []*Store{a, ab} {
		if err := s.Put(ctx, "k", strings.NewReader("x"), 1); err != nil {
			t.Fatal(err)
		}
	}
	// A foreign object with a name no key has.
	if _, err := a.client.PutObject(ctx, base.Bucket, "a/Foreign", strings.NewReader("f"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	keys := func(s *Store) []string {
		var k []string
		if err := s.List(ctx, "", func(i objstore.Info) error { k = append(k, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if got := keys(a); len(got) != 1 || got[0] != "k" {
		t.Errorf("store a lists %q, want [k]", got)
	}
	if got := keys(whole); strings.Join(got, " ") != "a/k ab/k" {
		t.Errorf("whole bucket lists %q, want [a/k ab/k]", got)
	}
	if _, err := whole.Stat(ctx, "a/k"); err != nil {
		t.Errorf("a's object is not at a/k: %v", err)
	}
}

// TestIntegrationDefaultRetention: on a bucket whose default retention
// locks every new object, Delete is refused with ErrLocked.
func TestIntegrationDefaultRetention(t *testing.T) {
	srv := envServer(t)
	o := createBucket(t, srv, "defret", true)
	s, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	mode, days, unit := minio.Governance, uint(1), minio.Days
	if err := s.client.SetObjectLockConfig(t.Context(), o.Bucket, &mode, &days, &unit); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "k", strings.NewReader("kept"), 4); err != nil {
		t.Fatalf("Put under default retention: %v", err)
	}
	if err := s.Delete(t.Context(), "k"); !errors.Is(err, objstore.ErrLocked) {
		t.Errorf("Delete under default retention = %v, want ErrLocked", err)
	}
	if got := getAll(t, s, "k"); string(got) != "kept" {
		t.Errorf("object = %q", got)
	}
}

// TestIntegrationSeekableBody: a Put whose body is an io.Seeker must not
// be retried by minio-go behind our back (a retried conditional PUT could
// turn our own success into ErrExist).
func TestIntegrationSeekableBody(t *testing.T) {
	srv := envServer(t)
	o := createBucket(t, srv, "seek", false)
	s, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("seekable "), 10000)
	if err := s.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	err = s.Put(t.Context(), "obj", bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, objstore.ErrExist) {
		t.Errorf("second Put = %v, want ErrExist", err)
	}
}

// startOwnServer starts a private server with scripts/s3-server.sh, so the
// fault tests can stop it without disturbing other tests.
func startOwnServer(t *testing.T) server {
	t.Helper()
	script, err := filepath.Abs("../../../scripts/s3-server.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", script)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok {
			vars[k] = v
		}
	}
	t.Cleanup(func() {
		stop := exec.Command("bash", script, "stop")
		stop.Env = append(os.Environ(), "CAIRN_TEST_S3_PID="+vars["CAIRN_TEST_S3_PID"], "CAIRN_TEST_S3_DIR="+vars["CAIRN_TEST_S3_DIR"])
		stop.Stderr = os.Stderr
		if err := stop.Run(); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	pid, err := strconv.Atoi(vars["CAIRN_TEST_S3_PID"])
	if err != nil {
		t.Fatalf("script printed no pid: %q", out)
	}
	return server{
		endpoint: vars["CAIRN_TEST_S3_ENDPOINT"],
		access:   vars["CAIRN_TEST_S3_ACCESS_KEY"],
		secret:   vars["CAIRN_TEST_S3_SECRET_KEY"],
		pid:      pid,
	}
}

// TestIntegrationServerStopped freezes the server (SIGSTOP) under a Put and
// checks that every call returns an error within its bound, and that after
// the server resumes nothing partial is visible.
func TestIntegrationServerStopped(t *testing.T) {
	srv := startOwnServer(t)
	ctx := t.Context()
	o := srv.options(bucketName(t, "fault"))
	o.CreateBucket = true
	o.Timeout, o.MaxRetries = 2*time.Second, 1
	s, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "before", strings.NewReader("before"), 6); err != nil {
		t.Fatal(err)
	}
	// kill(2) returns before the stop takes effect: until every thread is
	// stopped, the server may still answer the first call below.
	proc := signalWait(t, srv.pid, syscall.SIGSTOP, proctest.WaitStopped)
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			proc.Signal(syscall.SIGCONT)
		}
	}
	defer resume()

	// Attempts, backoff (at most 5 s in all), one more Timeout to ask
	// whether a lost attempt stored the object, and slack for a busy machine.
	bound := time.Duration(o.MaxRetries+2)*o.Timeout + 5*time.Second + 3*time.Second
	timed := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		took := time.Since(start)
		if err == nil {
			t.Errorf("%s succeeded against a stopped server", what)
		}
		if took > bound {
			t.Errorf("%s took %v, bound %v", what, took, bound)
		}
		t.Logf("%s failed after %v: %v", what, took.Round(time.Millisecond), err)
	}
	const big = 32 << 20
	bigData := bytes.Repeat([]byte("0123456789abcdef"), big/16)
	timed("Put 32 MiB", func() error { return s.Put(ctx, "big", io.MultiReader(bytes.NewReader(bigData)), big) })
	small := bytes.Repeat([]byte("s"), 10<<10)
	timed("Put 10 KB", func() error { return s.Put(ctx, "small", io.MultiReader(bytes.NewReader(small)), int64(len(small))) })
	timed("Get", func() error {
		rc, err := s.Get(ctx, "before")
		if err == nil {
			rc.Close()
		}
		return err
	})
	timed("Stat", func() error { _, err := s.Stat(ctx, "before"); return err })
	timed("List", func() error { return s.List(ctx, "", func(objstore.Info) error { return nil }) })
	timed("Delete", func() error { return s.Delete(ctx, "before") })

	resume()
	// Let the server work off whatever it had queued: the connections the
	// failed calls left behind (the client closed them; the server's ends
	// wait in CLOSE_WAIT) are closed by the server once it has read and
	// handled what they carried. A request whose body had reached the
	// server would be stored by then.
	waitClosedConns(t, srv.endpoint)
	// Neither body left the client: Put waits for 100 Continue, which a
	// stopped server never sends (without that, the 10 KB request would sit
	// whole in the socket buffers and the server would complete it after
	// it resumed, long after Put had failed).
	for _, key := range []string{"big", "small"} {
		if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrNotExist) {
			t.Errorf("after resume, the failed Put of %s is visible: Stat = %v", key, err)
		}
	}
	if got := getAll(t, s, "before"); string(got) != "before" {
		t.Errorf("object stored before the stop: %q", got)
	}
	// The store works again without reopening.
	if err := s.Put(ctx, "after", strings.NewReader("after"), 5); err != nil {
		t.Errorf("Put after resume: %v", err)
	}
}

// TestIntegrationServerKilled: with the server gone, calls fail fast
// (connection refused) and are retried within the bound.
func TestIntegrationServerKilled(t *testing.T) {
	srv := startOwnServer(t)
	ctx := t.Context()
	o := srv.options(bucketName(t, "killed"))
	o.CreateBucket = true
	o.Timeout, o.MaxRetries = 2*time.Second, 2
	s, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// Until the process has exited it may still hold its listening socket
	// (and answer): wait for that, not for a fixed time.
	signalWait(t, srv.pid, syscall.SIGKILL, proctest.WaitExited)
	start := time.Now()
	err = s.Put(ctx, "k", strings.NewReader("x"), 1)
	if err == nil {
		t.Fatal("Put succeeded with the server killed")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Put took %v with the server killed", took)
	}
	t.Logf("Put with the server killed: %v", err)
	// Canceling ctx ends a call at once, backoff or not.
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := s.Stat(cctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stat with a 100 ms ctx = %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Stat with a 100 ms ctx took %v", took)
	}
}

// waitClosedConns waits until no TCP socket on the server's port (endpoint
// is host:port) is in CLOSE_WAIT: closed by the client, not yet by the
// server. /proc/net/tcp{,6} lists them all, those still in the listening
// socket's accept queue too, which the server has not yet seen. A server
// that keeps such sockets for more than 30 s gets them logged, and the
// test goes on: that is the server's business, not a failure of the store.
func waitClosedConns(t *testing.T, endpoint string) {
	t.Helper()
	_, p, err := net.SplitHostPort(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	first := -1
	for {
		n, err := closeWaitSockets(uint16(port))
		if err != nil {
			t.Fatal(err)
		}
		if first < 0 {
			first = n
		}
		if n == 0 {
			t.Logf("the server closed its %d connections in CLOSE_WAIT in %v", first, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Logf("the server still holds %d connections in CLOSE_WAIT after 30 s", n)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closeWaitSockets counts the TCP sockets with local port port in
// CLOSE_WAIT.
func closeWaitSockets(port uint16) (int, error) {
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6
		}
		if err != nil {
			return 0, err
		}
		// proc_net_tcp(5): sl local_address rem_address st ..., the
		// addresses as hex IP:PORT.
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "08" { // 08: TCP_CLOSE_WAIT
				n++
			}
		}
	}
	return n, nil
}

// signalWait sends sig to the server and waits until it has taken effect
// (wait is proctest.WaitStopped or WaitExited).
func signalWait(t *testing.T, pid int, sig syscall.Signal, wait func(testing.TB, int, time.Duration)) *os.Process {
	t.Helper()
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(sig); err != nil {
		t.Fatal(err)
	}
	wait(t, pid, 20*time.Second)
	return proc
}

func getAll(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
