package s3

import (
	"context"
	"fmt"
	"io"
)

// exactReader passes on exactly size bytes of r and fails the upload if r
// has fewer or more. It withholds the last bytes until it has checked that
// r has nothing after them, so an HTTP request carrying it never completes
// for a reader longer than announced. It is deliberately not an io.Seeker,
// so minio-go never retries a PUT on its own.
//
// Once ctx (the current attempt's) is done it gives nothing more, and never
// the last bytes: the transport then aborts the request instead of writing
// the rest of a buffered body after the cancellation, which let a server
// store a Put that had been canceled midway.
type exactReader struct {
	r    io.Reader
	size int64
	n    int64 // bytes passed on
	err  error // the reader's failure, sticky (a retry makes a new exactReader)
	ctx  context.Context
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if err := e.done(); err != nil {
		return 0, err
	}
	left := e.size - e.n
	if left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if e.n == e.size {
		if perr := e.probe(); perr != nil {
			return 0, perr // withhold the last bytes: the request stays short
		}
		if derr := e.done(); derr != nil {
			return 0, derr // canceled meanwhile: the same
		}
		return n, nil
	}
	switch {
	case err == io.EOF:
		e.err = fmt.Errorf("reader gave %d bytes, %d announced: %w", e.n, e.size, io.ErrUnexpectedEOF)
		return n, e.err
	case err != nil:
		e.err = fmt.Errorf("read after %d bytes: %w", e.n, err)
		return n, e.err
	}
	return n, nil
}

// done reports the end of the attempt; not sticky, so a retry may go on.
func (e *exactReader) done() error {
	if e.ctx == nil {
		return nil
	}
	if err := e.ctx.Err(); err != nil {
		return fmt.Errorf("upload stopped after %d bytes: %w", e.n, err)
	}
	return nil
}

// probe checks that r is at its end.
func (e *exactReader) probe() error {
	var b [1]byte
	for range 100 {
		n, err := e.r.Read(b[:])
		switch {
		case n > 0:
			e.err = fmt.Errorf("reader gave more than the %d bytes announced", e.size)
			return e.err
		case err == io.EOF:
			return nil
		case err != nil:
			e.err = fmt.Errorf("read after %d bytes: %w", e.n, err)
			return e.err
		}
	}
	e.err = fmt.Errorf("read after %d bytes: %w", e.n, io.ErrNoProgress)
	return e.err
}
