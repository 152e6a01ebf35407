package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // SQLite driver (cgo)

	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// Role is what an account may do.
type Role string

// The roles. Every role reads the archive within its scope (the IMAP view,
// search); legal also manages holds, exports and erasure requests; admin
// also manages accounts and configuration.
const (
	RoleAuditor Role = "auditor"
	RoleLegal   Role = "legal"
	RoleAdmin   Role = "admin"
)

// ParseRole accepts auditor, legal or admin.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(strings.TrimSpace(s))); r {
	case RoleAuditor, RoleLegal, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("auth: role %q: want auditor, legal or admin", s)
}

// User is one account.
type User struct {
	Name     string
	Role     Role
	Scope    Scope
	Disabled bool
	Created  time.Time
	Updated  time.Time
}

// Sentinel errors.
var (
	// ErrAuthFailed is the one answer to a failed login, whatever the
	// reason (unknown user, disabled, wrong password, throttled).
	ErrAuthFailed = errors.New("auth: authentication failed")
	// ErrNotFound: no account has that name.
	ErrNotFound = errors.New("auth: no such user")
	// ErrExists: an account with that name exists.
	ErrExists = errors.New("auth: user exists")
)

const schemaVersion = 1

// FlagsTable is the table of annotations: (user, message, flag), one row
// per flag an account set on a message (the message's ledger seq). The
// IMAP view reads it with SQL (it attaches access.db read-only to its
// index connections) to search by flag; writes go through StoreFlags.
const FlagsTable = "flags"

const schema = `
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users(
	name     TEXT PRIMARY KEY,  -- lower-case login name
	role     TEXT NOT NULL,     -- auditor | legal | admin
	scope    TEXT NOT NULL,     -- Scope.String()
	password TEXT NOT NULL,     -- argon2id PHC string
	disabled INTEGER NOT NULL DEFAULT 0,
	created  INTEGER NOT NULL,  -- unix nanoseconds
	updated  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS flags(
	user    TEXT NOT NULL,
	message INTEGER NOT NULL,   -- message ledger seq (IMAP UID - 1 in INBOX)
	flag    TEXT NOT NULL,      -- as the client wrote it: \Seen, $Privileged
	PRIMARY KEY (user, message, flag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS flags_by_flag ON flags(user, flag, message);
CREATE TABLE IF NOT EXISTS numbered(
	folder      TEXT PRIMARY KEY, -- the IMAP view's key: case/<id>, inbox/<scope>
	uidvalidity INTEGER NOT NULL,
	epoch       INTEGER NOT NULL, -- the hold changes the members were last computed for
	scanned     INTEGER NOT NULL, -- the ledger seq up to which they were
	next_uid    INTEGER NOT NULL,
	gen         INTEGER NOT NULL  -- counts the updates that removed members
);
CREATE TABLE IF NOT EXISTS numbering(
	folder   TEXT NOT NULL,
	uid      INTEGER NOT NULL,
	message  INTEGER NOT NULL,    -- message ledger seq
	left_gen INTEGER,             -- numbered.gen of the update it left with
	PRIMARY KEY (folder, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS numbering_live ON numbering(folder, message) WHERE left_gen IS NULL;
`

// DB is the access database. Safe for concurrent use.
type DB struct {
	db      *sql.DB
	path    string
	limiter *Limiter
}

// Options configure Open.
type Options struct {
	// Limits tune the login throttle.
	Limits LimitOptions
}

// Open opens (creating if needed) the access database at path, mode 0600.
func Open(path string, opts Options) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	dsn := sqlitefile.URI(path, "_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate")
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("auth: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if _, err := db.Exec(schema + tokenSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("auth: %s: schema: %w", path, err)
	}
	var v int
	err = db.QueryRow(`SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'schema'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = db.Exec(`INSERT INTO meta(k, v) VALUES('schema', ?)`, schemaVersion)
	case err == nil && v != schemaVersion:
		err = fmt.Errorf("schema %d, this cairn knows %d", v, schemaVersion)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("auth: %s: %w", path, err)
	}
	return &DB{db: db, path: path, limiter: NewLimiter(opts.Limits)}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Path is the database file.
func (d *DB) Path() string { return d.path }

// NormalizeName lower-cases and checks a login name: 1-64 characters,
// letters, digits and . _ - + @.
func NormalizeName(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" || len(n) > 64 {
		return "", fmt.Errorf("auth: user name %q: 1-64 characters", name)
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-+@", c)) {
			return "", fmt.Errorf("auth: user name %q: only letters, digits and . _ - + @", name)
		}
	}
	return n, nil
}

// Add creates an account. The password must pass CheckPasswordPolicy.
func (d *DB) Add(ctx context.Context, name string, role Role, scope Scope, password string) (*User, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	if err := CheckPasswordPolicy(password); err != nil {
		return nil, err
	}
	scope.normalize()
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	_, err = d.db.ExecContext(ctx, `INSERT INTO users(name, role, scope, password, created, updated) VALUES(?,?,?,?,?,?)`,
		n, string(role), scope.String(), hash, now.UnixNano(), now.UnixNano())
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return nil, fmt.Errorf("%w: %s", ErrExists, n)
		}
		return nil, fmt.Errorf("auth: add %s: %w", n, err)
	}
	return &User{Name: n, Role: role, Scope: scope, Created: now, Updated: now}, nil
}

const userColumns = `name, role, scope, disabled, created, updated`

func scanUser(sc interface{ Scan(...any) error }) (*User, error) {
	var u User
	var role, scope string
	var created, updated int64
	if err := sc.Scan(&u.Name, &role, &scope, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	u.Role = Role(role)
	s, err := ParseScope(scope)
	if err != nil {
		return nil, fmt.Errorf("auth: user %s: %w", u.Name, err)
	}
	u.Scope = s
	u.Created, u.Updated = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &u, nil
}

// Get returns the account name, or ErrNotFound.
func (d *DB) Get(ctx context.Context, name string) (*User, error) {
	n, err := NormalizeName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	u, err := scanUser(d.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, n)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return u, nil
}

// List returns every account, sorted by name.
func (d *DB) List(ctx context.Context) ([]*User, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer rows.Close()
	var out []*User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// Count returns the number of accounts.
func (d *DB) Count(ctx context.Context) (int, error) {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("auth: %w", err)
	}
	return n, nil
}

func (d *DB) update(ctx context.Context, name, set string, args ...any) error {
	n, err := NormalizeName(name)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	args = append(args, time.Now().UTC().UnixNano(), n)
	res, err := d.db.ExecContext(ctx, `UPDATE users SET `+set+`, updated = ? WHERE name = ?`, args...)
	if err != nil {
		return fmt.Errorf("auth: update %s: %w", n, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, n)
	}
	return nil
}

// SetDisabled disables (or enables again) an account. A disabled account
// cannot log in; its sessions end at their next command.
func (d *DB) SetDisabled(ctx context.Context, name string, disabled bool) error {
	return d.update(ctx, name, `disabled = ?`, disabled)
}

// SetPassword replaces an account's password.
func (d *DB) SetPassword(ctx context.Context, name, password string) error {
	if err := CheckPasswordPolicy(password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	return d.update(ctx, name, `password = ?`, hash)
}

// SetRole changes an account's role and scope.
func (d *DB) SetRole(ctx context.Context, name string, role Role, scope Scope) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	scope.normalize()
	return d.update(ctx, name, `role = ?, scope = ?`, string(role), scope.String())
}

// Authenticate checks name and password for a client at ip (the zero
// Addr for local callers). It returns the account, or ErrAuthFailed after
// the same work whatever the reason (see the package comment); wait
// reports how long the Limiter held the attempt. It returns ctx.Err() if
// ctx ends while the attempt waits.
func (d *DB) Authenticate(ctx context.Context, name, password string, ip netip.Addr) (u *User, wait time.Duration, err error) {
	key := strings.ToLower(strings.TrimSpace(name))
	if len(key) > 256 {
		key = key[:256]
	}
	a := d.limiter.Begin(ip, key)
	if err := a.Sleep(ctx); err != nil {
		a.Done(false)
		return nil, a.Wait, err
	}
	hash := dummyHash
	var disabled bool
	if !a.Refuse {
		if n, err := NormalizeName(name); err == nil {
			var h string
			err := d.db.QueryRowContext(ctx, `SELECT password, disabled FROM users WHERE name = ?`, n).Scan(&h, &disabled)
			if err == nil {
				hash = h
			} else if !errors.Is(err, sql.ErrNoRows) {
				a.Done(false)
				return nil, a.Wait, fmt.Errorf("auth: %w", err)
			}
		}
	}
	ok, err := CheckPassword(ctx, hash, password)
	if err != nil && !errors.Is(err, ErrBadHash) {
		a.Done(false)
		return nil, a.Wait, err
	}
	if !ok || disabled || a.Refuse || hash == dummyHash {
		a.Done(false)
		return nil, a.Wait, ErrAuthFailed
	}
	u, err = d.Get(ctx, name)
	if err != nil {
		a.Done(false)
		return nil, a.Wait, ErrAuthFailed
	}
	a.Done(true)
	return u, a.Wait, nil
}

// Active reports whether the account exists and is enabled: sessions call
// it to end a disabled account's access.
func (d *DB) Active(ctx context.Context, name string) (bool, error) {
	var disabled bool
	err := d.db.QueryRowContext(ctx, `SELECT disabled FROM users WHERE name = ?`, name).Scan(&disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	return !disabled, nil
}
