package volume

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// A group commit's fdatasync is on every writer's path to its answer, and
// Go's ordinary system-call path costs it twice. The goroutine enters the
// call holding its P (the right to run Go code); a flush takes ~300 µs
// here, so sysmon hands the P to another thread meanwhile, and on return
// the goroutine finds its P taken and waits in the global run queue behind
// the SMTP sessions that are waiting for it. Measured with bench/smtp
// (5 alternated pairs): 249-258 against 264-302 µs of serve CPU a message,
// 1.37-1.42 against 1.49-1.62 ms to the 250, 0.44-0.46 against 0.38-0.44 ×
// smtp-sink.
//
// So the flush is made as a raw system call, which keeps the P: the
// goroutine goes on at once, and the other P keeps running everything
// else. The price is that a stop-the-world (the garbage collector's) waits
// for a flush in progress. That is harmless while flushes take
// milliseconds, not when the disk stalls: a flush slower than slowFlush
// switches to the ordinary call, which gives the P up, until a flush is
// fast again. One stall is then felt by the whole process at most once.
const slowFlush = 20 * time.Millisecond

// datasyncer makes flushes with the call that suits the disk's latest
// flush time.
type datasyncer struct {
	slow atomic.Bool
	// raw and blocking are unix.RawSyscall and unix.Fdatasync; tests
	// replace them.
	raw      func(fd int) error
	blocking func(fd int) error
	now      func() time.Time
}

func newDatasyncer() *datasyncer {
	return &datasyncer{raw: rawFdatasync, blocking: unix.Fdatasync, now: time.Now}
}

func rawFdatasync(fd int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_FDATASYNC, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

// sync flushes fd's data (fdatasync(2)).
func (d *datasyncer) sync(fd int) error {
	call := d.raw
	if d.slow.Load() {
		call = d.blocking
	}
	t0 := d.now()
	err := call(fd)
	d.slow.Store(d.now().Sub(t0) > slowFlush)
	return err
}
