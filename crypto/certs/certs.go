// Package certs loads the TLS certificate of a Cairn listener, or creates a
// self-signed one for the embedded default (SMTP STARTTLS, the IMAP view).
//
// Invariants: a key file this package writes is created with mode 0600 and is
// never overwritten; an existing pair is loaded as it is and never replaced,
// even when it has expired (an operator's certificate is the operator's
// business; a warning belongs in the caller's logs).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long a generated certificate is valid.
const Validity = 5 * 365 * 24 * time.Hour

// LoadOrCreate returns the certificate in certFile and keyFile. When neither
// file exists it first generates a self-signed ECDSA P-256 certificate for
// hosts (DNS names or IP addresses; "localhost", 127.0.0.1 and ::1 when
// empty), writes the key with mode 0600 and the certificate with mode 0644,
// and then loads them. When only one of the two exists it fails rather than
// guess which one is wrong. The returned Leaf is set.
func LoadOrCreate(certFile, keyFile string, hosts []string) (tls.Certificate, error) {
	certExists, err := exists(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	switch {
	case certExists && keyExists:
	case certExists != keyExists:
		return tls.Certificate{}, fmt.Errorf("certs: only one of %s and %s exists; remove it or provide both", certFile, keyFile)
	default:
		if err := create(certFile, keyFile, hosts); err != nil {
			return tls.Certificate{}, err
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: load %s: %w", certFile, err)
	}
	return pair, nil
}

func exists(name string) (bool, error) {
	_, err := os.Stat(name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("certs: %w", err)
	}
}

// create writes a new key and certificate. The key is written first with
// O_EXCL, so two processes racing on a fresh data directory cannot both
// write one; the loser fails and the operator restarts it.
func create(certFile, keyFile string, hosts []string) error {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return fmt.Errorf("certs: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Cairn archive"}, CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew between peers
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("certs: create certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: marshal key: %w", err)
	}
	if err := writeNew(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeNew(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		os.Remove(keyFile) // do not leave a key without its certificate
		return err
	}
	return nil
}

// writeNew creates name (failing if it exists), writes data, fsyncs the
// file and its directory.
func writeNew(name string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("certs: write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("certs: sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("certs: close %s: %w", name, err)
	}
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
