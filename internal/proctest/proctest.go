// Package proctest waits, in tests, for a signal sent to another process
// to take effect. kill(2) returns before it does: until every thread of a
// process is stopped, it may still answer a request (TestObjectStoreOutage
// saw a 250 23 ms after SIGSTOP), and until it has exited it may still
// hold its listening socket. The servers the tests stop are not their
// children (scripts/s3-server.sh starts versitygw with setsid), so they
// cannot be waited for with wait(2); /proc/PID/task says instead.
package proctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// WaitStopped returns once every thread of process pid is stopped (state
// T or t), and fails t after timeout.
func WaitStopped(t testing.TB, pid int, timeout time.Duration) {
	t.Helper()
	wait(t, pid, "Tt", "stopped", timeout)
}

// WaitExited returns once process pid has exited: every thread a zombie
// (state Z or X; a process that is not the caller's child may stay one
// until its reaper gets to it, but a zombie holds no files, and so no
// sockets) or the process gone from /proc. It fails t after timeout.
func WaitExited(t testing.TB, pid int, timeout time.Duration) {
	t.Helper()
	wait(t, pid, "ZX", "exited", timeout)
}

// wait waits until every thread of pid is in one of states (the state
// letter of /proc/PID/task/TID/stat, proc(5)). A process gone from /proc
// counts only for exited.
func wait(t testing.TB, pid int, states, what string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, seen := threadsIn(pid, states)
		if done && (len(seen) > 0 || what == "exited") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d not %s after %v: thread states %v", pid, what, timeout, seen)
		}
		time.Sleep(time.Millisecond)
	}
}

// threadsIn reports whether every thread of pid is in one of states, and
// the states seen (or why one could not be read).
func threadsIn(pid int, states string) (bool, []string) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	seen := make([]string, 0, len(tasks))
	done := true
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited meanwhile
		}
		// The state follows the command name, which is in parentheses and
		// may itself contain ") ".
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || i+2 >= len(b) {
			seen = append(seen, fmt.Sprintf("%s: %v", f, err))
			done = false
			continue
		}
		seen = append(seen, string(b[i+2]))
		done = done && strings.IndexByte(states, b[i+2]) >= 0
	}
	return done, seen
}
