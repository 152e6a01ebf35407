package payload

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/cairn-archive/cairn/crypto"
)

// The age file of a stored message has a fixed header, written by
// crypto.MessageKey.Encrypt (SPEC: age-encryption.org/v1): the version
// line, the one stanza "-> cairn-key v1" with an empty body, and the MAC.
// For such an object whose payload is a single STREAM chunk (every
// message under 64 KiB compressed), openSmall decrypts it in place from one
// read: age.DecryptReaderAt parses the header generically and allocates a
// 64 KiB chunk buffer for every ReadAt, which was a fifth of the IMAP
// view's CPU per message served. Anything else (another header, a payload
// of several chunks) goes through age.
const cairnHeader = "age-encryption.org/v1\n-> cairn-key v1\n\n---"

const (
	headerLen  = len(cairnHeader) + 1 + 43 + 1 // " " + base64 HMAC-SHA-256 + "\n"
	nonceLen   = 16                            // payload nonce
	chunkSize  = 64 << 10                      // STREAM chunk
	smallLimit = int64(headerLen + nonceLen + chunkSize + chacha20poly1305.Overhead)
)

// macEncoding is age's: unpadded, and strict (the unused bits of the last
// character must be zero), so that one MAC has one spelling.
var macEncoding = base64.RawStdEncoding.Strict()

var errNotSmall = errors.New("payload: not a single-chunk object with the cairn header")

// openSmall returns the plaintext of a single-chunk object with the cairn
// header, read from src (encryptedSize bytes) and decrypted with fileKey,
// or errNotSmall if the object is not one (then age reads it). The header
// MAC and the chunk's tag are checked exactly as age checks them.
func openSmall(src io.ReaderAt, encryptedSize int64, fileKey []byte) (plain, buf []byte, err error) {
	if encryptedSize > smallLimit || encryptedSize < int64(headerLen+nonceLen+chacha20poly1305.Overhead) {
		return nil, nil, errNotSmall
	}
	buf = getBuf(&smallPool, int(encryptedSize))
	if err := readAt(src, buf, 0); err != nil {
		return nil, buf, err
	}
	plain, err = decryptSmall(buf, fileKey)
	return plain, buf, err
}

// headerMAC is age's header MAC for the fixed cairn header: HMAC-SHA-256
// under HKDF(file key, "header").
func headerMAC(fileKey []byte) [sha256.Size]byte {
	hk := crypto.HKDFSHA256(fileKey, nil, "header")
	return crypto.HMACSHA256(hk[:], []byte(cairnHeader))
}

// payloadAEAD is age's payload cipher: ChaCha20-Poly1305 under
// HKDF(file key, payload nonce, "payload").
func payloadAEAD(fileKey, nonce []byte) (cipher.AEAD, error) {
	pk := crypto.HKDFSHA256(fileKey, nonce, "payload")
	return chacha20poly1305.New(pk[:])
}

// lastChunk0 is the STREAM nonce of chunk 0 marked last: 11 zero bytes of
// counter, then 1.
var lastChunk0 = [chacha20poly1305.NonceSize]byte{chacha20poly1305.NonceSize - 1: 1}

// decryptSmall decrypts the object buf in place. It returns errNotSmall,
// with buf unchanged, for an object that is not a single chunk with the
// cairn header.
func decryptSmall(buf, fileKey []byte) ([]byte, error) {
	if int64(len(buf)) > smallLimit || len(buf) < headerLen+nonceLen+chacha20poly1305.Overhead {
		return nil, errNotSmall
	}
	if !bytes.HasPrefix(buf, []byte(cairnHeader+" ")) || buf[headerLen-1] != '\n' {
		return nil, errNotSmall
	}
	var mac [sha256.Size]byte
	if n, err := macEncoding.Decode(mac[:], buf[len(cairnHeader)+1:headerLen-1]); err != nil || n != len(mac) {
		return nil, errNotSmall // not age's canonical encoding: let age judge it
	}
	if sum := headerMAC(fileKey); !hmac.Equal(sum[:], mac[:]) {
		return nil, errors.New("bad header MAC")
	}
	aead, err := payloadAEAD(fileKey, buf[headerLen:headerLen+nonceLen])
	if err != nil {
		return nil, err
	}
	ct := buf[headerLen+nonceLen:]
	if len(ct) == chacha20poly1305.Overhead {
		// age writes an empty last chunk only for an empty payload, which
		// a stored object never is; let age give its verdict.
		return nil, errNotSmall
	}
	plain, err := aead.Open(ct[:0], lastChunk0[:], ct, nil)
	if err != nil {
		return nil, errors.New("failed to decrypt and authenticate payload chunk")
	}
	return plain, nil
}

// sealSmall writes the object for raw when its plaintext (at most one zstd
// frame and the seek table) fits one STREAM chunk, as age.Encrypt would
// write it with crypto.MessageKey.Encrypt's recipient, in one write:
// the cairn header and its MAC, the payload nonce, and the chunk sealed as
// the last. age's writer cost 17 µs of the ~600 of CPU that the SMTP
// receiver spends per message, most of it in allocations; this is a tenth
// of that. TestSealIsAge holds the result to age.
func sealSmall(dst io.Writer, raw []byte, mk *crypto.MessageKey, e *zstd.Encoder) error {
	pre := headerLen + nonceLen
	// The object is assembled in a pooled buffer and written out in one
	// Write, which copies it (io.Writer must not retain p): the caller's
	// buffer is then allocated once, at the object's size, and the ~10 KiB
	// of a typical message are not allocated and zeroed twice.
	buf := getBuf(&sealPool, pre+zstdBound(len(raw))+tableSize(1)+chacha20poly1305.Overhead)
	defer putBuf(&sealPool, buf)
	out := buf[:pre]
	// A fresh file key, as age draws one (16 bytes of crypto/rand); it is
	// the caller's to wrap into the key object.
	rand.Read(mk.FileKey[:])
	copy(out, cairnHeader)
	mac := headerMAC(mk.FileKey[:])
	out[len(cairnHeader)] = ' '
	macEncoding.Encode(out[len(cairnHeader)+1:headerLen-1], mac[:])
	out[headerLen-1] = '\n'
	nonce := out[headerLen:pre]
	rand.Read(nonce)

	plain, nFrames := out[pre:], 0
	if len(raw) > 0 {
		plain, nFrames = e.EncodeAll(raw, plain), 1
	}
	frame := len(plain)
	plain = appendTableHeader(plain, nFrames)
	if nFrames == 1 {
		plain = appendEntry(plain, frame, len(raw))
	}
	plain = appendFooter(plain, nFrames)

	aead, err := payloadAEAD(mk.FileKey[:], nonce)
	if err != nil {
		return err
	}
	sealed := aead.Seal(plain[:0], lastChunk0[:], plain, nil)
	// sealed is in place after out[:pre] unless the frame outgrew its
	// bound and zstd moved it; append copies it either way.
	if _, err := dst.Write(append(out[:pre], sealed...)); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	return nil
}
