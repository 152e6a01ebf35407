package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for new hashes: OWASP's first recommendation
// (19 MiB, 2 passes, 1 lane) keeps a login near 30 ms on one core here.
// SPEC: RFC 9106 §4 (parameter choice), PHC string format.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// MaxConcurrentHashes bounds the argon2id evaluations running at once.
const MaxConcurrentHashes = 4

var hashSlots = make(chan struct{}, MaxConcurrentHashes)

// ErrBadHash is wrapped for a stored hash that cannot be read.
var ErrBadHash = errors.New("auth: malformed password hash")

// HashPassword returns the PHC string of an argon2id hash of password
// under a fresh random salt:
// $argon2id$v=19$m=19456,t=2,p=1$<b64 salt>$<b64 hash>.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	hashSlots <- struct{}{}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	<-hashSlots
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

type phc struct {
	m, t uint32
	p    uint8
	salt []byte
	key  []byte
}

func parsePHC(s string) (*phc, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return nil, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(f[2], "v=%d", &v); err != nil || v != argon2.Version {
		return nil, fmt.Errorf("%w: version %q", ErrBadHash, f[2])
	}
	var h phc
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &h.m, &h.t, &h.p); err != nil {
		return nil, fmt.Errorf("%w: parameters %q", ErrBadHash, f[3])
	}
	// Refuse parameters that would let a tampered row exhaust memory or time.
	if h.m < 8 || h.m > 1<<20 || h.t < 1 || h.t > 16 || h.p < 1 || h.p > 16 {
		return nil, fmt.Errorf("%w: parameters %q out of range", ErrBadHash, f[3])
	}
	var err error
	b64 := base64.RawStdEncoding
	if h.salt, err = b64.DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return nil, fmt.Errorf("%w: salt", ErrBadHash)
	}
	if h.key, err = b64.DecodeString(f[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return nil, fmt.Errorf("%w: hash", ErrBadHash)
	}
	return &h, nil
}

// CheckPassword reports whether password matches the PHC string hash, in
// time independent of where they differ.
func CheckPassword(ctx context.Context, hash, password string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	key := argon2.IDKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.key)))
	<-hashSlots
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// dummyHash is checked for unknown and disabled users, so that they cost
// the same work as a known one.
var dummyHash = func() string {
	h, err := HashPassword("cairn: no such user")
	if err != nil {
		panic(err)
	}
	return h
}()

// passwordAlphabet has no look-alike characters (0/O, 1/l/I).
const passwordAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// GeneratePassword returns a random password of 25 characters from a
// 32-character alphabet in five groups (125 bits), easy to type and to
// read aloud: "k7mqx-3vnbt-...".
func GeneratePassword() string {
	b := make([]byte, 25)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	var out strings.Builder
	for i, c := range b {
		if i > 0 && i%5 == 0 {
			out.WriteByte('-')
		}
		out.WriteByte(passwordAlphabet[c&31])
	}
	return out.String()
}

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// CheckPasswordPolicy returns an error for a password too weak to set.
func CheckPasswordPolicy(p string) error {
	if len(p) < MinPasswordLength {
		return fmt.Errorf("auth: a password needs at least %d characters", MinPasswordLength)
	}
	if strings.ContainsAny(p, "\r\n\x00") {
		return errors.New("auth: a password cannot contain line breaks or NUL")
	}
	return nil
}
