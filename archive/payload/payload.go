// Package payload is the format of a stored message object: the original
// bytes, compressed as a zstd seekable stream, encrypted as one age file
// under the message's own file key.
//
//	object    = age file (SPEC: age-encryption.org/v1) whose header holds the
//	            single stanza "-> cairn-key v1" and whose payload is:
//	plaintext = zstd frame{0..n} seek-table
//
// The seek table follows the zstd seekable format (SPEC:
// github.com/facebook/zstd/blob/dev/contrib/seekable_format/zstd_seekable_compression_format.md)
// without per-frame checksums (the age payload is authenticated). Each frame
// holds FrameSize bytes of the original (the last one may be shorter), so a
// reader decrypts and decompresses only the frames a byte range touches:
// age's STREAM chunks (64 KiB) are authenticated one by one, which is what
// age.DecryptReaderAt exploits. `zstd -d` decompresses the plaintext as is.
package payload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"sync"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"

	"github.com/cairn-archive/cairn/crypto"
)

// FrameSize is the number of original bytes per zstd frame.
const FrameSize = 256 << 10

const (
	skippableMagic = 0x184D2A5E // zstd skippable frame, seekable variant
	seekableMagic  = 0x8F92EAB1
	footerSize     = 9
	entrySize      = 8 // compressed size u32, decompressed size u32
	maxFrames      = 1 << 20
)

// smallObject is the largest plaintext Open reads whole into memory, in
// one read through age: four STREAM chunks. Read a frame at a time, such
// an object cost a read of the footer, one of the seek table and one a
// frame, each allocating a 64 KiB chunk buffer in age and the frame's
// bytes again here. An open message holds at most this much.
const smallObject = 256 << 10

// ErrFormat is returned (wrapped) when an object is not a valid payload.
var ErrFormat = errors.New("payload: malformed object")

// Compression is how Seal compresses a message. Either way the object is
// standard zstd frames, read by the same decoder: the choice can change at
// any time without touching what is stored.
type Compression uint8

const (
	// Fast keeps zstd's matches but stores literals as they are, without
	// Huffman coding. Measured on the generated corpus (13.5 KB a message):
	// objects 23 % larger than Compact's, encoding 1.7 times and decoding
	// about 4 times as fast (decoding Huffman literals was a third of the
	// IMAP view's CPU for a full read). The default: every read (IMAP,
	// export, verify --full, reindex) and every write is cheaper.
	Fast Compression = iota
	// Compact also Huffman-codes literals: the smallest objects.
	Compact
)

// ParseCompression reads a configured compression ("fast" or "compact").
func ParseCompression(s string) (Compression, error) {
	switch s {
	case "fast", "":
		return Fast, nil
	case "compact":
		return Compact, nil
	}
	return 0, fmt.Errorf("payload: compression %q: want fast or compact", s)
}

func (c Compression) String() string {
	if c == Compact {
		return "compact"
	}
	return "fast"
}

// EncoderOptions are the zstd encoder's options for c, for Seal and for
// benchmarks that measure zstd as the archive runs it.
func EncoderOptions(c Compression) []zstd.EOption {
	return []zstd.EOption{
		zstd.WithEncoderCRC(false),
		zstd.WithZeroFrames(true),
		// Measured on generated mail: ratio 1.68 against 1.72 for the
		// default level, at three quarters of the CPU.
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithNoEntropyCompression(c == Fast),
	}
}

var (
	encOnce [Compact + 1]sync.Once
	encs    [Compact + 1]*zstd.Encoder
	decOnce sync.Once
	dec     *zstd.Decoder
)

func encoder(c Compression) *zstd.Encoder {
	if c > Compact {
		c = Compact
	}
	encOnce[c].Do(func() {
		var err error
		opts := append(EncoderOptions(c), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))
		if encs[c], err = zstd.NewWriter(nil, opts...); err != nil {
			panic(err)
		}
	})
	return encs[c]
}

func decoder() *zstd.Decoder {
	decOnce.Do(func() {
		var err error
		dec, err = zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderMaxMemory(4*FrameSize))
		if err != nil {
			panic(err)
		}
	})
	return dec
}

// Seal writes the object for raw to dst, compressed as c says, and records
// the file key in mk.
func Seal(dst io.Writer, raw []byte, mk *crypto.MessageKey, c Compression) error {
	e := encoder(c)
	if OneWrite(len(raw)) {
		return sealSmall(dst, raw, mk, e)
	}
	w, err := mk.Encrypt(dst)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	nFrames := (len(raw) + FrameSize - 1) / FrameSize
	table := appendTableHeader(make([]byte, 0, tableSize(nFrames)), nFrames)
	buf := make([]byte, 0, zstdBound(min(len(raw), FrameSize)))
	for off := 0; off < len(raw); off += FrameSize {
		chunk := raw[off:min(off+FrameSize, len(raw))]
		buf = e.EncodeAll(chunk, buf[:0])
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		table = appendEntry(table, len(buf), len(chunk))
	}
	table = appendFooter(table, nFrames)
	if _, err := w.Write(table); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}

// tableSize is the size of the seek table of n frames.
func tableSize(n int) int { return 8 + n*entrySize + footerSize }

// appendTableHeader starts the seek table of nFrames frames: a skippable
// frame's magic and size.
func appendTableHeader(table []byte, nFrames int) []byte {
	table = binary.LittleEndian.AppendUint32(table, skippableMagic)
	return binary.LittleEndian.AppendUint32(table, uint32(nFrames*entrySize+footerSize))
}

func appendEntry(table []byte, compressed, original int) []byte {
	table = binary.LittleEndian.AppendUint32(table, uint32(compressed))
	return binary.LittleEndian.AppendUint32(table, uint32(original))
}

func appendFooter(table []byte, nFrames int) []byte {
	table = binary.LittleEndian.AppendUint32(table, uint32(nFrames))
	table = append(table, 0) // descriptor: no checksums
	return binary.LittleEndian.AppendUint32(table, seekableMagic)
}

func zstdBound(n int) int { return n + n>>8 + 64 }

// OneWrite reports whether Seal writes the object of n bytes in a single
// Write to dst (one STREAM chunk): a buffer given to Seal then needs no
// room made in advance.
func OneWrite(n int) bool { return zstdBound(n)+tableSize(1) <= chunkSize }

// Reader reads the original bytes of an object by range. It is safe for
// concurrent use; it keeps one decoded frame cached.
type Reader struct {
	plain   io.ReaderAt
	rawOff  []int64 // start of frame i in the original; rawOff[n] = size
	compOff []int64 // start of frame i in the plaintext
	size    int64
	// whole is the plaintext when it is in memory (one age chunk), in
	// wholeBuf, a buffer of smallPool.
	whole, wholeBuf []byte

	mu       sync.Mutex // guards what follows, and every use of the buffers
	closed   bool
	cacheIdx int
	cache    []byte // the decoded frame cacheIdx, a buffer of framePool
}

// Readers reuse their buffers (the object read whole, the decoded frame)
// once closed: serving a mailbox opens and closes one message after another,
// and allocating both anew for each made the garbage collector a large part
// of a read's cost.
var smallPool, framePool, sealPool sync.Pool // *[]byte

// maxPooled bounds the buffers kept for reuse.
const maxPooled = FrameSize + 1024

func getBuf(p *sync.Pool, n int) []byte {
	if b, ok := p.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n, max(n, 16<<10))
}

func putBuf(p *sync.Pool, b []byte) {
	if cap(b) > 0 && cap(b) <= maxPooled {
		p.Put(&b)
	}
}

// errClosed: the Reader was used after Close.
var errClosed = errors.New("payload: reader closed")

// Close releases the Reader's buffers for reuse; it must not be used after.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	putBuf(&framePool, r.cache)
	r.cache, r.cacheIdx = nil, -1
	if r.wholeBuf != nil {
		putBuf(&smallPool, r.wholeBuf)
	}
	r.plain, r.whole, r.wholeBuf = nil, nil, nil
	return nil
}

// Open opens an object of encryptedSize bytes read from src with mk's file
// key. Only the age header and the seek table are read here.
func Open(src io.ReaderAt, encryptedSize int64, mk *crypto.MessageKey) (*Reader, error) {
	whole, wholeBuf, err := openSmall(src, encryptedSize, mk.FileKey[:])
	return open(src, encryptedSize, mk, whole, wholeBuf, err)
}

// Buffer returns a buffer of n bytes to read an object into for
// OpenBuffer, from the pool Readers return theirs to.
func Buffer(n int) []byte { return getBuf(&smallPool, n) }

// Release returns a buffer of Buffer's that was not handed to OpenBuffer
// (nil is ignored).
func Release(buf []byte) { putBuf(&smallPool, buf) }

// OpenBuffer is Open for an object read into memory: obj, which lies in
// buf, a buffer of Buffer's. The Reader owns buf from then on (Close
// returns it to the pool): an object of one STREAM chunk is decrypted
// where it lies, without the copy Open makes. Any other object is read
// through age as Open does, and buf is left to the garbage collector.
func OpenBuffer(buf, obj []byte, mk *crypto.MessageKey) (*Reader, error) {
	whole, err := decryptSmall(obj, mk.FileKey[:])
	if errors.Is(err, errNotSmall) {
		buf = nil // obj, unchanged, is read by age, maybe after Open returns
	}
	return open(bytes.NewReader(obj), int64(len(obj)), mk, whole, buf, err)
}

// open is Open after openSmall's attempt: whole is the plaintext of a
// single-chunk object, in wholeBuf (a buffer of smallPool, which the Reader
// then owns), or err says why there is none.
func open(src io.ReaderAt, encryptedSize int64, mk *crypto.MessageKey, whole, wholeBuf []byte, err error) (*Reader, error) {
	var plain io.ReaderAt
	var plainSize int64
	// Until the Reader owns it, wholeBuf goes back to the pool on failure.
	owned := false
	defer func() {
		if !owned && wholeBuf != nil {
			putBuf(&smallPool, wholeBuf)
		}
	}()
	switch {
	case err == nil:
		plain, plainSize = bytes.NewReader(whole), int64(len(whole))
	case !errors.Is(err, errNotSmall):
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	default:
		putBuf(&smallPool, wholeBuf)
		wholeBuf = nil
		plain, plainSize, err = age.DecryptReaderAt(src, encryptedSize, mk.Identity())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		// Most messages are a few age chunks: read the plaintext once and
		// serve the footer, the seek table and the frames from memory
		// (frames decode in place). Each ReadAt into age allocates a
		// 64 KiB chunk buffer.
		if plainSize <= smallObject {
			whole = make([]byte, plainSize)
			if err := readAt(plain, whole, 0); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrFormat, err)
			}
			plain = bytes.NewReader(whole)
		} else {
			whole = nil
		}
	}
	if plainSize < 8+footerSize {
		return nil, fmt.Errorf("%w: %d plaintext bytes", ErrFormat, plainSize)
	}
	var foot [footerSize]byte
	if err := readAt(plain, foot[:], plainSize-footerSize); err != nil {
		return nil, fmt.Errorf("%w: footer: %v", ErrFormat, err)
	}
	n := int64(binary.LittleEndian.Uint32(foot[0:4]))
	if foot[4] != 0 || binary.LittleEndian.Uint32(foot[5:9]) != seekableMagic || n > maxFrames {
		return nil, fmt.Errorf("%w: bad seek table footer", ErrFormat)
	}
	tableStart := plainSize - footerSize - n*entrySize - 8
	if tableStart < 0 {
		return nil, fmt.Errorf("%w: seek table larger than the object", ErrFormat)
	}
	table := make([]byte, 8+n*entrySize)
	if err := readAt(plain, table, tableStart); err != nil {
		return nil, fmt.Errorf("%w: seek table: %v", ErrFormat, err)
	}
	if binary.LittleEndian.Uint32(table[0:4]) != skippableMagic ||
		int64(binary.LittleEndian.Uint32(table[4:8])) != n*entrySize+footerSize {
		return nil, fmt.Errorf("%w: bad seek table header", ErrFormat)
	}
	r := &Reader{plain: plain, rawOff: make([]int64, n+1), compOff: make([]int64, n+1), cacheIdx: -1}
	r.whole, r.wholeBuf = whole, wholeBuf // wholeBuf: pooled (openSmall's or OpenBuffer's) or nil
	for i := int64(0); i < n; i++ {
		e := table[8+i*entrySize:]
		c, d := int64(binary.LittleEndian.Uint32(e[0:4])), int64(binary.LittleEndian.Uint32(e[4:8]))
		if d > FrameSize || (d < FrameSize && i != n-1) {
			return nil, fmt.Errorf("%w: frame %d holds %d bytes", ErrFormat, i, d)
		}
		r.compOff[i+1] = r.compOff[i] + c
		r.rawOff[i+1] = r.rawOff[i] + d
	}
	if r.compOff[n] != tableStart {
		return nil, fmt.Errorf("%w: frames end at %d, seek table starts at %d", ErrFormat, r.compOff[n], tableStart)
	}
	r.size = r.rawOff[n]
	owned = true
	return r, nil
}

// Size is the size of the original message.
func (r *Reader) Size() int64 { return r.size }

// ReadAt reads original bytes at off (io.ReaderAt).
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("payload: negative offset")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(p) {
		if off >= r.size {
			return n, io.EOF
		}
		i := sort.Search(len(r.rawOff)-1, func(i int) bool { return r.rawOff[i+1] > off })
		frame, err := r.frame(i)
		if err != nil {
			return n, err
		}
		c := copy(p[n:], frame[off-r.rawOff[i]:])
		n += c
		off += int64(c)
	}
	return n, nil
}

// frame returns the decoded frame i, valid while r.mu is held (the caller
// holds it): the next frame and Close reuse its buffer.
func (r *Reader) frame(i int) ([]byte, error) {
	if r.closed {
		return nil, errClosed
	}
	if r.cacheIdx == i {
		return r.cache, nil
	}
	d := decoder()
	size := r.rawOff[i+1] - r.rawOff[i]
	var comp []byte
	if r.whole != nil {
		// In memory: decode in place (Open checked the frames lie within).
		comp = r.whole[r.compOff[i]:r.compOff[i+1]]
	} else {
		comp = make([]byte, r.compOff[i+1]-r.compOff[i])
		if err := readAt(r.plain, comp, r.compOff[i]); err != nil {
			return nil, fmt.Errorf("%w: frame %d: %v", ErrFormat, i, err)
		}
	}
	dst := r.cache
	if dst == nil {
		dst = getBuf(&framePool, int(size))
	}
	r.cacheIdx = -1 // its bytes are overwritten now
	out, err := d.DecodeAll(comp, dst[:0])
	if cap(out) > 0 {
		r.cache = out
	}
	if err != nil || int64(len(out)) != size {
		return nil, fmt.Errorf("%w: frame %d does not decompress to its size", ErrFormat, i)
	}
	r.cacheIdx = i
	return out, nil
}

// WriteTo writes the whole original to w, frame by frame (io.WriterTo).
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total int64
	for i := 0; i < len(r.rawOff)-1; i++ {
		f, err := r.frame(i)
		if err != nil {
			return total, err
		}
		n, err := w.Write(f)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// NewSectionReader reads n original bytes from off as a stream.
func (r *Reader) NewSectionReader(off, n int64) *io.SectionReader {
	return io.NewSectionReader(r, off, n)
}

// Bytes reads the whole original into memory; for callers that need it all.
func (r *Reader) Bytes() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(int(r.size))
	_, err := r.WriteTo(&b)
	return b.Bytes(), err
}

// readAt fills p, accepting io.EOF with a full read (io.ReaderAt allows it).
func readAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}
