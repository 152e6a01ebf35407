package cpusched

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxPasses bounds Batch's rounds over the process's threads: each round
// catches the threads created during the previous one (by a thread not
// moved yet); once every thread is moved, new ones inherit the policy.
const maxPasses = 20

// Batch moves every thread of the process that runs under the default
// policy (SCHED_OTHER) to SCHED_BATCH, keeping its nice value. Threads
// started under another policy (an operator's chrt) are left alone.
// Threads created later inherit the policy of the thread that creates
// them, so once Batch returns nil every thread the process starts is
// batch too.
func Batch() error {
	for range maxPasses {
		moved, err := pass()
		if err != nil {
			return err
		}
		if moved == 0 {
			return nil
		}
	}
	return fmt.Errorf("cpusched: threads still appearing under another policy after %d passes", maxPasses)
}

// pass moves the threads listed now and reports how many it moved.
func pass() (int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("cpusched: list threads: %w", err)
	}
	moved := 0
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // exited meanwhile
		}
		if err != nil {
			return moved, fmt.Errorf("cpusched: thread %d: %w", tid, err)
		}
		if attr.Policy != unix.SCHED_NORMAL {
			continue
		}
		attr.Policy = unix.SCHED_BATCH
		attr.Priority = 0
		attr.Flags = 0
		err = unix.SchedSetAttr(tid, attr, 0)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("cpusched: thread %d to SCHED_BATCH: %w", tid, err)
		}
		moved++
	}
	return moved, nil
}

// Policy returns the scheduling policy of thread tid (0 for the calling
// thread) by its Linux name: "other", "batch", "idle", "fifo", "rr" or
// "deadline".
func Policy(tid int) (string, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return "", err
	}
	switch attr.Policy {
	case unix.SCHED_NORMAL:
		return "other", nil
	case unix.SCHED_BATCH:
		return "batch", nil
	case unix.SCHED_IDLE:
		return "idle", nil
	case unix.SCHED_FIFO:
		return "fifo", nil
	case unix.SCHED_RR:
		return "rr", nil
	case unix.SCHED_DEADLINE:
		return "deadline", nil
	}
	return strconv.Itoa(int(attr.Policy)), nil
}
