package crypto

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// IdentityFile is the archive identity key file: age X25519 identities, one
// per line, each preceded by "# created:" and "# public key:" comments (the
// format of age-keygen). The last identity is the current one.
type IdentityFile struct {
	Path       string
	Identities []*age.X25519Identity
}

// LoadIdentities reads an identity file. It refuses a file that others can
// read, because the identity opens every key-encryption key.
func LoadIdentities(path string) (*IdentityFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: archive key %s: %w (run `cairn init` to create one)", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("crypto: archive key %s has mode %v; it must be readable by its owner only (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("crypto: archive key %s: %w", path, err)
	}
	f := &IdentityFile{Path: path}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, err := age.ParseX25519Identity(line)
		if err != nil {
			return nil, fmt.Errorf("crypto: archive key %s line %d: not an age X25519 identity", path, n)
		}
		f.Identities = append(f.Identities, id)
	}
	if len(f.Identities) == 0 {
		return nil, fmt.Errorf("crypto: archive key %s holds no identity", path)
	}
	return f, nil
}

// CreateIdentities writes a new identity file with one fresh identity. It
// fails if the file exists: an archive key is never silently replaced.
func CreateIdentities(path string) (*IdentityFile, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	if err := writeNewFile(path, identityBlock(id)); err != nil {
		return nil, err
	}
	return &IdentityFile{Path: path, Identities: []*age.X25519Identity{id}}, nil
}

// AddIdentity appends a fresh identity to the file and makes it current.
// The file is rewritten atomically (temp file, fsync, rename, fsync dir).
func (f *IdentityFile) AddIdentity() (*age.X25519Identity, error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	old, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, fmt.Errorf("crypto: %w", err)
	}
	data := append(bytes.TrimRight(old, "\n"), '\n')
	data = append(data, identityBlock(id)...)
	if err := replaceFile(f.Path, data); err != nil {
		return nil, err
	}
	f.Identities = append(f.Identities, id)
	return id, nil
}

// Current returns the newest identity.
func (f *IdentityFile) Current() *age.X25519Identity { return f.Identities[len(f.Identities)-1] }

// AgeIdentities returns every identity, newest first, for age.Decrypt.
func (f *IdentityFile) AgeIdentities() []age.Identity {
	out := make([]age.Identity, 0, len(f.Identities))
	for i := len(f.Identities) - 1; i >= 0; i-- {
		out = append(out, f.Identities[i])
	}
	return out
}

func identityBlock(id *age.X25519Identity) []byte {
	return fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
}

// writeNewFile creates path with mode 0600, failing if it exists, and makes
// the file and its directory entry durable.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("crypto: %s already exists; refusing to replace a key", path)
		}
		return fmt.Errorf("crypto: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("crypto: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("crypto: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("crypto: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// replaceFile atomically replaces path with data, mode 0600.
func replaceFile(path string, data []byte) error {
	tmp := path + ".new"
	os.Remove(tmp)
	if err := writeNewFile(tmp, data); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("crypto: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	if err := objstore.SyncDir(dir); err != nil {
		return fmt.Errorf("crypto: sync %s: %w", dir, err)
	}
	return nil
}
