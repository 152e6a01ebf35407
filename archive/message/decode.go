package message

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrUnknownEncoding is wrapped by DecodedReader for a
// Content-Transfer-Encoding it cannot undo. The IMAP view answers FETCH
// BINARY with the UNKNOWN-CTE response code for it (RFC 3516 §4.3,
// RFC 9051 §7.1).
var ErrUnknownEncoding = errors.New("message: unknown content-transfer-encoding")

// DecodedReader returns a reader of p's body with the Content-Transfer-
// Encoding undone (RFC 2045 §6), as FETCH BINARY serves it (RFC 3516). It
// reads from raw, which must be the message p was parsed from, and holds
// no more than a few bytes of its own.
//
// 7bit, 8bit, binary and no encoding are the identity; multipart and
// message parts always are (RFC 2045 §6.4). base64 and quoted-printable
// are decoded leniently: characters outside the base64 alphabet are
// skipped (RFC 2045 §6.8), a malformed "=" escape is kept as it is. Any
// other encoding yields an error wrapping ErrUnknownEncoding.
func (p *Part) DecodedReader(raw []byte) (io.Reader, error) {
	body := p.Body(raw)
	if p.MediaType == "multipart" || p.Message != nil {
		return bytes.NewReader(body), nil
	}
	switch p.Encoding {
	case "", "7bit", "8bit", "binary":
		return bytes.NewReader(body), nil
	case "base64":
		return &base64Reader{src: body}, nil
	case "quoted-printable":
		return &qpReader{src: body}, nil
	}
	return nil, fmt.Errorf("message: decode %q: %w", p.Encoding, ErrUnknownEncoding)
}

// base64Reader decodes base64 from src, leniently (see appendBase64).
type base64Reader struct {
	src  []byte
	pos  int
	acc  uint32 // pending sextets
	n    int    // how many
	out  [3]byte
	iout int
	nout int
}

func (r *base64Reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.iout < r.nout {
			k := copy(p[n:], r.out[r.iout:r.nout])
			r.iout += k
			n += k
			continue
		}
		if len(p)-n < 3 || r.pos >= len(r.src) {
			// Decode one quantum into r.out, then copy what fits.
			if !r.fill() {
				break
			}
			continue
		}
		// Fast path: decode straight into p while 3 bytes fit.
		for n+3 <= len(p) && r.pos < len(r.src) {
			if r.n == 0 && r.pos+4 <= len(r.src) {
				s := r.src[r.pos : r.pos+4]
				a, b, c, d := b64[s[0]], b64[s[1]], b64[s[2]], b64[s[3]]
				if a|b|c|d < 64 {
					v := uint32(a)<<18 | uint32(b)<<12 | uint32(c)<<6 | uint32(d)
					p[n], p[n+1], p[n+2] = byte(v>>16), byte(v>>8), byte(v)
					n += 3
					r.pos += 4
					continue
				}
			}
			c := r.src[r.pos]
			r.pos++
			v := b64[c]
			if v == 0xff {
				if c == '=' {
					n += len(flushQuantum(p[n:n], r.acc, r.n))
					r.acc, r.n = 0, 0
				}
				continue
			}
			r.acc = r.acc<<6 | uint32(v)
			r.n++
			if r.n == 4 {
				p[n], p[n+1], p[n+2] = byte(r.acc>>16), byte(r.acc>>8), byte(r.acc)
				n += 3
				r.acc, r.n = 0, 0
			}
		}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// fill decodes the next whole bytes into r.out: a full quantum, a partial
// one ended by "=", or the partial one left at the end. It reports false
// when nothing is left.
func (r *base64Reader) fill() bool {
	for r.pos < len(r.src) {
		c := r.src[r.pos]
		r.pos++
		v := b64[c]
		if v == 0xff {
			if c == '=' && r.n > 0 {
				r.nout = len(flushQuantum(r.out[:0], r.acc, r.n))
				r.iout, r.acc, r.n = 0, 0, 0
				if r.nout > 0 {
					return true
				}
			}
			continue
		}
		r.acc = r.acc<<6 | uint32(v)
		r.n++
		if r.n == 4 {
			r.out = [3]byte{byte(r.acc >> 16), byte(r.acc >> 8), byte(r.acc)}
			r.iout, r.nout = 0, 3
			r.acc, r.n = 0, 0
			return true
		}
	}
	r.nout = len(flushQuantum(r.out[:0], r.acc, r.n))
	r.iout, r.acc, r.n = 0, 0, 0
	return r.nout > 0
}

// qpPlain marks the bytes quoted-printable decoding copies unchanged.
var qpPlain = func() (t [256]bool) {
	for i := range t {
		t[i] = true
	}
	t['='], t[' '], t['\t'] = false, false, false
	return t
}()

// qpReader decodes quoted-printable (RFC 2045 §6.7) from src: "=XX" is a
// byte, "=" before the line end a soft line break, white space before a
// line end is dropped (rule 3). Leniency: lower-case hex is accepted and a
// malformed "=" is kept as a literal.
type qpReader struct {
	src    []byte
	pos    int
	wspEnd int // src[pos:wspEnd] is white space known not to be trailing
}

func (r *qpReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	src := r.src
	n := 0
	for n < len(p) && r.pos < len(src) {
		c := src[r.pos]
		switch c {
		case '=':
			j := r.pos + 1
			for j < len(src) && isWSP(src[j]) {
				j++
			}
			if j >= len(src) {
				r.pos = j // soft line break at the end
				continue
			}
			if src[j] == '\n' {
				r.pos = j + 1
				continue
			}
			if src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n' {
				r.pos = j + 2
				continue
			}
			if r.pos+2 < len(src) {
				if h, ok := unhex(src[r.pos+1]); ok {
					if l, ok := unhex(src[r.pos+2]); ok {
						p[n] = h<<4 | l
						n++
						r.pos += 3
						continue
					}
				}
			}
			p[n] = '='
			n++
			r.pos++
		case ' ', '\t':
			if r.pos >= r.wspEnd {
				j := r.pos
				for j < len(src) && isWSP(src[j]) {
					j++
				}
				if j >= len(src) || src[j] == '\n' || src[j] == '\r' && j+1 < len(src) && src[j+1] == '\n' {
					r.pos = j // trailing white space: dropped
					continue
				}
				r.wspEnd = j
			}
			p[n] = c
			n++
			r.pos++
		default:
			// A run of bytes that stand for themselves.
			j := r.pos + 1
			for j < len(src) && j-r.pos < len(p)-n && qpPlain[src[j]] {
				j++
			}
			n += copy(p[n:], src[r.pos:j])
			r.pos = j
		}
	}
	if n == 0 && r.pos >= len(src) {
		return 0, io.EOF
	}
	return n, nil
}
