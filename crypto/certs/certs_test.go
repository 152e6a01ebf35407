package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateThenLoad(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "tls", "smtp.crt")
	keyFile := filepath.Join(dir, "tls", "smtp.key")

	pair, err := LoadOrCreate(certFile, keyFile, []string{"archive.example", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		t.Fatal("Leaf not set")
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if err := leaf.VerifyHostname("archive.example"); err != nil {
		t.Error(err)
	}
	if err := leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Error(err)
	}
	if leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage %v", leaf.ExtKeyUsage)
	}

	st, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("key mode %o, want 600", perm)
	}

	// A second call loads the same pair and rewrites nothing.
	before, _ := os.ReadFile(keyFile)
	again, err := LoadOrCreate(certFile, keyFile, []string{"other.example"})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(keyFile)
	if !bytes.Equal(before, after) || !bytes.Equal(again.Certificate[0], pair.Certificate[0]) {
		t.Error("second LoadOrCreate replaced the pair")
	}
}

func TestDefaultHosts(t *testing.T) {
	dir := t.TempDir()
	pair, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := pair.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
}

func TestOnlyOneFileExists(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "c.pem")
	if err := os.WriteFile(certFile, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(certFile, filepath.Join(dir, "k.pem"), nil); err == nil {
		t.Fatal("want an error when the key is missing but the certificate exists")
	}
}

func TestGarbageIsAnError(t *testing.T) {
	dir := t.TempDir()
	c, k := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(c, []byte("not pem"), 0o644)
	os.WriteFile(k, []byte("not pem"), 0o600)
	if _, err := LoadOrCreate(c, k, nil); err == nil {
		t.Fatal("want an error for garbage files")
	}
}

// The generated pair works for a real TLS handshake.
func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	pair, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.(*tls.Conn).Handshake()
		c.Close()
	}()
	roots := x509.NewCertPool()
	roots.AddCert(pair.Leaf)
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
