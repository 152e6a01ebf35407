package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// MessageKey is the per-message secret held in a key object: the age file
// key of the message object and the salt of its ledger commitments.
type MessageKey struct {
	FileKey [16]byte
	Salt    [32]byte
}

// keyObjectMagic starts every key object. docs/FORMAT.md §Key object.
var keyObjectMagic = []byte("CKY1")

// KeyObjectSize is the exact size of a key object.
const KeyObjectSize = 4 + 8 + chacha20poly1305.NonceSizeX + 16 + 32 + chacha20poly1305.Overhead

// ErrKeyObject is returned (wrapped) when a key object cannot be opened: it
// is corrupt, bound to another object name, or its KEK is unknown.
var ErrKeyObject = errors.New("crypto: key object cannot be opened")

// WrapMessageKey seals mk under the current KEK into a key object bound to
// objectName (the message object's name), so a key object moved onto
// another message fails to open.
func (kr *Keyring) WrapMessageKey(mk *MessageKey, objectName string) []byte {
	kek := kr.current
	out := make([]byte, 0, KeyObjectSize)
	out = append(out, keyObjectMagic...)
	out = append(out, kek.ID[:]...)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(nonce)
	out = append(out, nonce...)
	aead, _ := chacha20poly1305.NewX(kek.Key[:])
	plain := make([]byte, 0, 48)
	plain = append(plain, mk.FileKey[:]...)
	plain = append(plain, mk.Salt[:]...)
	return aead.Seal(out, nonce, plain, keyObjectAAD(out[:12], objectName))
}

// UnwrapMessageKey opens a key object made by WrapMessageKey for objectName.
func (kr *Keyring) UnwrapMessageKey(b []byte, objectName string) (*MessageKey, error) {
	if len(b) != KeyObjectSize || !bytes.Equal(b[:4], keyObjectMagic) {
		return nil, fmt.Errorf("%w: not a key object (%d bytes)", ErrKeyObject, len(b))
	}
	var id [8]byte
	copy(id[:], b[4:12])
	kek := kr.keks[id]
	if kek == nil {
		return nil, fmt.Errorf("%w: unknown KEK %x", ErrKeyObject, id)
	}
	aead, _ := chacha20poly1305.NewX(kek.Key[:])
	nonce := b[12 : 12+chacha20poly1305.NonceSizeX]
	plain, err := aead.Open(nil, nonce, b[12+chacha20poly1305.NonceSizeX:], keyObjectAAD(b[:12], objectName))
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (corrupt, or bound to another object)", ErrKeyObject)
	}
	mk := &MessageKey{}
	copy(mk.FileKey[:], plain[:16])
	copy(mk.Salt[:], plain[16:])
	return mk, nil
}

func keyObjectAAD(header []byte, objectName string) []byte {
	aad := make([]byte, 0, len(header)+len(objectName))
	aad = append(aad, header...)
	return append(aad, objectName...)
}

// NewMessageKeySalt returns a MessageKey with a fresh salt and no file key
// yet; Encrypt fills the file key in.
func NewMessageKeySalt() *MessageKey {
	mk := &MessageKey{}
	rand.Read(mk.Salt[:])
	return mk
}

// Encrypt starts an age file on dst under a fresh file key that it records
// in mk. The header holds one stanza, "cairn-key v1", which carries nothing:
// the file key lives only in the key object. The caller writes the payload
// and closes the returned writer.
func (mk *MessageKey) Encrypt(dst io.Writer) (io.WriteCloser, error) {
	return age.Encrypt(dst, captureRecipient{mk})
}

// Identity returns an age identity that opens the message object with the
// known file key, without any asymmetric operation.
func (mk *MessageKey) Identity() age.Identity {
	return age.NewInjectedFileKeyIdentity(mk.FileKey[:])
}

type captureRecipient struct{ mk *MessageKey }

func (c captureRecipient) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	if len(fileKey) != len(c.mk.FileKey) {
		return nil, fmt.Errorf("crypto: age file key of %d bytes", len(fileKey))
	}
	copy(c.mk.FileKey[:], fileKey)
	return []*age.Stanza{{Type: "cairn-key", Args: []string{"v1"}}}, nil
}

// Commit returns SHA-256(salt || data): the salted commitment the ledger
// records for a message's bytes and for each envelope. Without the salt
// (destroyed with the key object) nobody can confirm a guess of data.
func (mk *MessageKey) Commit(data []byte) [32]byte {
	h := sha256.New()
	h.Write(mk.Salt[:])
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Seal encrypts data under a key derived from mk for label ("envelope",
// "evidence"): XChaCha20-Poly1305, output nonce || ciphertext.
func (mk *MessageKey) Seal(label string, data []byte) []byte {
	aead := mk.aead(label)
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(data)+chacha20poly1305.Overhead)
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, data, []byte(label))
}

// ErrSealed is returned when sealed data does not open.
var ErrSealed = errors.New("crypto: sealed data does not open")

// Open reverses Seal.
func (mk *MessageKey) Open(label string, sealed []byte) ([]byte, error) {
	if len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, ErrSealed
	}
	aead := mk.aead(label)
	out, err := aead.Open(nil, sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:], []byte(label))
	if err != nil {
		return nil, ErrSealed
	}
	return out, nil
}

func (mk *MessageKey) aead(label string) interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
} {
	var ikm [len(mk.FileKey) + len(mk.Salt)]byte
	copy(ikm[:], mk.FileKey[:])
	copy(ikm[len(mk.FileKey):], mk.Salt[:])
	k := HKDFSHA256(ikm[:], nil, "cairn seal v1 "+label)
	aead, _ := chacha20poly1305.NewX(k[:])
	return aead
}
