package smtp

// Tests of the Cairn patches (CAIRN-PATCHES.md): each patched reader must
// give exactly what the upstream byte-at-a-time code gives, for any input
// and any split of it into reads.

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// refData is upstream's dataReader loop, unpatched.
func refData(in []byte, limit int64) ([]byte, error) {
	r := bufio.NewReader(bytes.NewReader(in))
	var out []byte
	state := 0
	const (
		stateBeginLine = iota
		stateDot
		stateDotCR
		stateCR
		stateData
		stateEOF
	)
	for state != stateEOF {
		// Upstream stops a Read once the limit's bytes are out, and the
		// next Read refuses: too large, even if the end marker follows.
		if limit > 0 && int64(len(out)) >= limit {
			return out, ErrDataTooLarge
		}
		c, err := r.ReadByte()
		if err != nil {
			return out, io.ErrUnexpectedEOF
		}
		switch state {
		case stateBeginLine:
			if c == '.' {
				state = stateDot
				continue
			}
			if c == '\r' {
				state = stateCR
				break
			}
			state = stateData
		case stateDot:
			if c == '\r' {
				state = stateDotCR
				continue
			}
			state = stateData
		case stateDotCR:
			if c == '\n' {
				state = stateEOF
				continue
			}
			state = stateData
		case stateCR:
			if c == '\n' {
				state = stateBeginLine
				break
			}
			state = stateData
		case stateData:
			if c == '\r' {
				state = stateCR
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// patchedData reads in through the patched dataReader with a small bufio
// buffer and reads of the given sizes.
func patchedData(in []byte, bufSize int, sizes []byte, limit int64) ([]byte, error) {
	dr := &dataReader{r: bufio.NewReaderSize(bytes.NewReader(in), bufSize)}
	if limit > 0 {
		dr.limited, dr.n = true, limit
	}
	var out []byte
	for i := 0; ; i++ {
		sz := 7
		if len(sizes) > 0 {
			sz = int(sizes[i%len(sizes)])%64 + 1
		}
		p := make([]byte, sz)
		n, err := dr.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func FuzzDataReaderPatch(f *testing.F) {
	for _, s := range []string{
		"hello\r\n.\r\n",
		"a\r\n..dot\r\n.\r\n",
		"bare\nlf\n.\n.\r\n",
		"x\r.\r\nsmuggle\r\n.\r\n",
		"\r\r\n.\r\r\n.\r\n",
		"no end",
		"long line without cr " + string(bytes.Repeat([]byte("z"), 300)) + "\r\n.\r\n",
	} {
		f.Add([]byte(s), uint8(16), []byte{3, 60, 1}, uint16(0))
		f.Add([]byte(s), uint8(1), []byte{0}, uint16(5))
	}
	f.Fuzz(func(t *testing.T, in []byte, buf uint8, sizes []byte, limit uint16) {
		bufSize := int(buf)%64 + 16 // bufio's minimum is 16
		want, wantErr := refData(in, int64(limit))
		got, gotErr := patchedData(in, bufSize, sizes, int64(limit))
		if wantErr == ErrDataTooLarge || gotErr == ErrDataTooLarge {
			// Both refuse; how much was read before differs by design
			// (upstream too reads up to the limit).
			if wantErr != gotErr {
				t.Fatalf("limit %d: error %v, upstream %v", limit, gotErr, wantErr)
			}
			return
		}
		if !bytes.Equal(got, want) || gotErr != wantErr {
			t.Fatalf("input %q:\n got %q, %v\nwant %q, %v", in, got, gotErr, want, wantErr)
		}
	})
}

// refLineLimit is upstream's lineLimitReader count, unpatched.
func refLineLimit(chunks [][]byte, limit int) (int, error) {
	cur, total := 0, 0
	for _, c := range chunks {
		if cur > limit {
			return total, ErrTooLongLine
		}
		for _, chr := range c {
			if chr == '\n' {
				cur = 0
			}
			cur++
			if cur > limit {
				return total, ErrTooLongLine
			}
		}
		total += len(c)
	}
	return total, nil
}

func FuzzLineLimitPatch(f *testing.F) {
	f.Add([]byte("abc\ndefgh\nij"), uint8(4), uint8(3))
	f.Add([]byte("\n\n\n"), uint8(1), uint8(1))
	f.Add([]byte("abcdef"), uint8(5), uint8(6))
	f.Fuzz(func(t *testing.T, in []byte, limit, chunk uint8) {
		lim := int(limit)%20 + 1
		cs := int(chunk)%16 + 1
		var chunks [][]byte
		for i := 0; i < len(in); i += cs {
			j := i + cs
			if j > len(in) {
				j = len(in)
			}
			chunks = append(chunks, in[i:j])
		}
		want, wantErr := refLineLimit(chunks, lim)
		r := &lineLimitReader{R: &chunkReader{chunks: chunks}, LineLimit: lim}
		total := 0
		var err error
		for {
			var n int
			p := make([]byte, cs)
			n, err = r.Read(p)
			total += n
			if err != nil {
				break
			}
		}
		if err == io.EOF {
			err = nil
		}
		if err != wantErr || (err == nil && total != want) {
			t.Fatalf("input %q limit %d chunk %d: %d, %v; upstream %d, %v", in, lim, cs, total, err, want, wantErr)
		}
	})
}

// chunkReader returns its chunks one Read each.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]
	return n, nil
}
