package imapview

import (
	"context"
	"errors"
	"log/slog"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/message"
	"github.com/cairn-archive/cairn/imapview/search"
)

// The view's refusals, each with its response code (RFC 9051 §7.1,
// RFC 5530). Every command that would change the archive gets errReadOnly.
var (
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: "The archive is read-only: nothing can be added, changed, moved or deleted"}
	errExamined = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: "The folder was opened with EXAMINE: flags cannot be changed"}
	errDeleteFlag = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: `The archive is read-only: \Deleted cannot be set`}
	errNoSubscriptionChange = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNoPerm,
		Text: "Every folder is subscribed; subscriptions cannot change"}
	errNonexistent = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent,
		Text: "No such folder"}
	errNoSelect = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot,
		Text: "This folder only holds other folders"}
	errAuditDown = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: "The audit log cannot record this access, so it is refused; try again later"}
	errTooManyConns = &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeLimit,
		Text: "Too many connections"}
	errExpungeIssued = &imap.Error{Type: imap.StatusResponseTypeNo, Code: "EXPUNGEISSUED", // RFC 9051 §7.1
		Text: "Some of the messages were disposed of or cannot be read"}
	errUnknownCTE = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
		Text: "The part's Content-Transfer-Encoding cannot be decoded"}
	errSearchLimit = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeLimit,
		Text: "The search program is too large"}
	errUnavailable = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
		Text: "The archive is unavailable; try again later"}
)

// errAudit marks a failure to record an audit event.
type errAudit struct{ err error }

func (e errAudit) Error() string { return "audit: " + e.err.Error() }
func (e errAudit) Unwrap() error { return e.err }

// imapError maps an error of the view to the IMAP response the client
// gets; unexpected ones are logged and answered NO [SERVERBUG] without
// detail (the log has it).
func imapError(lg *slog.Logger, op string, err error) error {
	if err == nil {
		return nil
	}
	var ie *imap.Error
	var ea errAudit
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.As(err, &ea):
		lg.Error("audit event not recorded: access refused", "op", op, "err", ea.err)
		return errAuditDown
	case errors.Is(err, errNoFolder):
		return errNonexistent
	case errors.Is(err, message.ErrUnknownEncoding):
		return errUnknownCTE
	case errors.Is(err, search.ErrSyntax):
		return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: err.Error()}
	case errors.Is(err, archive.ErrUnreadable):
		return errExpungeIssued
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable
	}
	lg.Error("imap command failed", "op", op, "err", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error; the server log has details"}
}
