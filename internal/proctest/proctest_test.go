package proctest

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// A real process: stopped, then killed; the waits return once each has
// taken effect.
func TestStoppedThenExited(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	WaitStopped(t, pid, 10*time.Second)
	if done, seen := threadsIn(pid, "Tt"); !done || len(seen) == 0 {
		t.Fatalf("after WaitStopped: thread states %v", seen)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: still listed, as a zombie, which counts as exited.
	WaitExited(t, pid, 10*time.Second)
	if done, seen := threadsIn(pid, "ZX"); !done || len(seen) == 0 {
		t.Fatalf("after WaitExited, before the reap: thread states %v (want a zombie)", seen)
	}
	cmd.Wait()
	WaitExited(t, pid, 10*time.Second) // gone from /proc counts too
}

// A running process is neither stopped nor exited.
func TestRunningIsNeither(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if done, seen := threadsIn(cmd.Process.Pid, "Tt"); done || len(seen) == 0 {
		t.Fatalf("a sleeping process reads as stopped: %v", seen)
	}
	if done, _ := threadsIn(cmd.Process.Pid, "ZX"); done {
		t.Fatal("a sleeping process reads as exited")
	}
}
