package auth

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T, lim LimitOptions) *DB {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "access.db"), Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestPasswordHash(t *testing.T) {
	ctx := context.Background()
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if ok, err := CheckPassword(ctx, h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := CheckPassword(ctx, h, "correct horse batterx"); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("same salt twice")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "$argon2id$v=19$m=8,t=1,p=1$!!$x"} {
		if _, err := CheckPassword(ctx, bad, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("%q: %v, want ErrBadHash", bad, err)
		}
	}
	p := GeneratePassword()
	if len(p) != 29 || strings.Count(p, "-") != 4 || CheckPasswordPolicy(p) != nil {
		t.Fatalf("generated %q", p)
	}
	if GeneratePassword() == p {
		t.Fatal("two equal generated passwords")
	}
}

func TestScope(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
		err  bool
	}{
		{[]string{"all"}, "all", false},
		{[]string{"ALL", "custodian:a@x.com"}, "all", false},
		{[]string{"Bob@Example.com,@example.org", "case:ACME-1", "domain:x.net"}, "custodian:bob@example.com,domain:example.org,domain:x.net,case:ACME-1", false},
		{[]string{"b@x.com", "a@x.com", "a@x.com"}, "custodian:a@x.com,custodian:b@x.com", false},
		{[]string{""}, "", false},
		{[]string{"nobody"}, "", true},
		{[]string{"case:bad id"}, "", true},
		{[]string{"domain:..x"}, "", true},
		{[]string{"folder:x"}, "", true},
	} {
		s, err := ParseScope(tt.in...)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if err == nil && s.String() != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, s.String(), tt.want)
		}
		if err == nil {
			back, err := ParseScope(s.String())
			if err != nil || !reflect.DeepEqual(back, s) {
				t.Errorf("%q does not read back: %+v %v", s.String(), back, err)
			}
		}
	}
	s, _ := ParseScope("a@x.com", "@y.org", "case:C")
	if !s.CoversCustodian("A@X.com") || !s.CoversCustodian("z@y.org") || s.CoversCustodian("z@x.com") || !s.CoversCase("C") || s.CoversCase("D") {
		t.Fatal("covers")
	}
	if !(Scope{}).Empty() || ScopeAll.Empty() {
		t.Fatal("empty")
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, LimitOptions{})
	scope, _ := ParseScope("custodian:a@x.com")
	u, err := d.Add(ctx, "Alice", RoleAuditor, scope, "a long password 1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" {
		t.Fatalf("name %q", u.Name)
	}
	if _, err := d.Add(ctx, "alice", RoleAdmin, ScopeAll, "another password"); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := d.Add(ctx, "bob", RoleAdmin, ScopeAll, "short"); err == nil {
		t.Fatal("short password accepted")
	}
	if _, err := d.Add(ctx, "bob", "root", ScopeAll, "a long password 2"); err == nil {
		t.Fatal("bad role accepted")
	}
	if _, err := d.Add(ctx, "b ob", RoleAdmin, ScopeAll, "a long password 2"); err == nil {
		t.Fatal("bad name accepted")
	}
	if _, err := d.Add(ctx, "bob", RoleLegal, ScopeAll, "a long password 2"); err != nil {
		t.Fatal(err)
	}
	l, err := d.List(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "alice" || l[1].Role != RoleLegal || l[0].Scope.String() != "custodian:a@x.com" {
		t.Fatalf("list %+v %v", l, err)
	}
	ip := netip.MustParseAddr("192.0.2.1")
	if u, _, err := d.Authenticate(ctx, "ALICE", "a long password 1", ip); err != nil || u.Name != "alice" {
		t.Fatalf("login: %v", err)
	}
	if err := d.SetPassword(ctx, "alice", "a new long password"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Authenticate(ctx, "alice", "a long password 1", ip); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old password: %v", err)
	}
	if _, _, err := d.Authenticate(ctx, "alice", "a new long password", ip); err != nil {
		t.Fatalf("new password: %v", err)
	}
	if err := d.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Authenticate(ctx, "alice", "a new long password", ip); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("disabled: %v", err)
	}
	if ok, _ := d.Active(ctx, "alice"); ok {
		t.Fatal("disabled account active")
	}
	if err := d.SetDisabled(ctx, "nobody", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	if err := d.SetRole(ctx, "bob", RoleAdmin, scope); err != nil {
		t.Fatal(err)
	}
	if u, _ := d.Get(ctx, "bob"); u.Role != RoleAdmin || u.Scope.String() != scope.String() {
		t.Fatalf("set role: %+v", u)
	}
}

// TestSameAnswer: an unknown user, a wrong password and a disabled account
// get the same error after about the same time.
func TestSameAnswer(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, LimitOptions{FreeFailures: 1000})
	d.Add(ctx, "known", RoleAuditor, ScopeAll, "the right password")
	d.Add(ctx, "off", RoleAuditor, ScopeAll, "the right password")
	d.SetDisabled(ctx, "off", true)
	timeOf := func(name, pw string) time.Duration {
		var best time.Duration
		for i := 0; i < 5; i++ {
			start := time.Now()
			_, _, err := d.Authenticate(ctx, name, pw, netip.Addr{})
			if !errors.Is(err, ErrAuthFailed) || err.Error() != ErrAuthFailed.Error() {
				t.Fatalf("%s: %v", name, err)
			}
			if e := time.Since(start); best == 0 || e < best {
				best = e
			}
		}
		return best
	}
	unknown := timeOf("nobody", "whatever")
	wrong := timeOf("known", "the wrong password")
	disabled := timeOf("off", "the right password")
	invalid := timeOf("bad name!", "x")
	for _, d := range []time.Duration{wrong, disabled, invalid} {
		if d < unknown/3 || d > unknown*3 {
			t.Errorf("timings differ: unknown %v, wrong %v, disabled %v, invalid name %v", unknown, wrong, disabled, invalid)
		}
	}
}

func TestLimiter(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := NewLimiter(LimitOptions{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: 8 * time.Second, MaxWait: 20 * time.Second, HalfLife: time.Hour, MaxEntries: 10})
	l.now = func() time.Time { return now }
	ip := netip.MustParseAddr("2001:db8::1")
	try := func(user string, ok bool) *Attempt {
		a := l.Begin(ip, user)
		now = now.Add(a.Wait)
		a.Done(ok)
		return a
	}
	var waits []time.Duration
	for i := 0; i < 8; i++ {
		waits = append(waits, try("alice", false).Wait)
	}
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	if !reflect.DeepEqual(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	// Another address in the same /64 shares the bucket; another user
	// from it waits for the address.
	if a := l.Begin(netip.MustParseAddr("2001:db8::2"), "bob"); a.Wait != 8*time.Second {
		t.Fatalf("same /64: wait %v", a.Wait)
	}
	// Concurrent attempts queue: many connections guess no faster.
	var total time.Duration
	for i := 0; i < 3; i++ {
		a := l.Begin(netip.MustParseAddr("198.51.100.7"), "carol")
		total = a.Wait
		defer a.Done(false)
	}
	if total != 0 {
		t.Fatalf("fresh address waits %v", total)
	}
	// Over MaxWait: refused outright.
	refused := false
	for i := 0; i < 10 && !refused; i++ {
		a := l.Begin(netip.MustParseAddr("203.0.113.9"), "dave")
		refused = a.Refuse
		a.Done(false)
	}
	if !refused {
		t.Fatal("never refused")
	}
	// Failures decay.
	now = now.Add(10 * time.Hour)
	if a := l.Begin(ip, "alice"); a.Wait != 0 {
		t.Fatalf("after decay: wait %v", a.Wait)
	}
	// Memory is bounded.
	for i := 0; i < 100; i++ {
		l.Begin(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), "u"+string(rune('a'+i%26))+strings.Repeat("x", i))
	}
	l.mu.Lock()
	n, m := len(l.addrs), len(l.users)
	l.mu.Unlock()
	if n > 10 || m > 10 {
		t.Fatalf("entries %d addrs, %d users; want at most 10", n, m)
	}
}

func TestFlags(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, LimitOptions{})
	got, err := d.StoreFlags(ctx, "alice", []uint64{1, 5}, FlagsAdd, []string{`\seen`, "$Privileged", "$privileged"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]string{1: {"$Privileged", `\Seen`}, 5: {"$Privileged", `\Seen`}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("add: %v", got)
	}
	got, _ = d.StoreFlags(ctx, "alice", []uint64{5}, FlagsRemove, []string{"$PRIVILEGED"})
	if !reflect.DeepEqual(got, map[uint64][]string{5: {`\Seen`}}) {
		t.Fatalf("remove: %v", got)
	}
	got, _ = d.StoreFlags(ctx, "alice", []uint64{1}, FlagsSet, nil)
	if len(got) != 0 {
		t.Fatalf("set none: %v", got)
	}
	d.StoreFlags(ctx, "bob", []uint64{5}, FlagsSet, []string{`\Flagged`})
	all, _ := d.Flags(ctx, "alice", []uint64{1, 5, 9})
	if !reflect.DeepEqual(all, map[uint64][]string{5: {`\Seen`}}) {
		t.Fatalf("alice: %v", all)
	}
	many := make([]string, MaxFlagsPerMessage+1)
	for i := range many {
		many[i] = "$k" + strings.Repeat("x", i)
	}
	if _, err := d.StoreFlags(ctx, "alice", []uint64{1}, FlagsSet, many); err == nil {
		t.Fatal("too many flags accepted")
	}
}

func TestConcurrentLogins(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, LimitOptions{FreeFailures: 1000})
	d.Add(ctx, "alice", RoleAuditor, ScopeAll, "the right password")
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := d.Authenticate(ctx, "alice", "the right password", netip.Addr{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}
