//go:build integration

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

var schedPolicy = regexp.MustCompile(`(?m)^policy\s+:\s+(\d+)$`)

// policies counts serve's threads by Linux scheduling policy (0 other,
// 3 batch), from /proc/PID/task/*/sched.
func (in *instance) policies() map[string]int {
	in.t.Helper()
	in.mu.Lock()
	pid := in.cmd.Process.Pid
	in.mu.Unlock()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/sched", pid))
	if err != nil || len(tasks) == 0 {
		in.t.Fatalf("threads of serve (pid %d): %v", pid, err)
	}
	out := map[string]int{}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		m := schedPolicy.FindSubmatch(b)
		if m == nil {
			in.t.Fatalf("%s has no policy line:\n%s", f, b)
		}
		out[string(m[1])]++
	}
	return out
}

// cairn serve runs every thread under SCHED_BATCH by default (config key
// scheduler), threads started by the load included, and leaves the policy
// it was started with (this test's) alone with scheduler: inherit.
func TestServeSchedulerPolicy(t *testing.T) {
	b, err := os.ReadFile("/proc/self/sched")
	if err != nil {
		t.Skipf("no /proc/self/sched: %v", err)
	}
	m := schedPolicy.FindSubmatch(b)
	if m == nil || string(m[1]) != "0" {
		t.Skipf("this test runs under policy %q, not SCHED_OTHER: nothing to tell apart", m)
	}
	for _, tc := range []struct {
		scheduler, policy, name string
	}{{"batch", "3", "batch"}, {"inherit", "0", "other"}} {
		t.Run(tc.scheduler, func(t *testing.T) {
			in := newInstance(t, config{"scheduler": tc.scheduler})
			in.start()
			// A burst of parallel sessions makes the runtime start threads.
			res, err := smtptest.Load(withTimeout(t, time.Minute), smtptest.LoadOptions{Addr: in.smtpAddr, Sessions: 8, Messages: 64})
			if err != nil || len(res.Acked) != 64 {
				t.Fatalf("load: %d of 64 acknowledged, %v", len(res.Acked), err)
			}
			if log := in.log(); strings.Contains(log, "threads left under the policy") {
				if strings.Contains(log, "operation not permitted") {
					t.Skipf("this environment refuses sched_setattr (a seccomp profile?):\n%s", tail(log, 20))
				}
				t.Fatalf("serve could not move its threads:\n%s", tail(log, 20))
			}
			got := in.policies()
			if len(got) != 1 || got[tc.policy] == 0 {
				t.Fatalf("serve's threads by policy: %v; want all %s (%s)", got, tc.policy, tc.name)
			}
			if want := "scheduler=" + tc.name; !regexp.MustCompile(`msg="archive open".*` + want).MatchString(in.log()) {
				t.Errorf("serve's log does not say %s:\n%s", want, tail(in.log(), 20))
			}
			in.stop()
		})
	}
}
