//go:build !linux

package cpusched

// Batch returns ErrUnsupported: SCHED_BATCH is Linux's.
func Batch() error { return ErrUnsupported }

// Policy returns ErrUnsupported.
func Policy(tid int) (string, error) { return "", ErrUnsupported }
