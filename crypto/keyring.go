package crypto

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// KEKPrefix is where key-encryption-key objects live in the object store.
const KEKPrefix = "kek/"

// KEK is one key-encryption key.
type KEK struct {
	ID      [8]byte
	Key     [32]byte
	Created time.Time
}

// IDString is the KEK id in hex, as used in object names and messages.
func (k *KEK) IDString() string { return hex.EncodeToString(k.ID[:]) }

// kekFile is the plaintext inside a KEK object (an age file). docs/FORMAT.md.
type kekFile struct {
	Version int       `json:"v"`
	ID      string    `json:"id"`
	KEK     string    `json:"kek"`
	Secret  string    `json:"secret"`
	Created time.Time `json:"created"`
}

// Keyring holds the opened KEKs and the archive secret. It is safe for
// concurrent use once loaded; Rotate must not run concurrently with itself.
type Keyring struct {
	secret  [32]byte
	keks    map[[8]byte]*KEK
	current *KEK

	nameKey   []byte
	indexKey  []byte
	searchKey []byte
	auditKey  []byte
}

// ErrNoKEK means no key-encryption key exists yet: the archive is new.
var ErrNoKEK = errors.New("crypto: no key-encryption key in the object store")

// LoadKeyring opens every KEK object in store with the identities. A KEK
// that no identity opens is an error: some message keys would be unreadable.
func LoadKeyring(ctx context.Context, store objstore.Store, ids *IdentityFile) (*Keyring, error) {
	var keys []string
	err := store.List(ctx, KEKPrefix, func(i objstore.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("crypto: list KEKs: %w", err)
	}
	if len(keys) == 0 {
		return nil, ErrNoKEK
	}
	kr := &Keyring{keks: make(map[[8]byte]*KEK)}
	var haveSecret bool
	for _, key := range keys {
		kek, secret, err := openKEKObject(ctx, store, key, ids)
		if err != nil {
			return nil, err
		}
		if haveSecret && secret != kr.secret {
			return nil, fmt.Errorf("crypto: KEK object %s carries a different archive secret than the others; the store mixes two archives", key)
		}
		kr.secret, haveSecret = secret, true
		kr.keks[kek.ID] = kek
		if kr.current == nil || kek.Created.After(kr.current.Created) {
			kr.current = kek
		}
	}
	kr.derive()
	return kr, nil
}

// CreateKeyring makes a new archive secret and a first KEK, encrypted to the
// identity file's current identity and the escrow recipients, and stores it.
func CreateKeyring(ctx context.Context, store objstore.Store, ids *IdentityFile, escrow []age.Recipient) (*Keyring, error) {
	kr := &Keyring{keks: make(map[[8]byte]*KEK)}
	rand.Read(kr.secret[:])
	if err := kr.addKEK(ctx, store, ids, escrow); err != nil {
		return nil, err
	}
	kr.derive()
	return kr, nil
}

// Rotate adds a new identity to the identity file and a new KEK encrypted to
// it (and to the escrow recipients). New messages use the new KEK; messages
// wrapped under older KEKs stay readable, since older identities are kept.
func (kr *Keyring) Rotate(ctx context.Context, store objstore.Store, ids *IdentityFile, escrow []age.Recipient) (*KEK, error) {
	if _, err := ids.AddIdentity(); err != nil {
		return nil, err
	}
	if err := kr.addKEK(ctx, store, ids, escrow); err != nil {
		return nil, err
	}
	return kr.current, nil
}

func (kr *Keyring) addKEK(ctx context.Context, store objstore.Store, ids *IdentityFile, escrow []age.Recipient) error {
	kek := &KEK{Created: time.Now().UTC()}
	rand.Read(kek.ID[:])
	rand.Read(kek.Key[:])
	if kr.current != nil && !kek.Created.After(kr.current.Created) {
		kek.Created = kr.current.Created.Add(time.Nanosecond)
	}
	plain, err := json.Marshal(kekFile{
		Version: 1,
		ID:      kek.IDString(),
		KEK:     base64.StdEncoding.EncodeToString(kek.Key[:]),
		Secret:  base64.StdEncoding.EncodeToString(kr.secret[:]),
		Created: kek.Created,
	})
	if err != nil {
		return err
	}
	recipients := append([]age.Recipient{ids.Current().Recipient()}, escrow...)
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return fmt.Errorf("crypto: encrypt KEK: %w", err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		return fmt.Errorf("crypto: encrypt KEK: %w", err)
	}
	key := KEKPrefix + kek.IDString() + ".age"
	if err := store.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return fmt.Errorf("crypto: store KEK %s: %w", key, err)
	}
	kr.keks[kek.ID] = kek
	kr.current = kek
	return nil
}

func openKEKObject(ctx context.Context, store objstore.Store, key string, ids *IdentityFile) (*KEK, [32]byte, error) {
	var secret [32]byte
	rc, err := store.Get(ctx, key)
	if err != nil {
		return nil, secret, fmt.Errorf("crypto: read KEK %s: %w", key, err)
	}
	defer rc.Close()
	r, err := age.Decrypt(rc, ids.AgeIdentities()...)
	if err != nil {
		return nil, secret, fmt.Errorf("crypto: KEK object %s cannot be opened with the identities in %s: %w", key, ids.Path, err)
	}
	plain, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return nil, secret, fmt.Errorf("crypto: KEK object %s: %w", key, err)
	}
	var f kekFile
	if err := json.Unmarshal(plain, &f); err != nil || f.Version != 1 {
		return nil, secret, fmt.Errorf("crypto: KEK object %s: unknown format", key)
	}
	kek := &KEK{Created: f.Created}
	if err := decodeFixed(f.ID, hex.DecodeString, kek.ID[:]); err != nil {
		return nil, secret, fmt.Errorf("crypto: KEK object %s: id: %w", key, err)
	}
	if err := decodeFixed(f.KEK, base64.StdEncoding.DecodeString, kek.Key[:]); err != nil {
		return nil, secret, fmt.Errorf("crypto: KEK object %s: key: %w", key, err)
	}
	if err := decodeFixed(f.Secret, base64.StdEncoding.DecodeString, secret[:]); err != nil {
		return nil, secret, fmt.Errorf("crypto: KEK object %s: secret: %w", key, err)
	}
	if !strings.HasSuffix(key, kek.IDString()+".age") {
		return nil, secret, fmt.Errorf("crypto: KEK object %s holds KEK %s: renamed object", key, kek.IDString())
	}
	return kek, secret, nil
}

func decodeFixed(s string, dec func(string) ([]byte, error), dst []byte) error {
	b, err := dec(s)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return fmt.Errorf("length %d, want %d", len(b), len(dst))
	}
	copy(dst, b)
	return nil
}

func (kr *Keyring) derive() {
	kr.nameKey = kr.DeriveKey("cairn object names v1")
	kr.indexKey = kr.DeriveKey("cairn index v1")
	kr.searchKey = kr.DeriveKey("cairn search tokens v1")
	kr.auditKey = kr.DeriveKey("cairn audit v1")
}

// DeriveKey derives a 32-byte key for label from the archive secret
// (HKDF-SHA256, RFC 5869, with the label as info and no salt).
func (kr *Keyring) DeriveKey(label string) []byte {
	k, err := hkdf.Key(sha256.New, kr.secret[:], nil, label, 32)
	if err != nil {
		panic(err) // only for lengths over 255*32
	}
	return k
}

// Current is the KEK that wraps new message keys.
func (kr *Keyring) Current() *KEK { return kr.current }

// KEKs lists the loaded KEKs, oldest first.
func (kr *Keyring) KEKs() []*KEK {
	out := make([]*KEK, 0, len(kr.keks))
	for _, k := range kr.keks {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// NameKey keys the HMAC that names objects, so that the store's operator
// cannot tell whether a known message is archived (invariant 4).
func (kr *Keyring) NameKey() []byte { return kr.nameKey }

// IndexKey keys the MACs over index rows.
func (kr *Keyring) IndexKey() []byte { return kr.indexKey }

// SearchKey keys the blind tokens of the full-text index.
func (kr *Keyring) SearchKey() []byte { return kr.searchKey }

// AuditKey keys the hashes of personal data in audit events.
func (kr *Keyring) AuditKey() []byte { return kr.auditKey }

// KeyringFromSecrets builds a keyring from known secrets, without the
// object store: for independent verifiers and recovery tools that already
// opened the KEK objects, and for format test vectors. The newest KEK (by
// Created) becomes current.
func KeyringFromSecrets(secret [32]byte, keks ...*KEK) *Keyring {
	kr := &Keyring{secret: secret, keks: make(map[[8]byte]*KEK)}
	for _, k := range keks {
		kr.keks[k.ID] = k
		if kr.current == nil || k.Created.After(kr.current.Created) {
			kr.current = k
		}
	}
	kr.derive()
	return kr
}
