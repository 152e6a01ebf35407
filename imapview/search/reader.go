package search

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/url"
	"strings"

	"github.com/mattn/go-sqlite3"

	"github.com/cairn-archive/cairn/archive/message"
	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// OpenReader opens the index database at indexPath read-only (query_only,
// deferred transactions, so a read transaction is a consistent snapshot
// that never blocks the archive's writer), with the SQL function
// cairn_header_has that HEADER keys use, and, when accessPath is not
// empty, auth's access database attached read-only as "acc" for flag keys.
// maxConns bounds the connections (and so SQLite's per-connection caches).
func OpenReader(indexPath, accessPath string, maxConns int) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_txlock", "deferred")
	q.Set("_busy_timeout", "10000")
	q.Set("_query_only", "1")
	c := &connector{dsn: sqlitefile.URI(indexPath, q.Encode())}
	if accessPath != "" {
		c.attach = sqlitefile.URI(accessPath, "mode=ro")
	}
	db := sql.OpenDB(c)
	if maxConns <= 0 {
		maxConns = 8
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("search: open %s: %w", indexPath, err)
	}
	return db, nil
}

type connector struct {
	dsn    string
	attach string
}

var sqliteDriver = &sqlite3.SQLiteDriver{}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := sqliteDriver.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc := conn.(*sqlite3.SQLiteConn)
	if err := sc.RegisterFunc("cairn_header_has", headerHas, true); err != nil {
		sc.Close()
		return nil, err
	}
	if c.attach != "" {
		if _, err := sc.Exec(`ATTACH DATABASE '`+strings.ReplaceAll(c.attach, "'", "''")+`' AS acc`, nil); err != nil {
			sc.Close()
			return nil, fmt.Errorf("attach access database: %w", err)
		}
	}
	return sc, nil
}

func (c *connector) Driver() driver.Driver { return sqliteDriver }

// headerHas reports whether the header block has field name whose value,
// unfolded and RFC 2047-decoded, contains value case-insensitively (any
// occurrence of the field; an empty value: the field exists).
func headerHas(header []byte, name, value string) bool {
	fields := message.HeaderFields(nil, header, []string{name}, false)
	want := strings.ToLower(value)
	match := func(f []byte) bool {
		colon := bytes.IndexByte(f, ':')
		if colon < 0 {
			return false // the blank line that ends the header
		}
		v := strings.Join(strings.Fields(string(f[colon+1:])), " ")
		return want == "" || strings.Contains(strings.ToLower(message.DecodeHeader(v)), want)
	}
	var cur []byte
	for _, line := range bytes.SplitAfter(fields, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			cur = append(cur, line...) // a folded continuation
			continue
		}
		if match(cur) {
			return true
		}
		cur = append(cur[:0:0], line...)
	}
	return match(cur)
}
