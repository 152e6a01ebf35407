//go:build integration

package e2e

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/volume"
)

// eachObject calls fn with every object of a local store, in either layout
// (volume files, the default; or one file per object). Volumes are read
// through the volume store, as another process reads them while serve
// writes: map.db's rows come shortly after each flush, and the store also
// finds the flushed objects not in the map yet.
func eachObject(t *testing.T, objects string, fn func(key string, data []byte)) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(objects, "volumes")); err == nil {
		s, err := volume.Open(objects)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		var keys []string
		if err := s.List(ctx, "", func(i objstore.Info) error {
			keys = append(keys, i.Key)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			rc, err := s.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			fn(key, b)
		}
		return
	}
	filepath.Walk(objects, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(objects, p)
		if strings.HasPrefix(rel, ".") {
			return nil
		}
		b, _ := os.ReadFile(p)
		fn(filepath.ToSlash(rel), b)
		return nil
	})
}

func objectExists(t *testing.T, objects, key string) bool {
	found := false
	eachObject(t, objects, func(k string, _ []byte) {
		if k == key {
			found = true
		}
	})
	return found
}
