package auth

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, LimitOptions{FreeFailures: 1000})
	if _, err := d.Add(ctx, "lena", RoleLegal, ScopeAll, "the right password"); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("192.0.2.1")

	// A legal account cannot mint an admin token; it can mint its own
	// role and lower ones.
	if _, _, err := d.CreateToken(ctx, "lena", "x", RoleAdmin, time.Time{}); err == nil {
		t.Fatal("legal account got an admin token")
	}
	if _, _, err := d.CreateToken(ctx, "nobody", "x", RoleAuditor, time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("token for a missing account: %v", err)
	}
	if _, _, err := d.CreateToken(ctx, "lena", "x", RoleLegal, time.Now().Add(-time.Hour)); err == nil {
		t.Fatal("expired at creation accepted")
	}
	sec, tok, err := d.CreateToken(ctx, "Lena", "review tool", RoleLegal, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sec, "cairn_"+tok.ID+"_") || len(sec) != len("cairn_")+13+1+32 {
		t.Fatalf("token %q (id %s)", sec, tok.ID)
	}
	p, err := d.AuthenticateToken(ctx, sec, ip)
	if err != nil {
		t.Fatal(err)
	}
	if p.User.Name != "lena" || p.Role != RoleLegal || p.Token.ID != tok.ID || p.Token.LastUsed.IsZero() {
		t.Fatalf("principal %+v token %+v", p.User, p.Token)
	}

	// Only the hash is stored.
	var stored []byte
	d.db.QueryRow(`SELECT hash FROM tokens WHERE id = ?`, tok.ID).Scan(&stored)
	if strings.Contains(string(stored), sec[len(sec)-32:]) || len(stored) != 32 {
		t.Fatalf("stored %x", stored)
	}

	// Every wrong form fails the same way.
	for _, bad := range []string{"", "cairn_", sec + "x", sec[:len(sec)-1] + "a", strings.ToUpper(sec),
		"cairn_" + strings.Repeat("a", 13) + "_" + sec[len(sec)-32:], "Bearer " + sec} {
		if bad == sec {
			continue
		}
		if _, err := d.AuthenticateToken(ctx, bad, ip); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%q: %v, want ErrAuthFailed", bad, err)
		}
	}

	// Demoting the account narrows the token; disabling it ends it.
	if err := d.SetRole(ctx, "lena", RoleAuditor, ScopeAll); err != nil {
		t.Fatal(err)
	}
	if p, err := d.AuthenticateToken(ctx, sec, ip); err != nil || p.Role != RoleAuditor {
		t.Fatalf("after demotion: %v %v", p, err)
	}
	d.SetDisabled(ctx, "lena", true)
	if _, err := d.AuthenticateToken(ctx, sec, ip); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("disabled account's token: %v", err)
	}
	d.SetDisabled(ctx, "lena", false)
	if _, err := d.AuthenticateToken(ctx, sec, ip); err != nil {
		t.Fatal(err)
	}

	// Revocation is immediate and permanent.
	if err := d.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AuthenticateToken(ctx, sec, ip); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := d.RevokeToken(ctx, "nosuchtokenid"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("revoke unknown: %v", err)
	}
	list, err := d.Tokens(ctx, "lena")
	if err != nil || len(list) != 1 || list[0].Revoked.IsZero() || list[0].Label != "review tool" {
		t.Fatalf("list %+v %v", list, err)
	}

	// A metrics token for an auditor, expiring.
	msec, mt, err := d.CreateToken(ctx, "lena", "prometheus", RoleMetrics, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d.AuthenticateToken(ctx, msec, ip); err != nil || p.Role != RoleMetrics {
		t.Fatalf("metrics token: %v %v", p, err)
	}
	d.db.Exec(`UPDATE tokens SET expires = ? WHERE id = ?`, time.Now().Add(-time.Second).UnixNano(), mt.ID)
	if _, err := d.AuthenticateToken(ctx, msec, ip); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("expired token: %v", err)
	}
}

// Failed token attempts are throttled per address: after the free
// failures the next attempt is refused at once, without checking, even
// with a good token; the wait is reported.
func TestTokenThrottle(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, LimitOptions{FreeFailures: 2, BaseDelay: time.Minute, MaxDelay: time.Hour, MaxWait: 2 * time.Hour})
	d.Add(ctx, "adm", RoleAdmin, ScopeAll, "the right password")
	sec, _, err := d.CreateToken(ctx, "adm", "", RoleAdmin, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bad := netip.MustParseAddr("203.0.113.5")
	for i := 0; i < 3; i++ {
		_, err := d.AuthenticateToken(ctx, "cairn_nope", bad)
		var te *ThrottledError
		if errors.As(err, &te) {
			t.Fatalf("attempt %d throttled", i)
		}
	}
	_, err = d.AuthenticateToken(ctx, sec, bad)
	var te *ThrottledError
	if !errors.As(err, &te) || te.Wait <= 0 || !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("after failures: %v", err)
	}
	// Another address is not affected.
	if _, err := d.AuthenticateToken(ctx, sec, netip.MustParseAddr("198.51.100.1")); err != nil {
		t.Fatal(err)
	}
}

func TestTokenRoles(t *testing.T) {
	for _, c := range []struct {
		r, min Role
		ok     bool
	}{
		{RoleAdmin, RoleLegal, true}, {RoleLegal, RoleAuditor, true}, {RoleAuditor, RoleLegal, false},
		{RoleMetrics, RoleAuditor, false}, {RoleAuditor, RoleMetrics, true}, {"root", RoleMetrics, false},
	} {
		if RoleAtLeast(c.r, c.min) != c.ok {
			t.Errorf("RoleAtLeast(%s, %s) != %v", c.r, c.min, c.ok)
		}
	}
	if _, err := ParseTokenRole("Metrics"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRole("metrics"); err == nil {
		t.Fatal("metrics is not an account role")
	}
}
