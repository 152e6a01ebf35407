package crypto

import (
	"crypto/sha256"
)

// HMACSHA256 is HMAC-SHA-256 (RFC 2104) of msg under key, equal to
// crypto/hmac with sha256.New. It allocates nothing for a msg of up to 128
// bytes: every message read or written derives two keys and checks a MAC,
// and the standard library's generic HMAC and HKDF allocated 16 times for
// each derivation, a few percent of serving a message.
func HMACSHA256(key, msg []byte) [sha256.Size]byte {
	var k [sha256.BlockSize]byte
	if len(key) > len(k) {
		s := sha256.Sum256(key)
		copy(k[:], s[:])
	} else {
		copy(k[:], key)
	}
	var buf [sha256.BlockSize + 128]byte
	for i, c := range k {
		buf[i] = c ^ 0x36
	}
	var inner [sha256.Size]byte
	if len(msg) <= len(buf)-sha256.BlockSize {
		inner = sha256.Sum256(append(buf[:sha256.BlockSize], msg...))
	} else {
		h := sha256.New()
		h.Write(buf[:sha256.BlockSize])
		h.Write(msg)
		h.Sum(inner[:0])
	}
	for i, c := range k {
		buf[i] = c ^ 0x5c
	}
	copy(buf[sha256.BlockSize:], inner[:])
	return sha256.Sum256(buf[:sha256.BlockSize+sha256.Size])
}

// HKDFSHA256 is HKDF-SHA-256 (RFC 5869) with an output of 32 bytes, equal
// to crypto/hkdf.Key(sha256.New, secret, salt, info, 32). A nil salt is
// HashLen zeros, as the RFC says. It allocates nothing for an info of up to
// 127 bytes.
func HKDFSHA256(secret, salt []byte, info string) [sha256.Size]byte {
	prk := HMACSHA256(salt, secret)
	// OKM = T(1) = HMAC(PRK, info || 0x01).
	var m [128]byte
	in := append(m[:0], info...)
	in = append(in, 1)
	return HMACSHA256(prk[:], in)
}
