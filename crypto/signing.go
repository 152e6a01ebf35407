package crypto

import (
	"bufio"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// SigningKey is the ledger's ed25519 signing key in the note key format
// (SPEC: c2sp.org/signed-note). Its name is the ledger's checkpoint origin.
type SigningKey struct {
	Signer note.Signer
	// VerifierKey is the public key, "<origin>+<hash>+<base64>": all that
	// anyone needs to check checkpoints, segments and exports.
	VerifierKey string
	Verifier    note.Verifier
}

// Origin is the checkpoint origin line (the key's name).
func (k *SigningKey) Origin() string { return k.Signer.Name() }

// CreateSigningKey generates a key named origin and writes it to path (0600:
// the private key, then the public key on a second line) and path+".pub".
func CreateSigningKey(path, origin string) (*SigningKey, error) {
	if origin == "" || strings.ContainsAny(origin, "+ \t\n") {
		return nil, fmt.Errorf("crypto: origin %q must be non-empty, without spaces or '+'", origin)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	if err := writeNewFile(path, []byte(skey+"\n"+vkey+"\n")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	return newSigningKey(skey, vkey)
}

// LoadSigningKey reads a key file written by CreateSigningKey.
func LoadSigningKey(path string) (*SigningKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: signing key %s: %w (run `cairn init` to create one)", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("crypto: signing key %s has mode %v; it must be readable by its owner only (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		return nil, fmt.Errorf("crypto: signing key %s: want a private and a public key line", path)
	}
	return newSigningKey(lines[0], lines[1])
}

func newSigningKey(skey, vkey string) (*SigningKey, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("crypto: signing key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("crypto: verifier key: %w", err)
	}
	if v.Name() != s.Name() || v.KeyHash() != s.KeyHash() {
		return nil, fmt.Errorf("crypto: the public key does not belong to the private key")
	}
	return &SigningKey{Signer: s, VerifierKey: vkey, Verifier: v}, nil
}

// LoadVerifier reads a public key: a file holding "<name>+<hash>+<base64>",
// or that string itself.
func LoadVerifier(pathOrKey string) (note.Verifier, error) {
	s := pathOrKey
	if data, err := os.ReadFile(pathOrKey); err == nil {
		s = strings.TrimSpace(string(data))
		if i := strings.LastIndexByte(s, '\n'); i >= 0 { // a private key file: the public key is last
			s = s[i+1:]
		}
	}
	v, err := note.NewVerifier(s)
	if err != nil {
		return nil, fmt.Errorf("crypto: %q is neither a public key nor a file holding one: %w", pathOrKey, err)
	}
	return v, nil
}
