// Package cpusched moves the whole process into a Linux scheduling policy.
//
// Go runs goroutines on a few threads that wake each other constantly: a
// goroutine made runnable wakes an idle thread to run it, a network event
// wakes the poller's thread, a group commit wakes the writers it answers.
// Under SCHED_OTHER each of those wakeups may preempt the thread that
// caused it, on the same CPU, while the other CPU idles; SCHED_BATCH tells
// the kernel the threads are throughput work, not interactive, so that a
// woken thread waits for a free CPU or the end of a time slice instead.
// Nothing else changes: the nice value, the CPU share and every limit stay
// as they were.
package cpusched

import "errors"

// ErrUnsupported is returned where the platform has no such policy.
var ErrUnsupported = errors.New("cpusched: not supported on this platform")
