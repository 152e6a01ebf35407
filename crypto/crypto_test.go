package crypto

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/cairn-archive/cairn/archive/objstore/fs"
)

func TestKeyringLifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	objs, err := fs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "keys", "archive.key")
	ids, err := CreateIdentities(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(keyPath); st.Mode().Perm() != 0o600 {
		t.Fatalf("archive key mode %v", st.Mode().Perm())
	}
	if _, err := CreateIdentities(keyPath); err == nil {
		t.Fatal("an existing archive key was replaced")
	}
	if _, err := LoadKeyring(ctx, objs, ids); !errors.Is(err, ErrNoKEK) {
		t.Fatalf("empty store: %v", err)
	}
	escrow, _ := age.GenerateX25519Identity()
	kr, err := CreateKeyring(ctx, objs, ids, []age.Recipient{escrow.Recipient()})
	if err != nil {
		t.Fatal(err)
	}
	mk := NewMessageKeySalt()
	mk.FileKey[0] = 9
	wrapped := kr.WrapMessageKey(mk, "messages/aa/bb/x")
	if len(wrapped) != KeyObjectSize {
		t.Fatalf("key object of %d bytes", len(wrapped))
	}

	// Rotation: new messages use the new KEK, old ones stay readable.
	old := kr.Current()
	kek2, err := kr.Rotate(ctx, objs, ids, nil)
	if err != nil || kek2 == old || kr.Current() != kek2 {
		t.Fatalf("rotate: %v", err)
	}
	wrapped2 := kr.WrapMessageKey(mk, "messages/aa/bb/y")
	if bytes.Equal(wrapped[4:12], wrapped2[4:12]) {
		t.Fatal("the new message key was wrapped under the old KEK")
	}

	// A fresh load from the key file and the store sees both KEKs.
	ids2, err := LoadIdentities(keyPath)
	if err != nil || len(ids2.Identities) != 2 {
		t.Fatalf("identities after rotation: %v", err)
	}
	kr2, err := LoadKeyring(ctx, objs, ids2)
	if err != nil {
		t.Fatal(err)
	}
	if kr2.Current().ID != kek2.ID || !bytes.Equal(kr2.NameKey(), kr.NameKey()) {
		t.Fatal("reloaded keyring differs")
	}
	for _, c := range []struct {
		b    []byte
		name string
	}{{wrapped, "messages/aa/bb/x"}, {wrapped2, "messages/aa/bb/y"}} {
		got, err := kr2.UnwrapMessageKey(c.b, c.name)
		if err != nil || got.FileKey != mk.FileKey || got.Salt != mk.Salt {
			t.Fatalf("unwrap %s: %v", c.name, err)
		}
	}
	// Bound to the object name.
	if _, err := kr2.UnwrapMessageKey(wrapped, "messages/aa/bb/y"); !errors.Is(err, ErrKeyObject) {
		t.Fatalf("key object opened for another object: %v", err)
	}
	// The escrow identity opens the first KEK object.
	escrowIDs := &IdentityFile{Path: "escrow", Identities: []*age.X25519Identity{escrow}}
	if _, _, err := openKEKObject(ctx, objs, KEKPrefix+old.IDString()+".age", escrowIDs); err != nil {
		t.Fatalf("escrow cannot open the KEK: %v", err)
	}
	// An unrelated identity opens nothing.
	other, _ := age.GenerateX25519Identity()
	if _, err := LoadKeyring(ctx, objs, &IdentityFile{Path: "other", Identities: []*age.X25519Identity{other}}); err == nil {
		t.Fatal("a foreign identity opened the KEKs")
	}
}

func TestKeyFilePermissionsEnforced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "archive.key")
	if _, err := CreateIdentities(p); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadIdentities(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key accepted: %v", err)
	}
	sp := filepath.Join(dir, "ledger.key")
	sk, err := CreateSigningKey(sp, "example.com/cairn")
	if err != nil {
		t.Fatal(err)
	}
	sk2, err := LoadSigningKey(sp)
	if err != nil || sk2.VerifierKey != sk.VerifierKey || sk2.Origin() != "example.com/cairn" {
		t.Fatalf("reload signing key: %v", err)
	}
	if v, err := LoadVerifier(sp + ".pub"); err != nil || v.Name() != "example.com/cairn" {
		t.Fatalf("public key: %v", err)
	}
	os.Chmod(sp, 0o640)
	if _, err := LoadSigningKey(sp); err == nil {
		t.Fatal("group-readable signing key accepted")
	}
	if _, err := CreateSigningKey(filepath.Join(dir, "x.key"), "bad origin"); err == nil {
		t.Fatal("origin with a space accepted")
	}
}

func TestSealOpenCommit(t *testing.T) {
	mk := NewMessageKeySalt()
	s := mk.Seal("envelope", []byte("secret envelope"))
	if bytes.Contains(s, []byte("secret")) {
		t.Fatal("plaintext in sealed data")
	}
	got, err := mk.Open("envelope", s)
	if err != nil || string(got) != "secret envelope" {
		t.Fatal(err)
	}
	if _, err := mk.Open("evidence", s); !errors.Is(err, ErrSealed) {
		t.Fatal("opened under another label")
	}
	s[len(s)-1] ^= 1
	if _, err := mk.Open("envelope", s); !errors.Is(err, ErrSealed) {
		t.Fatal("tampered seal opened")
	}
	other := NewMessageKeySalt()
	if mk.Commit([]byte("x")) == other.Commit([]byte("x")) {
		t.Fatal("commitments of two salts agree")
	}
}
