//go:build integration

package e2e

import (
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// eachObject calls fn with every object of a local store, in either layout
// (volume files with map.db, the default; or one file per object).
func eachObject(t *testing.T, objects string, fn func(key string, data []byte)) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(objects, "map.db")); err == nil {
		m, err := sql.Open("sqlite3", filepath.Join(objects, "map.db")+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		rows, err := m.Query(`SELECT key, vol, off, size FROM objects ORDER BY key`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		vols := map[int64]*os.File{}
		defer func() {
			for _, f := range vols {
				f.Close()
			}
		}()
		for rows.Next() {
			var key string
			var vol, off, size int64
			rows.Scan(&key, &vol, &off, &size)
			f := vols[vol]
			if f == nil {
				if f, err = os.Open(filepath.Join(objects, "volumes", fmt.Sprintf("%08d.vol", vol))); err != nil {
					t.Fatal(err)
				}
				vols[vol] = f
			}
			b, err := io.ReadAll(io.NewSectionReader(f, off, size))
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
