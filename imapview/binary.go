package imapview

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/cairn-archive/cairn/archive/message"
)

// decodedReader undoes p's Content-Transfer-Encoding while streaming the
// body from src, for FETCH BINARY (RFC 3516): the same lenient rules as
// message.Part.DecodedReader, which needs the whole body in memory, with a
// few KiB of buffer instead.
func decodedReader(src io.Reader, p *message.Part) (io.Reader, error) {
	if p.MediaType == "multipart" || p.Message != nil {
		return src, nil
	}
	switch p.Encoding {
	case "", "7bit", "8bit", "binary":
		return src, nil
	case "base64":
		return &b64Stream{src: bufio.NewReaderSize(src, 32<<10)}, nil
	case "quoted-printable":
		return &qpStream{src: bufio.NewReaderSize(src, 64<<10)}, nil
	}
	return nil, fmt.Errorf("imapview: decode %q: %w", p.Encoding, message.ErrUnknownEncoding)
}

var b64Alphabet = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alpha); i++ {
		t[alpha[i]] = byte(i)
	}
	return t
}()

// b64Stream decodes base64 leniently (RFC 2045 §6.8): bytes outside the
// alphabet are skipped, "=" ends a quantum, a partial quantum at the end
// yields the bytes it completes.
type b64Stream struct {
	src  *bufio.Reader
	acc  uint32
	n    int
	out  [3]byte
	iout int
	nout int
	eof  bool
}

func (r *b64Stream) flush() {
	switch r.n {
	case 2:
		r.out[0], r.nout = byte(r.acc>>4), 1
	case 3:
		r.out[0], r.out[1], r.nout = byte(r.acc>>10), byte(r.acc>>2), 2
	default:
		r.nout = 0
	}
	r.iout, r.acc, r.n = 0, 0, 0
}

func (r *b64Stream) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.iout < r.nout {
			k := copy(p[n:], r.out[r.iout:r.nout])
			r.iout += k
			n += k
			continue
		}
		if r.eof {
			break
		}
		c, err := r.src.ReadByte()
		if err != nil {
			if err != io.EOF {
				return n, err
			}
			r.eof = true
			r.flush()
			continue
		}
		v := b64Alphabet[c]
		if v == 0xff {
			if c == '=' {
				r.flush()
			}
			continue
		}
		r.acc = r.acc<<6 | uint32(v)
		r.n++
		if r.n == 4 {
			r.out = [3]byte{byte(r.acc >> 16), byte(r.acc >> 8), byte(r.acc)}
			r.iout, r.nout, r.acc, r.n = 0, 3, 0, 0
		}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// qpStream decodes quoted-printable a run of whole lines at a time with
// message's decoder: its rules (soft breaks, trailing white space) never
// look past a line end, so decoding line-aligned chunks equals decoding
// the whole.
type qpStream struct {
	src   *bufio.Reader
	chunk []byte
	cur   io.Reader
	done  bool
}

func (r *qpStream) Read(p []byte) (int, error) {
	for {
		if r.cur != nil {
			n, err := r.cur.Read(p)
			if n > 0 || err != io.EOF {
				return n, err
			}
			r.cur = nil
		}
		if r.done {
			return 0, io.EOF
		}
		// Up to 64 KiB ending at a line end (a longer line is cut: only
		// malformed input has one).
		r.chunk = r.chunk[:0]
		for len(r.chunk) < 64<<10 {
			line, err := r.src.ReadSlice('\n')
			r.chunk = append(r.chunk, line...)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if err != io.EOF {
					return 0, err
				}
				r.done = true
			}
			if err != nil || bytes.HasSuffix(line, []byte("\n")) && len(r.chunk) >= 32<<10 {
				break
			}
		}
		part := &message.Part{MediaType: "text", MediaSubtype: "plain", Encoding: "quoted-printable", BodyEnd: int64(len(r.chunk))}
		var err error
		if r.cur, err = part.DecodedReader(r.chunk); err != nil {
			return 0, err
		}
	}
}
