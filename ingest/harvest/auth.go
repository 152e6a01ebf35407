package harvest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrAuth is wrapped by errors that more tries with the same credentials
// will not fix: a missing password, a failed token command, a refused login.
var ErrAuth = errors.New("harvest: authentication")

// password reads the source's password.
func (s *Source) password() (string, error) {
	if s.PasswordEnv != "" {
		v, ok := os.LookupEnv(s.PasswordEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("%w: environment variable %s is empty", ErrAuth, s.PasswordEnv)
		}
		return v, nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("%w: password_file: %v", ErrAuth, err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("%w: password_file %s is empty", ErrAuth, s.PasswordFile)
	}
	return pw, nil
}

// tokenCommandTimeout bounds a token command (a refresh against an
// identity provider takes seconds).
const tokenCommandTimeout = 30 * time.Second

// token reads or mints the OAuth2 access token.
func (s *Source) token(ctx context.Context) (string, error) {
	if s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return "", fmt.Errorf("%w: token_file: %v", ErrAuth, err)
		}
		tok := firstLine(b)
		if tok == "" {
			return "", fmt.Errorf("%w: token_file %s is empty", ErrAuth, s.TokenFile)
		}
		return tok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, tokenCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", s.TokenCommand)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return "", fmt.Errorf("%w: token_command: %v: %s", ErrAuth, err, msg)
	}
	tok := firstLine(out)
	if tok == "" {
		return "", fmt.Errorf("%w: token_command printed no token", ErrAuth)
	}
	return tok, nil
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// oauthClient is a SASL client (github.com/emersion/go-sasl's Client
// interface) for XOAUTH2 and OAUTHBEARER. Both send everything in the
// initial response; a challenge means the server refused the token and
// carries a JSON error, which is kept for the report.
type oauthClient struct {
	mech       string // "XOAUTH2" or "OAUTHBEARER"
	user       string
	token      string
	host       string
	port       int
	serverFail string // the server's JSON error, if any
}

// Start returns the initial response.
func (c *oauthClient) Start() (string, []byte, error) {
	if c.mech == "XOAUTH2" {
		// Google's and Microsoft's XOAUTH2: "user=" user ^A "auth=Bearer "
		// token ^A ^A (developers.google.com/gmail/imap/xoauth2-protocol).
		ir := "user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"
		return c.mech, []byte(ir), nil
	}
	// RFC 7628 §3.1: gs2-header "n,a=" saslname "," then key=value pairs
	// each ended by ^A, and a final ^A. The authzid is a saslname (RFC 5801
	// §4): ',' and '=' escaped as =2C and =3D.
	authz := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
	var b strings.Builder
	b.WriteString("n,a=" + authz + ",")
	b.WriteString("\x01host=" + c.host)
	b.WriteString("\x01port=" + strconv.Itoa(c.port))
	b.WriteString("\x01auth=Bearer " + c.token + "\x01\x01")
	return c.mech, []byte(b.String()), nil
}

// Next answers a challenge, which is always the server's error report.
func (c *oauthClient) Next(challenge []byte) ([]byte, error) {
	var e struct {
		Status string `json:"status"`
		Scope  string `json:"scope"`
	}
	if json.Unmarshal(challenge, &e) == nil && e.Status != "" {
		c.serverFail = "status " + e.Status
		if e.Scope != "" {
			c.serverFail += ", scope " + e.Scope
		}
	} else {
		c.serverFail = strings.TrimSpace(string(challenge))
	}
	if c.mech == "OAUTHBEARER" {
		// RFC 7628 §3.2.3: the client answers an error challenge with a
		// single ^A; the server then fails the exchange.
		return []byte{0x01}, nil
	}
	// XOAUTH2: an empty response, after which the server sends NO.
	return []byte{}, nil
}
