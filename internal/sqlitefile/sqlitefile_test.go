package sqlitefile

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/mattn/go-sqlite3"
)

// A database whose folder holds every character a URI treats specially
// lands at exactly that path, with the query's parameters applied.
func TestURIOpensThePathItNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mail#2026?x=1&y %41%", "sub")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "t.db")
	db, err := sql.Open("sqlite3", URI(path, "_journal_mode=WAL&_busy_timeout=1234"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not where the URI names it: %v", err)
	}
	var mode string
	var timeout int
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	if err := db.QueryRow(`PRAGMA busy_timeout`).Scan(&timeout); err != nil || timeout != 1234 {
		t.Fatalf("busy_timeout %d, %v", timeout, err)
	}
	if got := URI("a#b?c%d", ""); got != "file:a%23b%3Fc%25d" {
		t.Fatalf("URI = %q", got)
	}
}
