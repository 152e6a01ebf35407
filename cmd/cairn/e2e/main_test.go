//go:build integration

package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"go.yaml.in/yaml/v3"

	"github.com/cairn-archive/cairn/internal/freeport"
)

var (
	cairnBin string
	repoRoot string
	// exampleConfig is `cairn config example` of the built binary: every
	// key the binary knows, so a config written from it stays valid as
	// sections are added to cmd/cairn.
	exampleConfig []byte
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		panic(err)
	}
	repoRoot = root
	dir, err := os.MkdirTemp("", "cairn-e2e-bin")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cairnBin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", cairnBin, "./cmd/cairn")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build cairn: %v\n%s", err, out)
		return 2
	}
	out, err := exec.Command(cairnBin, "config", "example").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cairn config example: %v\n", err)
		return 2
	}
	exampleConfig = out
	return m.Run()
}

// loadMessages is the size of the smtp-source and smtptest loads: the
// issue's 20,000 with CAIRN_E2E_LOAD=20000; 5,000 by default so the whole
// suite stays within CI's budget.
func loadMessages(t testing.TB) int {
	t.Helper()
	if s := os.Getenv("CAIRN_E2E_LOAD"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("CAIRN_E2E_LOAD=%q: want a positive number", s)
		}
		return n
	}
	return 5000
}

// freeAddr is a free 127.0.0.1 address no other server of this process
// was given.
func freeAddr(t testing.TB) string { return freeport.Addr(t) }

// instance is one archive (data folder and config) and the `cairn serve`
// currently running on it, if any.
type instance struct {
	t        *testing.T
	dir      string // temp folder: config, logs
	data     string // data_dir
	cfg      string // config file
	smtpAddr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   []string // one log file per start
}

// config is set on top of the example configuration: dotted keys
// ("smtp.journal.archive_addresses") to values.
type config map[string]any

// newInstance writes a config for a fresh archive: data under a temp
// folder, the SMTP receiver on a free port, every other service that has an
// "enabled" switch turned off (they are not under test, and their default
// ports would clash with parallel test packages).
func newInstance(t *testing.T, extra config) *instance {
	t.Helper()
	dir := t.TempDir()
	in := &instance{t: t, dir: dir, data: filepath.Join(dir, "data"), cfg: filepath.Join(dir, "cairn.yaml"), smtpAddr: freeAddr(t)}
	var c map[string]any
	if err := yaml.Unmarshal(exampleConfig, &c); err != nil {
		t.Fatalf("parse cairn config example: %v", err)
	}
	for name, v := range c {
		if sec, ok := v.(map[string]any); ok && name != "smtp" {
			if _, ok := sec["enabled"]; ok {
				sec["enabled"] = false
			}
		}
	}
	set := func(key string, v any) {
		parts := strings.Split(key, ".")
		m := c
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				t.Fatalf("config key %s: %s is not a section of `cairn config example`", key, p)
			}
			m = next
		}
		if _, ok := m[parts[len(parts)-1]]; !ok {
			t.Fatalf("config key %s is not in `cairn config example`", key)
		}
		m[parts[len(parts)-1]] = v
	}
	set("data_dir", in.data)
	set("smtp.enabled", true)
	set("smtp.listen", in.smtpAddr)
	set("smtp.hostname", "cairn.test")
	for k, v := range extra {
		set(k, v)
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in.cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.cleanup)
	return in
}

// env is the environment of every cairn process: ours, without CAIRN_*
// variables (viper would read them as config keys).
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			out = append(out, kv)
		}
	}
	return out
}

// start runs `cairn serve` and waits until its SMTP listener is up.
func (in *instance) start() {
	t := in.t
	t.Helper()
	in.mu.Lock()
	if in.cmd != nil {
		in.mu.Unlock()
		t.Fatal("cairn serve is already running")
	}
	logPath := filepath.Join(in.dir, fmt.Sprintf("serve-%d.log", len(in.logs)+1))
	in.logs = append(in.logs, logPath)
	logf, err := os.Create(logPath)
	if err != nil {
		in.mu.Unlock()
		t.Fatal(err)
	}
	cmd := exec.Command(cairnBin, "--config", in.cfg, "serve")
	cmd.Dir = in.dir
	cmd.Env = env()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		in.mu.Unlock()
		t.Fatal(err)
	}
	logf.Close()
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	in.cmd, in.exited = cmd, exited
	in.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if bytes.Contains(b, []byte(`msg="smtp listening"`)) {
			return
		}
		select {
		case <-exited:
			in.mu.Lock()
			in.cmd = nil
			in.mu.Unlock()
			t.Fatalf("cairn serve exited at start (%v):\n%s", cmd.ProcessState, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn serve did not listen within 60s:\n%s", b)
		}
	}
}

// stop ends cairn serve gracefully (SIGTERM) and fails the test unless it
// exits cleanly within a minute.
func (in *instance) stop() {
	in.t.Helper()
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-exited
		in.t.Fatalf("cairn serve did not stop within 60s of SIGTERM:\n%s", in.log())
	}
	if !cmd.ProcessState.Success() {
		in.t.Fatalf("cairn serve exited with %v:\n%s", cmd.ProcessState, in.log())
	}
}

// checkVolumesEnd checks, after a clean stop, that serve closed its object
// store: each volume file ends with its last record (encrypted bytes, a
// CRC, a signed segment's text), not with the zeros a running writer keeps
// ahead of its end.
func checkVolumesEnd(t *testing.T, in *instance) {
	t.Helper()
	vols, _ := filepath.Glob(filepath.Join(in.data, "objects", "volumes", "*.vol"))
	if len(vols) == 0 {
		t.Fatal("no volume files")
	}
	for _, v := range vols {
		b, err := os.ReadFile(v)
		if err != nil {
			t.Fatal(err)
		}
		if tail := b[max(0, len(b)-64):]; bytes.Count(tail, []byte{0}) == len(tail) {
			t.Errorf("%s (%d bytes) ends in zeros: serve did not close its object store", filepath.Base(v), len(b))
		}
	}
}

// kill9 kills cairn serve with SIGKILL and waits for it to be gone.
func (in *instance) kill9() {
	in.mu.Lock()
	cmd, exited := in.cmd, in.exited
	in.cmd = nil
	in.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

func (in *instance) cleanup() {
	in.kill9()
	if !in.t.Failed() {
		return
	}
	// The per-message lines would drown the rest: show the others.
	for i, p := range in.logs {
		b, _ := os.ReadFile(p)
		var other []string
		archived := 0
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if strings.Contains(l, `msg="smtp: archived"`) {
				archived++
			} else {
				other = append(other, l)
			}
		}
		if len(other) > 80 {
			other = append(other[:40], append([]string{fmt.Sprintf("... %d lines ...", len(other)-80)}, other[len(other)-40:]...)...)
		}
		in.t.Logf("cairn serve log, start %d (%d \"smtp: archived\" lines left out):\n%s", i+1, archived, strings.Join(other, "\n"))
	}
	if keep := os.Getenv("CAIRN_E2E_KEEP"); keep != "" {
		dst := filepath.Join(keep, strings.ReplaceAll(in.t.Name(), "/", "_"))
		if err := exec.Command("cp", "-a", in.dir, dst).Run(); err == nil {
			in.t.Logf("archive, config and logs kept in %s", dst)
		}
	}
}

// log returns the log of the latest start.
func (in *instance) log() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.logs) == 0 {
		return ""
	}
	b, _ := os.ReadFile(in.logs[len(in.logs)-1])
	return string(b)
}

// archivedLines counts the "smtp: archived" log lines of the latest start.
func (in *instance) archivedLines() int {
	return strings.Count(in.log(), `msg="smtp: archived"`)
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// cli runs a cairn command on the instance's config.
func (in *instance) cli(args ...string) (stdout, stderr []byte, code int) {
	in.t.Helper()
	cmd := exec.Command(cairnBin, append([]string{"--config", in.cfg}, args...)...)
	cmd.Dir = in.dir
	cmd.Env = env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		in.t.Fatal(err)
	}
	return out.Bytes(), errb.Bytes(), code
}

func (in *instance) mustCLI(args ...string) []byte {
	in.t.Helper()
	out, errb, code := in.cli(args...)
	if code != 0 {
		in.t.Fatalf("cairn %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, tail(string(out), 40), errb)
	}
	return out
}

// cat returns `cairn cat id`; when cat fails, the test fails and goes on
// (cat returns nil), so one unreadable message does not hide the others.
func (in *instance) cat(id string) []byte {
	in.t.Helper()
	out, errb, code := in.cli("cat", id)
	if code != 0 {
		in.t.Errorf("cairn cat %s: exit %d: %s", id, code, bytes.TrimSpace(errb))
		return nil
	}
	return out
}

// verify runs `cairn verify --full` and fails the test unless it passes; it
// returns the summary line.
func (in *instance) verify() string {
	in.t.Helper()
	out := string(in.mustCLI("verify", "--full", "--quiet"))
	if !strings.Contains(out, "verification passed") {
		in.t.Fatalf("cairn verify --full:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) >= 2 {
		return lines[len(lines)-2]
	}
	return out
}

// db opens the archive's SQLite index read-only. cairn serve may be
// writing it (WAL), so readers see committed transactions only.
func (in *instance) db() *sql.DB {
	in.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(in.data, "index.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		in.t.Fatal(err)
	}
	in.t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t testing.TB, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitCount polls q until it returns at least want, for up to d.
func waitCount(t testing.TB, db *sql.DB, want int, d time.Duration, q string, args ...any) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n := queryInt(t, db, q, args...)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitIndexed waits until the index lists ledger entry seq and returns the
// index. A 250 means the message is durable in the object store and the
// ledger; the index lists it a few milliseconds later (archive.Options.
// IndexWait), so a test that reads the index right after a reply waits here.
func (in *instance) waitIndexed(t testing.TB, seq uint64) *sql.DB {
	t.Helper()
	db := in.db()
	if waitCount(t, db, 1, 10*time.Second, `SELECT COUNT(*) FROM entries WHERE seq >= ?`, seq) < 1 {
		t.Fatalf("ledger entry %d not in the index after 10 s", seq)
	}
	return db
}

// runScript runs one of the repository's scripts and returns its stdout.
func runScript(t testing.TB, env []string, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot, "scripts", script)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/%s %s: %v\n%s%s", script, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// requirePostfix installs Postfix's programs (scripts/postfix.sh) and fails
// when they are still missing.
func requirePostfix(t testing.TB) {
	t.Helper()
	runScript(t, nil, "postfix.sh", "install")
	for _, tool := range []string{"postfix", "smtp-source", "smtp-sink"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found after scripts/postfix.sh install: %v", tool, err)
		}
	}
}

// withTimeout is a context for one test step.
func withTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
