package smtp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/cairn-archive/cairn/ingest"
)

// This file is the one place where the receiver's own decisions become SMTP
// replies. Enhanced status codes are RFC 3463's; RFC 2034 puts them in every
// reply.

// reason names why a connection, a recipient or a message was not
// accepted. It labels the Stats counters.
type reason int

const (
	reasonNetwork        reason = iota // client not in AllowedNetworks
	reasonSessions                     // MaxSessions reached
	reasonSessionsPerIP                // MaxSessionsPerIP reached
	reasonShutdown                     // the server is shutting down
	reasonRecipient                    // RCPT TO not in AcceptRecipients
	reasonAuthRequired                 // MAIL before AUTH when AuthRequired
	reasonAuthFailed                   // bad credentials
	reasonSize                         // message over MaxMessageBytes
	reasonLineEnding                   // bare CR or LF in the data
	reasonLineLength                   // a data line over MaxLineLength
	reasonArchiveRefused               // Archive returned ingest.ErrRefused
	reasonArchive                      // Archive failed temporarily
	reasonMemory                       // MaxBufferedBytes reached
	reasonTimeout                      // the client stopped sending data
	reasonAborted                      // the connection broke or the client reset during data
	numReasons
)

var reasonNames = [numReasons]string{
	"network", "sessions", "sessions_per_ip", "shutdown", "recipient", "auth_required",
	"auth_failed", "size", "line_ending", "line_length", "archive_refused", "archive",
	"memory", "timeout", "aborted",
}

func (r reason) String() string { return reasonNames[r] }

// temporary reports whether the reply for r is a 4xx one, so the client
// keeps the message and retries.
func (r reason) temporary() bool {
	switch r {
	case reasonSessions, reasonSessionsPerIP, reasonShutdown, reasonArchive, reasonMemory, reasonTimeout, reasonAborted:
		return true
	}
	return false
}

func reply(code int, enh gosmtp.EnhancedCode, format string, args ...any) *gosmtp.SMTPError {
	return &gosmtp.SMTPError{Code: code, EnhancedCode: enh, Message: fmt.Sprintf(format, args...)}
}

// greetingRefusal is written instead of the 220 greeting.
func greetingRefusal(r reason, host string) string {
	switch r {
	case reasonNetwork:
		// RFC 5321 §3.1: 554 instead of 220; the server then waits for QUIT.
		// RFC 3463 X.7.1: delivery not authorized.
		return fmt.Sprintf("554 5.7.1 %s Access denied: your address may not send to this archive", host)
	case reasonSessions:
		// RFC 5321 §4.2.2 and §3.8: 421 closes the channel.
		// RFC 3463 X.4.5: mail system congestion.
		return fmt.Sprintf("421 4.4.5 %s Too many sessions, try again later", host)
	case reasonSessionsPerIP:
		// RFC 3463 X.7.0: a policy limit of this receiver.
		return fmt.Sprintf("421 4.7.0 %s Too many sessions from your address, try again later", host)
	default:
		// RFC 3463 X.3.2: system not accepting network messages.
		return fmt.Sprintf("421 4.3.2 %s Service shutting down, try again later", host)
	}
}

var (
	// RFC 5321 §4.2.2 (421) in reply to MAIL while shutting down.
	errShuttingDown = reply(421, gosmtp.EnhancedCode{4, 3, 2}, "Service shutting down, try again later")
	// RFC 5321 §3.3 and §4.2.2 (550); RFC 3463 X.1.1: bad destination
	// mailbox address.
	errUnknownRecipient = reply(550, gosmtp.EnhancedCode{5, 1, 1}, "Recipient not accepted by this archive")
	// RFC 4954 §6: authentication required.
	errAuthRequired = reply(530, gosmtp.EnhancedCode{5, 7, 0}, "Authentication required")
	// RFC 4954 §6: authentication credentials invalid.
	errAuthFailed = reply(535, gosmtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid")
	// RFC 4954 §6: temporary authentication failure.
	errAuthTemporary = reply(454, gosmtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure")
	// RFC 4954 §4: an authorization identity other than the user is not
	// supported.
	errAuthzid = reply(535, gosmtp.EnhancedCode{5, 7, 8}, "Authorization identity must be empty or the user name")
)

// Errors the data reader returns for the message being received.
var (
	errBareLineEnding = errors.New("smtp: bare CR or LF in message data")
	errNoMemory       = errors.New("smtp: message buffers exhausted")
)

// dataFailure maps why a message could not be received or archived to the
// reply and the Stats reason. The message is then not archived.
func dataFailure(err error, maxBytes int64) (*gosmtp.SMTPError, reason) {
	var ne net.Error
	switch {
	case errors.Is(err, gosmtp.ErrDataTooLarge) || errors.Is(err, errTooBig):
		// RFC 1870 §6.3 and RFC 5321 §4.2.2 (552); RFC 3463 X.3.4: message
		// too big for system.
		return reply(552, gosmtp.EnhancedCode{5, 3, 4}, "Message exceeds the maximum size of %d bytes", maxBytes), reasonSize
	case errors.Is(err, errBareLineEnding):
		// RFC 5321 §2.3.8 and §4.1.1.4: CR and LF only as CRLF; accepting
		// others is what makes SMTP smuggling possible. 554: transaction
		// failed (§4.2.2); RFC 3463 X.5.2: syntax error.
		return reply(554, gosmtp.EnhancedCode{5, 5, 2}, "Bare CR or LF in message data; lines must end in CRLF (RFC 5321 section 2.3.8)"), reasonLineEnding
	case errors.Is(err, gosmtp.ErrTooLongLine):
		// RFC 5321 §4.5.3.1.6 and §4.2.2 (500, line too long); go-smtp then
		// closes the connection.
		return reply(500, gosmtp.EnhancedCode{5, 5, 2}, "Line too long"), reasonLineLength
	case errors.Is(err, errNoMemory):
		// RFC 5321 §4.2.2: 452 insufficient system storage; RFC 3463 X.3.1:
		// mail system full.
		return reply(452, gosmtp.EnhancedCode{4, 3, 1}, "Insufficient system resources, try again later"), reasonMemory
	case errors.Is(err, errStopped):
		return errShuttingDown, reasonShutdown
	case errors.As(err, &ne) && ne.Timeout():
		// RFC 5321 §4.5.3.2.5 (data block timeout); RFC 3463 X.4.2: bad
		// connection.
		return reply(421, gosmtp.EnhancedCode{4, 4, 2}, "Timeout waiting for message data"), reasonTimeout
	default:
		// The connection broke, or BDAT was reset (gosmtp.ErrDataReset).
		return reply(451, gosmtp.EnhancedCode{4, 3, 0}, "Message transfer aborted"), reasonAborted
	}
}

// archiveFailure maps an Archive error to the reply and reason.
func archiveFailure(err error) (*gosmtp.SMTPError, reason) {
	if errors.Is(err, ingest.ErrRefused) {
		// RFC 5321 §4.2.2 (554 transaction failed); RFC 3463 X.3.0: other
		// mail system status. The archive's reason is shown: it is
		// permanent and says what to fix.
		return reply(554, gosmtp.EnhancedCode{5, 3, 0}, "Archive refused the message: %s", oneLine(err.Error())), reasonArchiveRefused
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return reply(451, gosmtp.EnhancedCode{4, 3, 0}, "Archive timed out, try again later"), reasonArchive
	}
	// DESIGN.md invariant 1: the store or index is unavailable, so 451
	// 4.3.0 and the sending MTA retries. RFC 5321 §4.2.2: local error in
	// processing; RFC 3463 X.3.0.
	return reply(451, gosmtp.EnhancedCode{4, 3, 0}, "Archive temporarily unavailable, try again later"), reasonArchive
}

// archived is the reply to an archived message. RFC 5321 §4.2.2 (250);
// RFC 3463 X.0.0. The text carries the ledger sequence number so the sending
// MTA's log ties its queue ID to the archive's entry.
func archived(r ingest.Receipt) *gosmtp.SMTPError {
	text := fmt.Sprintf("Archived as seq %d", r.Seq)
	switch {
	case r.Replayed:
		text += " (already archived)"
	case r.Duplicate:
		text += fmt.Sprintf(" (content already archived as seq %d)", r.MessageSeq)
	}
	return reply(250, gosmtp.EnhancedCode{2, 0, 0}, "%s", text)
}

func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
