package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// API tokens: how programs (legal teams' tools, Prometheus, scripts)
// authenticate to the HTTP API, with an Authorization: Bearer header.
//
// A token belongs to an account and carries a role no higher than the
// account's (checked again at every use: demoting or disabling the account
// narrows or ends its tokens at once). It sees what the account's scope
// allows. Tokens are revocable and may expire.
//
// The secret is 160 random bits, so it is stored as its SHA-256 and checked
// with one hash, not with argon2id: a slow hash protects guessable
// passwords, and a token cannot be guessed.
//
// Wire form: cairn_<id>_<secret>, where id (13 characters) names the row
// and secret is 32 characters, both lower-case base32 without padding.

// RoleMetrics is a role only tokens carry: it may read /metrics and
// nothing else (least privilege for a Prometheus scraper).
const RoleMetrics Role = "metrics"

// roleRank orders roles by what they may do; metrics is below every
// account role.
func roleRank(r Role) int {
	switch r {
	case RoleMetrics:
		return 0
	case RoleAuditor:
		return 1
	case RoleLegal:
		return 2
	case RoleAdmin:
		return 3
	}
	return -1
}

// ParseTokenRole accepts the account roles and metrics.
func ParseTokenRole(s string) (Role, error) {
	if r := Role(strings.ToLower(strings.TrimSpace(s))); r == RoleMetrics {
		return r, nil
	}
	r, err := ParseRole(s)
	if err != nil {
		return "", fmt.Errorf("auth: token role %q: want metrics, auditor, legal or admin", s)
	}
	return r, nil
}

// Token is an API token's record (never its secret).
type Token struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Label    string    `json:"label"` // what it is for ("prometheus", "review tool")
	Role     Role      `json:"role"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`   // zero: never
	LastUsed time.Time `json:"last_used,omitzero"` // to the minute
	Revoked  time.Time `json:"revoked,omitzero"`   // zero: not revoked
}

// Active reports whether the token can be used at now.
func (t *Token) Active(now time.Time) bool {
	return t.Revoked.IsZero() && (t.Expires.IsZero() || now.Before(t.Expires))
}

// Principal is who a token authenticates: the account and the role the
// request acts with (the lower of the token's and the account's).
type Principal struct {
	User  *User
	Token *Token
	Role  Role
}

// Token errors.
var (
	// ErrNoToken: no token has that id (RevokeToken).
	ErrNoToken = errors.New("auth: no such token")
)

// ThrottledError is returned by AuthenticateToken when the client's
// address (or the token id) failed too often recently: the token was not
// checked. It matches ErrAuthFailed with errors.Is.
type ThrottledError struct {
	Wait time.Duration // when the client may try again
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("auth: too many failed attempts; retry in %s", e.Wait.Round(time.Second))
}

// Is makes a throttled attempt a failed authentication.
func (e *ThrottledError) Is(target error) bool { return target == ErrAuthFailed }

const tokenSchema = `
CREATE TABLE IF NOT EXISTS tokens(
	id        TEXT PRIMARY KEY,  -- public half of the token
	user      TEXT NOT NULL,     -- owning account (users.name)
	label     TEXT NOT NULL,
	role      TEXT NOT NULL,     -- metrics | auditor | legal | admin
	hash      BLOB NOT NULL,     -- SHA-256 of the secret half
	created   INTEGER NOT NULL,  -- unix nanoseconds
	expires   INTEGER NOT NULL DEFAULT 0,
	last_used INTEGER NOT NULL DEFAULT 0,
	revoked   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens(user);
`

const (
	tokenPrefix    = "cairn_"
	tokenIDLen     = 13 // base32 of 8 bytes
	tokenSecretLen = 32 // base32 of 20 bytes
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomB32(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return strings.ToLower(b32.EncodeToString(b))
}

// splitToken parses cairn_<id>_<secret>.
func splitToken(tok string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(tok, tokenPrefix)
	if !found || len(rest) != tokenIDLen+1+tokenSecretLen || rest[tokenIDLen] != '_' {
		return "", "", false
	}
	id, secret = rest[:tokenIDLen], rest[tokenIDLen+1:]
	for _, c := range id + secret {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", "", false
		}
	}
	return id, secret, true
}

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte("cairn api token\x00" + secret))
	return h[:]
}

// MaxTokenLabelLength bounds a token's label.
const MaxTokenLabelLength = 64

// CreateToken makes a token for account user with role (at most the
// account's role; metrics for any account), a label saying what it is
// for, and an optional expiry (zero: never). It returns the token, to be shown once: only its hash is kept.
func (d *DB) CreateToken(ctx context.Context, user, label string, role Role, expires time.Time) (secret string, t *Token, err error) {
	u, err := d.Get(ctx, user)
	if err != nil {
		return "", nil, err
	}
	if _, err := ParseTokenRole(string(role)); err != nil {
		return "", nil, err
	}
	if roleRank(role) > roleRank(u.Role) {
		return "", nil, fmt.Errorf("auth: %s is %s: a token of role %s needs an account of that role", u.Name, u.Role, role)
	}
	label = strings.TrimSpace(label)
	if len(label) > MaxTokenLabelLength || strings.ContainsFunc(label, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", nil, fmt.Errorf("auth: token label: at most %d printable characters", MaxTokenLabelLength)
	}
	now := time.Now().UTC()
	if !expires.IsZero() && !expires.After(now) {
		return "", nil, errors.New("auth: token expiry is in the past")
	}
	id := randomB32(8)
	sec := randomB32(20)
	t = &Token{ID: id, User: u.Name, Label: label, Role: role, Created: now, Expires: expires.UTC()}
	var exp int64
	if !expires.IsZero() {
		exp = expires.UnixNano()
	}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO tokens(id, user, label, role, hash, created, expires) VALUES(?,?,?,?,?,?,?)`,
		id, u.Name, label, string(role), secretHash(sec), now.UnixNano(), exp); err != nil {
		return "", nil, fmt.Errorf("auth: create token: %w", err)
	}
	return tokenPrefix + id + "_" + sec, t, nil
}

const tokenColumns = `id, user, label, role, created, expires, last_used, revoked`

func scanToken(sc interface{ Scan(...any) error }) (*Token, error) {
	var t Token
	var role string
	var created, expires, used, revoked int64
	if err := sc.Scan(&t.ID, &t.User, &t.Label, &role, &created, &expires, &used, &revoked); err != nil {
		return nil, err
	}
	t.Role = Role(role)
	t.Created = time.Unix(0, created).UTC()
	for _, f := range []struct {
		v   int64
		dst *time.Time
	}{{expires, &t.Expires}, {used, &t.LastUsed}, {revoked, &t.Revoked}} {
		if f.v != 0 {
			*f.dst = time.Unix(0, f.v).UTC()
		}
	}
	return &t, nil
}

// Tokens lists the tokens of account user (every account's when user is
// empty), revoked and expired ones included, oldest first.
func (d *DB) Tokens(ctx context.Context, user string) ([]*Token, error) {
	q, args := `SELECT `+tokenColumns+` FROM tokens ORDER BY created, id`, []any{}
	if user != "" {
		n, err := NormalizeName(user)
		if err != nil {
			return nil, err
		}
		q, args = `SELECT `+tokenColumns+` FROM tokens WHERE user = ? ORDER BY created, id`, []any{n}
	}
	rows, err := d.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	defer rows.Close()
	var out []*Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("auth: tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// GetToken returns the token with that id, or ErrNoToken.
func (d *DB) GetToken(ctx context.Context, id string) (*Token, error) {
	t, err := scanToken(d.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, strings.ToLower(strings.TrimSpace(id))))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoToken, id)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: token: %w", err)
	}
	return t, nil
}

// RevokeToken revokes a token at once (its next request is refused). A
// token revoked already stays revoked from its first revocation.
func (d *DB) RevokeToken(ctx context.Context, id string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE tokens SET revoked = CASE WHEN revoked = 0 THEN ? ELSE revoked END WHERE id = ?`,
		time.Now().UTC().UnixNano(), strings.ToLower(strings.TrimSpace(id)))
	if err != nil {
		return fmt.Errorf("auth: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNoToken, id)
	}
	return nil
}

// usedGranularity: last_used is written at most this often per token, so
// that requests do not each cost a synchronous write.
const usedGranularity = time.Minute

// dummyTokenHash is compared for an unknown id, so that every attempt
// costs the same.
var dummyTokenHash = secretHash(strings.Repeat("a", tokenSecretLen))

// AuthenticateToken checks a bearer token from a client at ip (the zero
// Addr for local callers). It returns the principal, or an error matching
// ErrAuthFailed whatever the reason (malformed, unknown, wrong secret,
// revoked, expired, account disabled or gone); a *ThrottledError when the
// Limiter holds the attempt (the token is then not checked, and the
// caller answers at once rather than wait).
func (d *DB) AuthenticateToken(ctx context.Context, token string, ip netip.Addr) (*Principal, error) {
	id, secret, ok := splitToken(strings.TrimSpace(token))
	// Throttled by client address only: a token cannot be guessed, so a
	// per-token bucket would only let anyone who saw a token id lock its
	// owner out.
	a := d.limiter.Begin(ip, "token@"+addrKey(ip))
	if a.Refuse || a.Wait > 0 {
		a.Done(false)
		w := a.Wait
		if a.Refuse {
			w = d.limiter.opts.MaxDelay
		}
		return nil, &ThrottledError{Wait: max(w, time.Second)}
	}
	fail := func() (*Principal, error) {
		a.Done(false)
		return nil, ErrAuthFailed
	}
	if !ok {
		return fail()
	}
	var hash []byte
	t, err := scanToken(d.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	switch {
	case err == nil:
		err = d.db.QueryRowContext(ctx, `SELECT hash FROM tokens WHERE id = ?`, id).Scan(&hash)
		if err != nil {
			a.Done(false)
			return nil, fmt.Errorf("auth: token: %w", err)
		}
	case errors.Is(err, sql.ErrNoRows):
		hash = dummyTokenHash
	default:
		a.Done(false)
		return nil, fmt.Errorf("auth: token: %w", err)
	}
	match := subtle.ConstantTimeCompare(secretHash(secret), hash) == 1
	now := time.Now().UTC()
	if t == nil || !match || !t.Active(now) {
		return fail()
	}
	u, err := d.Get(ctx, t.User)
	if err != nil || u.Disabled {
		return fail()
	}
	role := t.Role
	if roleRank(u.Role) < roleRank(role) {
		role = u.Role // the account was demoted since
	}
	a.Done(true)
	if now.Sub(t.LastUsed) >= usedGranularity {
		// Best effort: a busy database must not refuse a good token.
		if _, err := d.db.ExecContext(ctx, `UPDATE tokens SET last_used = ? WHERE id = ?`, now.UnixNano(), id); err == nil {
			t.LastUsed = now
		}
	}
	return &Principal{User: u, Token: t, Role: role}, nil
}

// RoleAtLeast reports whether role r may do what role min may (metrics <
// auditor < legal < admin). Unknown roles may do nothing.
func RoleAtLeast(r, min Role) bool {
	return roleRank(r) >= 0 && roleRank(min) >= 0 && roleRank(r) >= roleRank(min)
}
