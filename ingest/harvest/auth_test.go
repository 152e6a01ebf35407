package harvest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

func TestPasswordSources(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{"pw\n": "pw", "pw\r\n": "pw", "pw": "pw", " sp ace \n": " sp ace "} {
		p := filepath.Join(dir, "pw")
		os.WriteFile(p, []byte(content), 0o600)
		s := Source{PasswordFile: p}
		if got, err := s.password(); err != nil || got != want {
			t.Errorf("file %q: %q %v, want %q", content, got, err, want)
		}
	}
	os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600)
	if _, err := (&Source{PasswordFile: filepath.Join(dir, "empty")}).password(); !errors.Is(err, ErrAuth) {
		t.Errorf("empty file: %v", err)
	}
	t.Setenv("CAIRN_TEST_PW", "from env")
	if got, err := (&Source{PasswordEnv: "CAIRN_TEST_PW"}).password(); err != nil || got != "from env" {
		t.Errorf("env: %q %v", got, err)
	}
	if _, err := (&Source{PasswordEnv: "CAIRN_TEST_PW_UNSET"}).password(); !errors.Is(err, ErrAuth) {
		t.Errorf("unset env: %v", err)
	}
}

func TestTokenSources(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	os.WriteFile(p, []byte("ya29.tok\nrefresh-ignored\n"), 0o600)
	ctx := t.Context()
	if got, err := (&Source{TokenFile: p}).token(ctx); err != nil || got != "ya29.tok" {
		t.Errorf("file: %q %v", got, err)
	}
	if got, err := (&Source{TokenCommand: "echo '  minted-token  '"}).token(ctx); err != nil || got != "minted-token" {
		t.Errorf("command: %q %v", got, err)
	}
	_, err := (&Source{TokenCommand: "echo no refresh token >&2; exit 3"}).token(ctx)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "no refresh token") {
		t.Errorf("failing command: %v", err)
	}
}

func TestOAuthInitialResponses(t *testing.T) {
	x := &oauthClient{mech: "XOAUTH2", user: "a@example.com", token: "T0K", host: "imap.example.com", port: 993}
	mech, ir, _ := x.Start()
	if mech != "XOAUTH2" || string(ir) != "user=a@example.com\x01auth=Bearer T0K\x01\x01" {
		t.Fatalf("%s %q", mech, ir)
	}
	if resp, _ := x.Next([]byte(`{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`)); len(resp) != 0 ||
		!strings.Contains(x.serverFail, "401") {
		t.Fatalf("%q %q", resp, x.serverFail)
	}
	o := &oauthClient{mech: "OAUTHBEARER", user: "a,b=c@example.com", token: "T0K", host: "imap.example.com", port: 993}
	mech, ir, _ = o.Start()
	// RFC 7628 §3.1 and its example in §4.1; RFC 5801 saslname escaping.
	if want := "n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01port=993\x01auth=Bearer T0K\x01\x01"; mech != "OAUTHBEARER" || string(ir) != want {
		t.Fatalf("%s %q, want %q", mech, ir, want)
	}
	if resp, _ := o.Next([]byte(`{"status":"invalid_token"}`)); !bytes.Equal(resp, []byte{1}) {
		t.Fatalf("RFC 7628 §3.2.3: answer an error with ^A, got %q", resp)
	}
}

// oauthSession adds XOAUTH2 and OAUTHBEARER to an imapmemserver session.
type oauthSession struct {
	imapserver.Session
	token string
}

func (s *oauthSession) AuthenticateMechanisms() []string { return []string{"XOAUTH2", "OAUTHBEARER"} }

func (s *oauthSession) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case "OAUTHBEARER":
		// go-sasl's server is an independent parser of what we send.
		return sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if o.Token != s.token || o.Username != testUser {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			if err := s.Session.Login(testUser, testPass); err != nil {
				return &sasl.OAuthBearerError{Status: "invalid_request"}
			}
			return nil
		}), nil
	case "XOAUTH2":
		return &xoauth2Server{s: s}, nil
	}
	return nil, errors.New("unsupported")
}

type xoauth2Server struct {
	s      *oauthSession
	failed bool
}

func (x *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if x.failed {
		return nil, true, errors.New("invalid token")
	}
	want := "user=" + testUser + "\x01auth=Bearer " + x.s.token + "\x01\x01"
	if string(resp) != want {
		x.failed = true
		return []byte(`{"status":"401","schemes":"Bearer"}`), false, nil
	}
	return nil, true, x.s.Session.Login(testUser, testPass)
}

func TestOAuthLogin(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(testUser, testPass)
	mem.AddUser(u)
	u.Create("INBOX", nil)
	m := &memServer{t: t, mem: mem, user: u}
	raw := testMessage(1, 1500)
	m.add("INBOX", raw)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &oauthSession{Session: mem.NewSession(), token: "good-token"}, nil, nil
		},
		// The wrapper hides the optional session interfaces (MOVE, ...),
		// so only what a plain Session does is offered.
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       nopLogger{},
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tokFile := filepath.Join(t.TempDir(), "token")
	for _, auth := range []AuthMethod{AuthXOAUTH2, AuthOAuthBearer} {
		t.Run(string(auth), func(t *testing.T) {
			os.WriteFile(tokFile, []byte("good-token\n"), 0o600)
			src := Source{Name: "oauth", Host: "127.0.0.1", Port: port, TLS: TLSNone, User: testUser, Auth: auth, TokenFile: tokFile}
			a := newMemArchiver()
			h := newTestHarvester(t, a, Options{MaxAttempts: 1}, src)
			if res := runOnce(t, h); res[0].Err != nil || res[0].Archived != 1 || !a.has(raw) {
				t.Fatalf("%+v", res[0])
			}
			os.WriteFile(tokFile, []byte("expired-token\n"), 0o600)
			h2 := newTestHarvester(t, a, Options{MaxAttempts: 1}, src)
			res := runOnce(t, h2)
			if !errors.Is(res[0].Err, ErrAuth) {
				t.Fatalf("bad token: %+v", res[0])
			}
			t.Logf("refused: %v", res[0].Err)
		})
	}
}

// testCA makes a CA and a server certificate for 127.0.0.1 and localhost.
func testCA(t testing.TB) (caFile string, cfg *tls.Config) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "harvest test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestImplicitTLSVerifiesTheCertificate(t *testing.T) {
	caFile, cfg := testCA(t)
	m := newMemServer(t, fullCaps(), cfg)
	m.add("INBOX", testMessage(1, 1000))
	for _, tc := range []struct {
		name   string
		mutate func(*Source)
		ok     bool
	}{
		{"ca_file", func(s *Source) { s.CAFile = caFile }, true},
		{"system roots", func(s *Source) {}, false},
		{"wrong name", func(s *Source) { s.CAFile = caFile; s.TLSServerName = "imap.example.com" }, false},
		{"skip verify", func(s *Source) { s.TLSSkipVerify = true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := m.source("tls")
			src.TLS = TLSImplicit
			tc.mutate(&src)
			h := newTestHarvester(t, newMemArchiver(), Options{MaxAttempts: 1}, src)
			res := runOnce(t, h)
			if ok := res[0].Err == nil && res[0].Archived == 1; ok != tc.ok {
				t.Fatalf("%+v", res[0])
			}
			if !tc.ok && !strings.Contains(res[0].Err.Error(), "certificate") {
				t.Fatalf("not a certificate error: %v", res[0].Err)
			}
		})
	}
}

func TestStartTLS(t *testing.T) {
	caFile, cfg := testCA(t)
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(testUser, testPass)
	mem.AddUser(u)
	u.Create("INBOX", nil)
	m := &memServer{t: t, mem: mem, user: u}
	m.add("INBOX", testMessage(1, 1000))
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:      fullCaps(),
		TLSConfig: cfg, // offers STARTTLS and refuses LOGIN before it
		Logger:    nopLogger{},
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	m.port = ln.Addr().(*net.TCPAddr).Port

	src := m.source("starttls")
	src.TLS, src.CAFile = TLSStartTLS, caFile
	h := newTestHarvester(t, newMemArchiver(), Options{MaxAttempts: 1}, src)
	if res := runOnce(t, h); res[0].Err != nil || res[0].Archived != 1 {
		t.Fatalf("%+v", res[0])
	}
	// Without TLS the server says LOGINDISABLED and gets no password.
	src.TLS = TLSNone
	h = newTestHarvester(t, newMemArchiver(), Options{MaxAttempts: 1}, src)
	res := runOnce(t, h)
	if !errors.Is(res[0].Err, ErrAuth) || !strings.Contains(res[0].Err.Error(), "LOGINDISABLED") {
		t.Fatalf("%+v", res[0])
	}
}
