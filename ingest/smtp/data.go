package smtp

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
)

// errTooBig is returned when data runs past MaxMessageBytes without go-smtp
// noticing (it does for DATA; this guards BDAT and future paths).
var errTooBig = errors.New("smtp: message too big")

// budget is the memory all sessions together may hold for messages.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) acquire(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) { b.used.Add(-n) }

// lineEndings checks, across reads, that CR and LF occur only as CRLF
// (RFC 5321 §2.3.8).
type lineEndings struct {
	pendingCR bool // the previous chunk ended in CR
}

func (l *lineEndings) check(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if l.pendingCR && p[0] != '\n' {
		return errBareLineEnding
	}
	// Every LF must follow a CR.
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			break
		}
		k := i + j
		if k == 0 {
			if !l.pendingCR {
				return errBareLineEnding
			}
		} else if p[k-1] != '\r' {
			return errBareLineEnding
		}
		i = k + 1
	}
	// Every CR must precede an LF (or end this chunk).
	for i := 0; ; {
		j := bytes.IndexByte(p[i:], '\r')
		if j < 0 {
			break
		}
		k := i + j
		if k+1 < len(p) && p[k+1] != '\n' {
			return errBareLineEnding
		}
		i = k + 1
	}
	l.pendingCR = p[len(p)-1] == '\r'
	return nil
}

func (l *lineEndings) end() error {
	if l.pendingCR {
		return errBareLineEnding
	}
	return nil
}

// initialBuffer is the first allocation for a message without a SIZE hint;
// maxInitialBuffer caps what a SIZE hint can reserve before any data has
// arrived, so a client cannot hold the shared budget by announcing sizes.
const (
	initialBuffer    = 16 << 10
	maxInitialBuffer = 1 << 20
)

// Message buffers are reused (Server.buffers): a message of smtp-source's
// 10 KiB took a fresh 16 KiB buffer, a fifth of the bytes serve allocated
// a message. archive.Store keeps no reference to the bytes once Archive
// returns (ingest.Archiver). A buffer is never larger than the server's
// MaxMessageBytes; those over maxPooled are left to the collector.
const maxPooled = 256 << 10

// pooledBuffer returns an empty reused buffer of at least n bytes, or nil.
func (s *Server) pooledBuffer(n int64) []byte {
	if n > maxPooled {
		return nil
	}
	if b, ok := s.buffers.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		return (*b)[:0]
	}
	return nil
}

// putBuffer gives b back for reuse; nothing may use it afterwards.
func (s *Server) putBuffer(b []byte) {
	if cap(b) > 0 && cap(b) <= maxPooled {
		b = b[:0]
		s.buffers.Put(&b)
	}
}

// readMessage reads one message's data into memory charged to the budget.
// It returns the bytes and how much of the budget they hold; the caller
// releases that once the message is archived or refused (also on error).
func (s *Server) readMessage(r io.Reader, sizeHint int64) ([]byte, int64, error) {
	max := s.opts.MaxMessageBytes
	want := int64(initialBuffer)
	if sizeHint > 0 {
		// RFC 1870: SIZE is an estimate; leave room for trace headers.
		want = min(sizeHint+1024, maxInitialBuffer)
	}
	// go-smtp refuses DATA of MaxMessageBytes or more (it fails the read
	// past the limit before it sees the end of data), so max is enough.
	want = min(want, max)
	// The budget is charged for what the buffer holds: a reused buffer's
	// capacity, or a new one's.
	buf := s.pooledBuffer(want)
	held := int64(cap(buf))
	if buf != nil && !s.budget.acquire(held) {
		s.putBuffer(buf)
		buf = nil
	}
	if buf == nil {
		if !s.budget.acquire(want) {
			return nil, 0, errNoMemory
		}
		held = want
		buf = make([]byte, 0, want)
	}
	var le lineEndings
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= max {
				return buf, held, errTooBig
			}
			grow := min(int64(cap(buf)), max-int64(cap(buf)))
			if !s.budget.acquire(grow) {
				return buf, held, errNoMemory
			}
			held += grow
			next := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(next, buf)
			s.putBuffer(buf)
			buf = next
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		if cerr := le.check(buf[len(buf) : len(buf)+n]); cerr != nil {
			return buf, held, cerr
		}
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, held, le.end()
		}
		if err != nil {
			return buf, held, err
		}
	}
}
