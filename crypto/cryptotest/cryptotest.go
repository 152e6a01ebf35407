// Package cryptotest makes an archive's keys for tests, as `cairn init`
// does: the archive key under dir/keys/archive.key, its keyring in objs,
// and the ledger signing key under dir/keys/ledger.key.
package cryptotest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/crypto"
)

// Keys creates the keys in dir and objs; origin names the ledger
// ("test.example/cairn"). It fails the test on any error.
func Keys(t testing.TB, dir string, objs objstore.Store, origin string) (*crypto.Keyring, *crypto.SigningKey) {
	t.Helper()
	ids, err := crypto.CreateIdentities(filepath.Join(dir, "keys", "archive.key"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := crypto.CreateKeyring(context.Background(), objs, ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := crypto.CreateSigningKey(filepath.Join(dir, "keys", "ledger.key"), origin)
	if err != nil {
		t.Fatal(err)
	}
	return ring, sk
}
