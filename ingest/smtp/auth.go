package smtp

import (
	"context"
	"errors"

	"github.com/emersion/go-sasl"
)

// Authenticator checks the credentials of SMTP AUTH. The lead's user store
// implements it; the receiver offers AUTH only when one is supplied.
type Authenticator interface {
	// Authenticate returns nil when username and password are valid and the
	// user may deliver to the archive; an error wrapping
	// ErrInvalidCredentials when they are not (535 5.7.8); any other error
	// is temporary (454 4.7.0). ctx ends when the connection does.
	Authenticate(ctx context.Context, username, password string) error
}

// ErrInvalidCredentials marks credentials that are wrong, as opposed to a
// failure to check them.
var ErrInvalidCredentials = errors.New("smtp: invalid credentials")

// maxAuthFailures is how many failed AUTH attempts a session gets before
// the connection is closed, to slow down password guessing.
const maxAuthFailures = 3

// loginServer is the server side of the obsolete but widely used LOGIN
// mechanism (draft-murchison-sasl-login): the server asks "Username:" then
// "Password:"; a client may send the user name as the initial response.
// go-sasl ships only its client side.
type loginServer struct {
	username string
	step     int
	check    func(username, password string) error
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step = 1
		if response == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.username = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.username, string(response))
	default:
		return nil, true, sasl.ErrUnexpectedClientResponse
	}
}
