// Command smtp benchmarks `cairn serve`'s SMTP receiver against Postfix's
// smtp-sink, which discards every message: the same smtp-source load
// against each, in one run, several times, and the medians. DESIGN.md's
// target is a Cairn message rate at least half of smtp-sink's with the
// filesystem store, durable.
//
//	scripts/postfix.sh install        # smtp-source, smtp-sink (root, Debian)
//	go run ./bench/smtp               # -n 20000 -sessions 20 -size 10240 -runs 3
//	go run ./bench/smtp -n 5000 -runs 1 -cpuprofile cairn.pprof   # then: go tool pprof -top cairn.pprof
//	go run ./bench/smtp -n 5000 -runs 1 -wall                     # where the group commit waits
//	go run ./bench/smtp -reuse        # one connection a session (smtp-source -d), not one a message
//
// It builds the cairn binary, and for each run starts smtp-sink and then a
// fresh `cairn serve` (embedded default but for the data folder and the
// port: filesystem store, every message fsync'd before its 250, the
// per-message log line on) on free 127.0.0.1 ports, times
// `smtp-source -s 20 -m 20000 -l 10240` against each, and records the CPU
// time of the receiver and of smtp-source. Client and server share the
// machine's cores, so the CPU figures say where the time goes.
//
// -cpuprofile and -wall build cairn with one extra file (go build -overlay;
// nothing in cmd/cairn changes) for the first run: a CPU profile of the
// whole serve process, and a wall-clock sample of where the archive's group
// commit (segment stage, index stage) spends its time; both print the
// archive's group-commit counters (batches, deliveries per batch, time per
// stage).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 20000, "messages per load (smtp-source -m)")
	sessions := flag.Int("sessions", 20, "parallel sessions (smtp-source -s)")
	size := flag.Int("size", 10240, "message body bytes (smtp-source -l)")
	runs := flag.Int("runs", 3, "runs of each measurement (the median is reported)")
	dir := flag.String("dir", "", "folder for the archives (default: a temp folder; it is the filesystem measured)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of cairn serve during the first run's load to this file")
	wall := flag.Bool("wall", false, "sample where the group commit's two stages spend their wall time during the first run (slows serve down)")
	reuse := flag.Bool("reuse", false, "send every session's messages over one connection (smtp-source -d), as journaling MTAs with connection caching do; the default opens a connection a message")
	prefill := flag.Int("prefill", 0, "archive this many messages first (the same smtp-source load, once), and measure each cairn run on a copy of that archive")
	flag.Parse()
	instrumented := *cpuprofile != "" || *wall

	for _, tool := range []string{"smtp-source", "smtp-sink"} {
		if _, err := exec.LookPath(tool); err != nil {
			fail(fmt.Errorf("%s not found: run scripts/postfix.sh install", tool))
		}
	}
	work, err := os.MkdirTemp(*dir, "cairn-bench-smtp")
	check(err)
	workDir = work
	defer os.RemoveAll(work)
	bin := buildCairn(work, instrumented)

	source := []string{"smtp-source", "-s", strconv.Itoa(*sessions), "-m", strconv.Itoa(*n), "-l", strconv.Itoa(*size),
		"-f", "a@example.com", "-t", "b@example.com"}
	if *reuse {
		source = slices.Insert(source, 1, "-d")
	}
	fmt.Fprintf(os.Stderr, "load: %s ADDR\n", strings.Join(source, " "))

	var filled string
	if *prefill > 0 {
		filled = prefillArchive(bin, work, source, *prefill)
	}

	var sinkRates, sinkCPU, sinkShare, cairnRates, cairnCPU, sourceCPUSink, sourceCPUCairn, cpuShare, acks, written, device []float64
	for r := 0; r < *runs; r++ {
		// smtp-sink first: it is the ceiling of any receiver here.
		sr := sinkRun(source)
		rate := sr.rate
		sinkRates = append(sinkRates, rate)
		sinkCPU = append(sinkCPU, sr.sinkCPUPerMsg)
		sinkShare = append(sinkShare, sr.busy)
		sourceCPUSink = append(sourceCPUSink, sr.sourceCPUPerMsg)

		var in *instrument
		if r == 0 && instrumented {
			in = &instrument{cpuprofile: *cpuprofile, wall: *wall}
		}
		res := cairnRun(bin, work, r, source, *n, in, filled)
		cairnRates = append(cairnRates, res.rate)
		cairnCPU = append(cairnCPU, res.serveCPUPerMsg)
		sourceCPUCairn = append(sourceCPUCairn, res.sourceCPUPerMsg)
		cpuShare = append(cpuShare, res.busy)
		fmt.Fprintf(os.Stderr, "run %d: smtp-sink %.0f msgs/s (%.0f µs of smtp-sink CPU per message, machine %.0f%% busy); cairn serve %.0f msgs/s (%.2fx), %.0f µs of serve CPU per message, machine %.0f%% busy (%.0f%% counting the kernel's threads); end of DATA to 250 %s; %.1f KB written per message (%s reached the device)\n",
			r+1, rate, sr.sinkCPUPerMsg, 100*sr.busy, res.rate, res.rate/rate, res.serveCPUPerMsg, 100*res.busy, 100*res.machineBusy, res.toAck, res.writtenPerMsg/1e3, kb(res.devicePerMsg))
		acks = append(acks, res.toAck.mean)
		written = append(written, res.writtenPerMsg)
		device = append(device, res.devicePerMsg)
	}

	sink, cairn := med(sinkRates), med(cairnRates)
	fmt.Printf("\n`%s` on 127.0.0.1, %d runs, medians (GOMAXPROCS %d, %d CPUs):\n\n", strings.Join(source, " "), *runs, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("| receiver | msgs/s | MB/s | receiver CPU per message | smtp-source CPU per message |\n|---|---|---|---|---|\n")
	fmt.Printf("| Postfix smtp-sink (discards) | %.0f | %.1f | %.0f µs | %.0f µs |\n", sink, sink*float64(*size)/1e6, med(sinkCPU), med(sourceCPUSink))
	label := "cairn serve, fs store, durable"
	if *prefill > 0 {
		label += fmt.Sprintf(", archive already holding %d messages", *prefill)
	}
	fmt.Printf("| **%s** | **%.0f** | %.1f | %.0f µs | %.0f µs |\n", label, cairn, cairn*float64(*size)/1e6, med(cairnCPU), med(sourceCPUCairn))
	fmt.Printf("\nRatio cairn / smtp-sink: **%.2f** (goal: at least 0.50). The machine's CPUs were %.0f%% busy during the cairn runs (serve + smtp-source), %.0f%% during the smtp-sink runs (smtp-sink + smtp-source).\n",
		cairn/sink, 100*med(cpuShare), 100*med(sinkShare))
	fmt.Printf("Cairn's end of DATA to 250: %.2f ms on average; serve wrote %.1f KB per message by /proc/PID/io, and %s a message reached the disk device (medians of the runs).\n", med(acks)/1e3, med(written)/1e3, kb(med(device)))
	if *cpuprofile != "" {
		fmt.Printf("CPU profile of cairn serve (run 1): %s\n", *cpuprofile)
	}
	if instrumented {
		fmt.Printf("Run 1 used an instrumented build (-cpuprofile, -wall): its figures are slower than the others'.\n")
	}
}

// instrument says what the instrumented build records in one run.
type instrument struct {
	cpuprofile string
	wall       bool
}

// pprofOverlay is added to package main of cmd/cairn for -cpuprofile and
// -wall: from process start until SIGUSR1 it profiles the CPU and samples
// the group commit's goroutines; then it writes the profile, prints the
// wall-time samples and the archive's group-commit counters to stderr,
// and creates the marker file $CAIRN_BENCH_DONE.
const pprofOverlay = `package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"
)

// benchDeps is the running serve's archive, for its group-commit counters.
var benchDeps *deps

func init() {
	done := os.Getenv("CAIRN_BENCH_DONE")
	if done == "" {
		return
	}
	registerService("bench", func(_ context.Context, d *deps) (service, error) {
		benchDeps = d
		return nil, nil
	})
	var f *os.File
	if path := os.Getenv("CAIRN_BENCH_CPUPROFILE"); path != "" {
		var err error
		if f, err = os.Create(path); err != nil {
			panic(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			panic(err)
		}
	}
	stop := make(chan struct{})
	walls := make(chan string, 1)
	if os.Getenv("CAIRN_BENCH_WALL") != "" {
		go sampleWall(stop, walls)
	} else {
		walls <- ""
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	go func() {
		<-c
		if f != nil {
			pprof.StopCPUProfile()
			f.Close()
		}
		close(stop)
		fmt.Fprint(os.Stderr, <-walls)
		st := benchDeps.archive.Stats()
		fmt.Fprintf(os.Stderr, "bench-commit-stats batches=%d entries=%d segment_ns=%d index_ns=%d index_commits=%d\n",
			st.Batches, st.Entries, st.SegmentTime.Nanoseconds(), st.IndexTime.Nanoseconds(), st.IndexCommits)
		os.WriteFile(done, nil, 0o600)
	}()
}

// sampleWall is a wall-clock profile of the group commit's two stages:
// every 10 ms it reads every goroutine's stack and counts where the
// goroutines running commitLoop and indexLoop are (on CPU or blocked).
// Reading every stack stops the world, so it slows serve down.
func sampleWall(stop chan struct{}, out chan string) {
	counts := map[string]map[string]int{}
	total := map[string]int{}
	buf := make([]byte, 8<<20)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			out <- wallReport(counts, total)
			return
		case <-t.C:
		}
		n := runtime.Stack(buf, true)
		for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
			stage := ""
			switch {
			case bytes.Contains(g, []byte("archive.(*Store).commitLoop")):
				stage = "segment stage (commitLoop)"
			case bytes.Contains(g, []byte("archive.(*Store).indexLoop")):
				stage = "index stage (indexLoop)"
			default:
				continue
			}
			if counts[stage] == nil {
				counts[stage] = map[string]int{}
			}
			counts[stage][site(string(g))]++
			total[stage]++
		}
	}
}

// site names where a goroutine is: its innermost Cairn frame, the
// innermost frame of any other package below it, and whether it is idle.
func site(g string) string {
	lines := strings.Split(g, "\n")
	state := ""
	if i := strings.Index(lines[0], "["); i >= 0 {
		state = strings.TrimSuffix(lines[0][i+1:], "]:")
		if j := strings.Index(state, ","); j >= 0 {
			state = state[:j]
		}
	}
	var inner, cairn string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "\t") || l == "" {
			continue
		}
		fn := l
		if i := strings.LastIndex(fn, "("); i > 0 && strings.HasSuffix(fn, ")") {
			fn = fn[:i]
		}
		fn = fn[strings.LastIndex(fn, "/")+1:]
		if inner == "" && !strings.HasPrefix(fn, "runtime.") && !strings.HasPrefix(fn, "internal/") {
			inner = fn
		}
		if strings.Contains(l, "cairn-archive/cairn/") {
			cairn = fn
			break
		}
	}
	if inner == cairn {
		inner = ""
	}
	return strings.TrimSpace(cairn + " > " + inner + " [" + state + "]")
}

func wallReport(counts map[string]map[string]int, total map[string]int) string {
	var b strings.Builder
	for stage, m := range counts {
		type kv struct {
			k string
			n int
		}
		var l []kv
		for k, n := range m {
			l = append(l, kv{k, n})
		}
		sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n })
		fmt.Fprintf(&b, "bench-wall %s, %d samples every 10 ms:\n", stage, total[stage])
		for i, e := range l {
			if i == 12 {
				break
			}
			fmt.Fprintf(&b, "bench-wall   %5.1f%%  %s\n", 100*float64(e.n)/float64(total[stage]), e.k)
		}
	}
	return b.String()
}
`

func buildCairn(work string, profiling bool) string {
	root := repoRoot()
	bin := filepath.Join(work, "cairn")
	args := []string{"build", "-o", bin}
	if profiling {
		src := filepath.Join(work, "zz_bench_pprof.go")
		check(os.WriteFile(src, []byte(pprofOverlay), 0o600))
		ov, _ := json.Marshal(map[string]map[string]string{"Replace": {filepath.Join(root, "cmd", "cairn", "zz_bench_pprof.go"): src}})
		ovPath := filepath.Join(work, "overlay.json")
		check(os.WriteFile(ovPath, ov, 0o600))
		args = append(args, "-overlay", ovPath)
	}
	cmd := exec.Command("go", append(args, "./cmd/cairn")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fail(fmt.Errorf("go build ./cmd/cairn: %v\n%s", err, out))
	}
	return bin
}

func repoRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	check(err)
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		fail(errors.New("run inside the cairn module"))
	}
	return filepath.Dir(mod)
}

// runSource runs smtp-source against addr and returns its wall time and
// its own CPU time. Any output means a reply other than 2xx: the run is void.
func runSource(source []string, addr string) (time.Duration, time.Duration) {
	cmd := exec.Command(source[0], append(source[1:], addr)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil || len(out) > 0 {
		fail(fmt.Errorf("smtp-source against %s: %v\n%s", addr, err, out))
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// proc is a server this benchmark started; fail stops every live one.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

var live []*proc

func start(cmd *exec.Cmd) *proc {
	check(cmd.Start())
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	live = append(live, p)
	return p
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Kill()
	}
	<-p.exited
}

func stopAll() {
	for _, p := range live {
		p.kill()
	}
	live = nil
}

// sinkResult is one smtp-sink run.
type sinkResult struct {
	rate            float64
	sinkCPUPerMsg   float64 // µs
	sourceCPUPerMsg float64 // µs
	busy            float64 // (smtp-sink + smtp-source CPU) / (wall × CPUs)
}

func sinkRun(source []string) sinkResult {
	addr := freeAddr()
	sink := start(exec.Command("smtp-sink", "-u", "nobody", addr, "256"))
	defer sink.kill()
	waitListen(addr, sink)
	n := messages(source)
	cpu0 := procCPU(sink.cmd.Process.Pid)
	d, cpu := runSource(source, addr)
	sinkCPU := procCPU(sink.cmd.Process.Pid) - cpu0
	return sinkResult{
		rate:            float64(n) / d.Seconds(),
		sinkCPUPerMsg:   float64(sinkCPU.Microseconds()) / float64(n),
		sourceCPUPerMsg: float64(cpu.Microseconds()) / float64(n),
		busy:            (sinkCPU + cpu).Seconds() / (d.Seconds() * float64(runtime.NumCPU())),
	}
}

type cairnResult struct {
	rate            float64
	serveCPUPerMsg  float64 // µs
	sourceCPUPerMsg float64 // µs
	busy            float64 // (serve + smtp-source CPU) / (wall × CPUs)
	machineBusy     float64 // the whole machine's, kernel threads included (/proc/stat)
	writtenPerMsg   float64 // bytes serve had written to disk (/proc/PID/io), per message
	devicePerMsg    float64 // bytes written to the data folder's block device (/sys/dev/block), per message; -1 if unknown
	toAck           ackStats
}

// startServe starts cairn serve on the data folder d/data (the embedded
// default, with the SMTP receiver on a free port), with env added to its
// environment, and waits until it listens. It returns the process, the
// SMTP address and serve's log file.
func startServe(bin, d string, env []string) (*proc, string, string) {
	addr := freeAddr()
	check(os.WriteFile(filepath.Join(d, "cairn.yaml"), serveConfig(bin, filepath.Join(d, "data"), addr), 0o600))
	logPath := filepath.Join(d, "serve.log")
	logf, err := os.Create(logPath)
	check(err)
	defer logf.Close() // the child has its own descriptor
	serve := exec.Command(bin, "--config", filepath.Join(d, "cairn.yaml"), "serve")
	serve.Dir = d
	serve.Stdout, serve.Stderr = logf, logf
	serve.Env = append(cleanEnv(), env...)
	p := start(serve)
	waitLog(logPath, `msg="smtp listening"`, p)
	return p, addr, logPath
}

// stopServe stops serve with SIGTERM and fails the benchmark if it does
// not stop within a minute or exits with an error.
func stopServe(p *proc, logPath string) {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		fail(fmt.Errorf("cairn serve did not stop within a minute of SIGTERM"))
	}
	if p.err != nil {
		fail(fmt.Errorf("cairn serve: %v:\n%s", p.err, tailFile(logPath)))
	}
}

// prefillArchive archives count messages with the measured load's
// smtp-source options in a serve of its own, stops it, and returns its
// data folder, which each run then copies.
func prefillArchive(bin, work string, source []string, count int) string {
	d := filepath.Join(work, "prefill")
	check(os.MkdirAll(d, 0o700))
	p, addr, logPath := startServe(bin, d, nil)
	defer p.kill()
	fill := slices.Clone(source)
	for i := range fill {
		if fill[i] == "-m" {
			fill[i+1] = strconv.Itoa(count)
		}
	}
	t0 := time.Now()
	runSource(fill, addr)
	fmt.Fprintf(os.Stderr, "prefill: %d messages archived in %.0f s\n", count, time.Since(t0).Seconds())
	stopServe(p, logPath)
	return filepath.Join(d, "data")
}

func cairnRun(bin, work string, run int, source []string, n int, in *instrument, filled string) cairnResult {
	d := filepath.Join(work, fmt.Sprintf("run%d", run))
	check(os.MkdirAll(d, 0o700))
	if filled != "" {
		// A copy of the prefilled archive, its writes flushed before the
		// load so that their writeback is not measured.
		if out, err := exec.Command("cp", "-a", filled, filepath.Join(d, "data")).CombinedOutput(); err != nil {
			fail(fmt.Errorf("copy the prefilled archive: %v: %s", err, out))
		}
		syscall.Sync()
		time.Sleep(2 * time.Second)
	}
	done := filepath.Join(d, "bench.done")
	var env []string
	if in != nil {
		env = append(env, "CAIRN_BENCH_DONE="+done)
		if in.cpuprofile != "" {
			abs, err := filepath.Abs(in.cpuprofile)
			check(err)
			env = append(env, "CAIRN_BENCH_CPUPROFILE="+abs)
		}
		if in.wall {
			env = append(env, "CAIRN_BENCH_WALL=1")
		}
	}
	p, addr, logPath := startServe(bin, d, env)
	defer p.kill()
	serve := p.cmd

	dev0 := deviceWritten(d)
	cpu0, io0, m0 := procCPU(serve.Process.Pid), procWritten(serve.Process.Pid), machineCPU()
	wall, srcCPU := runSource(source, addr)
	serveCPU, written := procCPU(serve.Process.Pid)-cpu0, procWritten(serve.Process.Pid)-io0
	device := float64(-1)
	if dev0 >= 0 {
		device = float64(deviceWritten(d)-dev0) / float64(n)
	}
	machine := machineCPU().busySince(m0)
	if in != nil {
		serve.Process.Signal(syscall.SIGUSR1)
		for i := 0; i < 200; i++ {
			if _, err := os.Stat(done); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		logb, _ := os.ReadFile(logPath)
		var batches, entries, segNS, idxNS, idxCommits int64
		if i := bytes.Index(logb, []byte("bench-commit-stats ")); i >= 0 {
			fmt.Sscanf(string(logb[i:]), "bench-commit-stats batches=%d entries=%d segment_ns=%d index_ns=%d index_commits=%d", &batches, &entries, &segNS, &idxNS, &idxCommits)
		}
		for _, l := range strings.Split(string(logb), "\n") {
			if strings.HasPrefix(l, "bench-wall ") {
				fmt.Fprintln(os.Stderr, strings.TrimPrefix(l, "bench-wall "))
			}
		}
		if batches > 0 && idxCommits > 0 {
			fmt.Fprintf(os.Stderr, "group commit: %d batches, %.1f deliveries per batch, %.2f ms per batch making objects durable and writing the segment; %d index transactions, %.1f deliveries per transaction, %.2f ms per transaction (waiting for batches included)\n",
				batches, float64(entries)/float64(batches), float64(segNS)/float64(batches)/1e6,
				idxCommits, float64(entries)/float64(idxCommits), float64(idxNS)/float64(idxCommits)/1e6)
		}
	}
	stopServe(p, logPath)
	// Every 250 is an archived message with its log line.
	logb, _ := os.ReadFile(logPath)
	if got := bytes.Count(logb, []byte(`msg="smtp: archived"`)); got != n {
		fail(fmt.Errorf("cairn serve logged %d archived messages, smtp-source sent %d", got, n))
	}
	return cairnResult{
		toAck:           ackTimes(logb),
		writtenPerMsg:   float64(written) / float64(n),
		devicePerMsg:    device,
		machineBusy:     machine,
		rate:            float64(n) / wall.Seconds(),
		serveCPUPerMsg:  float64(serveCPU.Microseconds()) / float64(n),
		sourceCPUPerMsg: float64(srcCPU.Microseconds()) / float64(n),
		busy:            (serveCPU + srcCPU).Seconds() / (wall.Seconds() * float64(runtime.NumCPU())),
	}
}

// serveConfig is the embedded default (cairn config example) with the data
// folder and the SMTP port set, and every other service that has an
// "enabled" switch (IMAP view, harvester, ...) off: they are not measured,
// and their default ports may be taken.
func serveConfig(bin, data, smtpAddr string) []byte {
	out, err := exec.Command(bin, "config", "example").Output()
	check(err)
	var c map[string]any
	check(yaml.Unmarshal(out, &c))
	for name, v := range c {
		if sec, ok := v.(map[string]any); ok && name != "smtp" {
			if _, ok := sec["enabled"]; ok {
				sec["enabled"] = false
			}
		}
	}
	c["data_dir"] = data
	smtp := c["smtp"].(map[string]any)
	smtp["listen"] = smtpAddr
	smtp["hostname"] = "bench.cairn.test"
	b, err := yaml.Marshal(c)
	check(err)
	return b
}

// procCPU is a process's user+system CPU time from /proc (clock ticks).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

// kb formats bytes a message as KB, or "?" when unknown (negative).
func kb(b float64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f KB", b/1e3)
}

// deviceWritten is the bytes written to the block device that holds dir
// (/sys/dev/block/MAJ:MIN/stat, sectors of 512 bytes), or -1. Unlike
// /proc/PID/io it counts a page once when it reaches the disk, however
// often it was dirtied again before (SQLite rewrites its WAL from the
// start after each checkpoint), and it counts every process's writes:
// during a load, serve's.
func deviceWritten(dir string) int64 {
	var st syscall.Stat_t
	if syscall.Stat(dir, &st) != nil {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/stat", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) < 7 {
		return -1
	}
	sectors, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil {
		return -1
	}
	return sectors * 512
}

// procWritten is the bytes process pid caused to be written to storage
// (write_bytes of /proc/PID/io): the message objects, and every page the
// SQLite databases wrote to their WALs and, at checkpoints, to themselves.
func procWritten(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	fail(fmt.Errorf("/proc/%d/io has no write_bytes", pid))
	return 0
}

// cpuTimes is the machine's CPU time from /proc/stat, in USER_HZ ticks.
type cpuTimes struct{ busy, total int64 }

func machineCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	check(err)
	line, _, _ := strings.Cut(string(b), "\n")
	var t cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
	}
	return t
}

// busySince is the share of the machine's CPU time that was busy since t0:
// serve and smtp-source, and also the kernel's threads (writeback, the
// ext4 journal, softirqs) that no process is charged for.
func (t cpuTimes) busySince(t0 cpuTimes) float64 {
	if t.total == t0.total {
		return 0
	}
	return float64(t.busy-t0.busy) / float64(t.total-t0.total)
}

// ackStats is the distribution of serve's per-message "latency" (from the
// end of DATA to the 250, through the group commit), in µs.
type ackStats struct{ mean, p50, p90, p99 float64 }

func (a ackStats) String() string {
	return fmt.Sprintf("mean %.2f ms (p50 %.2f, p90 %.2f, p99 %.2f)", a.mean/1e3, a.p50/1e3, a.p90/1e3, a.p99/1e3)
}

func ackTimes(log []byte) ackStats {
	var us []float64
	for _, l := range strings.Split(string(log), "\n") {
		if !strings.Contains(l, `msg="smtp: archived"`) {
			continue
		}
		_, v, ok := strings.Cut(l, " latency=")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, " ")
		if d, err := time.ParseDuration(v); err == nil {
			us = append(us, float64(d.Nanoseconds())/1e3)
		}
	}
	if len(us) == 0 {
		return ackStats{}
	}
	slices.Sort(us)
	var sum float64
	for _, v := range us {
		sum += v
	}
	q := func(p float64) float64 { return us[min(len(us)-1, int(p*float64(len(us))))] }
	return ackStats{mean: sum / float64(len(us)), p50: q(0.5), p90: q(0.9), p99: q(0.99)}
}

func messages(source []string) int {
	i := slices.Index(source, "-m")
	n, _ := strconv.Atoi(source[i+1])
	return n
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			out = append(out, kv)
		}
	}
	return out
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer l.Close()
	return l.Addr().String()
}

func waitListen(addr string, p *proc) {
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			// Say goodbye properly, so the receiver sees no broken session.
			r := bufio.NewReader(c)
			r.ReadString('\n')
			fmt.Fprintf(c, "QUIT\r\n")
			r.ReadString('\n')
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail(fmt.Errorf("%s did not listen on %s", p.cmd.Path, addr))
}

func waitLog(path, marker string, p *proc) {
	for i := 0; i < 1200 && p.running(); i++ {
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(marker)) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail(fmt.Errorf("cairn serve did not start:\n%s", tailFile(path)))
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

func med(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

var workDir string

// fail stops every server started and exits.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/smtp:", err)
	stopAll()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(1)
}
