package cpusched

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// inChild runs the calling test again in a process of its own and
// reports whether this is that process: scheduling policies are
// process-wide state that each test must start without.
func inChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv("CPUSCHED_CHILD") == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "CPUSCHED_CHILD="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("%s", out)
	}
	t.Logf("%s", out)
	return false
}

// policies returns the policy of every thread of the process by tid.
func policies(t *testing.T) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		p, err := Policy(tid)
		if err != nil {
			continue // exited meanwhile
		}
		out[tid] = p
	}
	return out
}

// lockedThreads starts n goroutines that each hold an OS thread of their
// own, so that the runtime must start new threads; release ends them.
func lockedThreads(n int) (tids []int, release func()) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ch := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ch <- unix.Gettid()
			<-stop
		}()
	}
	for range n {
		tids = append(tids, <-ch)
	}
	return tids, func() { close(stop); wg.Wait() }
}

func TestBatchMovesEveryThreadAndNewOnesInherit(t *testing.T) {
	if !inChild(t) {
		return
	}
	// Threads that exist before the call, one of them with a nice value
	// of its own.
	before, release := lockedThreads(4)
	defer release()
	if err := unix.Setpriority(unix.PRIO_PROCESS, before[0], 5); err != nil {
		t.Fatal(err)
	}
	if err := Batch(); errors.Is(err, unix.EPERM) {
		t.Skipf("this environment refuses sched_setattr (a seccomp profile?): %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	for tid, p := range policies(t) {
		if p != "batch" {
			t.Errorf("thread %d runs under %s after Batch", tid, p)
		}
	}
	for _, tid := range before {
		if p, err := Policy(tid); err != nil || p != "batch" {
			t.Errorf("thread %d started before Batch: %q, %v; want batch", tid, p, err)
		}
	}
	if attr, err := unix.SchedGetAttr(before[0], 0); err != nil || attr.Nice != 5 {
		t.Errorf("thread with nice 5 before Batch: %+v, %v after it", attr, err)
	}
	// Threads the runtime starts afterwards inherit it.
	after, release2 := lockedThreads(4)
	defer release2()
	for _, tid := range after {
		if p, err := Policy(tid); err != nil || p != "batch" {
			t.Errorf("thread %d started after Batch: %q, %v; want batch", tid, p, err)
		}
	}
}

func TestBatchLeavesOtherPoliciesAlone(t *testing.T) {
	if !inChild(t) {
		return
	}
	// A thread an operator put under SCHED_IDLE stays there.
	done := make(chan struct{})
	res := make(chan error, 1)
	var tid int
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid = unix.Gettid()
		attr, err := unix.SchedGetAttr(0, 0)
		if err == nil {
			attr.Policy = unix.SCHED_IDLE
			err = unix.SchedSetAttr(0, attr, 0)
		}
		res <- err
		close(ready)
		<-done
		// The runtime would otherwise reuse this thread, idle, for others.
		runtime.Goexit()
	}()
	<-ready
	if err := <-res; err != nil {
		t.Skipf("cannot set SCHED_IDLE here: %v", err)
	}
	defer close(done)
	if err := Batch(); err != nil {
		t.Fatal(err)
	}
	if p, err := Policy(tid); err != nil || p != "idle" {
		t.Errorf("SCHED_IDLE thread is %q, %v after Batch; want idle", p, err)
	}
}
