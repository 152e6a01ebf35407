// Package ingest defines what every mail source hands to the archive: the raw
// bytes of one message and the Envelope of one delivery of it.
//
// Sources (the SMTP receiver in ingest/smtp, the IMAP harvester in
// ingest/harvest, the importer in ingest/importer) depend only on this
// package and on the Archiver interface; archive.Store implements it.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/internal/jsonenc"
)

// Source names where a delivery came from. It is recorded in the ledger.
const (
	SourceSMTP    = "smtp"    // a plain message received over SMTP; the envelope is MAIL FROM / RCPT TO
	SourceJournal = "journal" // an Exchange / Microsoft 365 envelope journal report, unwrapped
	SourceGoogle  = "google"  // a Google Workspace routing copy (X-Gm-Original-To)
	SourceBcc     = "bcc"     // a Postfix always_bcc / recipient_bcc_maps copy
	SourceHarvest = "harvest" // pulled from an IMAP mailbox
	SourceImport  = "import"  // read from an mbox, a Maildir or an .eml file
)

// RecipientKind says how a recipient was addressed.
type RecipientKind string

// Recipient kinds. Journal reports distinguish To, Cc and Bcc; SMTP envelopes
// and other sources only know that an address was a recipient.
const (
	KindTo        RecipientKind = "to"
	KindCc        RecipientKind = "cc"
	KindBcc       RecipientKind = "bcc"
	KindRecipient RecipientKind = "recipient"
)

// Recipient is one recipient of one delivery.
type Recipient struct {
	Address string        `json:"addr"`
	Kind    RecipientKind `json:"kind"`
	// ExpandedFrom is the distribution list this address was expanded from
	// (Exchange journal ", Expanded: list@example.com"), if any.
	ExpandedFrom string `json:"expanded_from,omitempty"`
	// ForwardedFrom is the mailbox that forwarded the message to this address
	// (Exchange journal ", Forwarded: user@example.com"), if any.
	ForwardedFrom string `json:"forwarded_from,omitempty"`
}

// Envelope describes one delivery of a message: who sent it to whom, how it
// reached the archive and whose mailbox it belongs to. Every field is
// recorded (sealed) in the ledger; none is derived from the message bytes.
type Envelope struct {
	// Source is one of the Source* constants.
	Source string `json:"source"`
	// Sender is the envelope sender (SMTP MAIL FROM, the journal report's
	// Sender: line). Empty for the null reverse-path and for imports.
	Sender string `json:"sender"`
	// Recipients lists every recipient, Bcc included.
	Recipients []Recipient `json:"recipients,omitempty"`
	// Custodians are the mailboxes this delivery belongs to (lower-case
	// addresses). Retention, holds and the IMAP view's Custodians/ folders
	// are keyed on them. When empty, the archive uses the recipients.
	Custodians []string `json:"custodians,omitempty"`
	// ReceivedAt is when the source received the message (SMTP DATA end,
	// IMAP INTERNALDATE, the file's time for imports).
	ReceivedAt time.Time `json:"received_at"`
	// DeliveryKey makes a delivery idempotent: archiving again with a key
	// that is already recorded is a no-op that returns the first receipt.
	// The importer uses the file and offset, the harvester host, account,
	// folder, UIDVALIDITY and UID. Empty means every call is a new delivery.
	DeliveryKey string `json:"delivery_key,omitempty"`
	// Meta carries source details: "client_ip", "helo", "tls" for SMTP;
	// "host", "account", "folder", "uidvalidity", "uid", "flags",
	// "internaldate" for the harvester; "path", "offset" for imports;
	// "journal_malformed" and the like for flags worth keeping.
	Meta map[string]string `json:"meta,omitempty"`
	// Evidence is kept, sealed, beside the delivery: for an Exchange journal
	// report, the report itself (without the attached original). Optional.
	Evidence []byte `json:"-"`
}

// MarshalJSON returns the envelope as the archive records it: the bytes
// json.Marshal wrote for this struct by reflection (FuzzEnvelopeJSON
// compares them), built without it, since every delivery costs one.
func (e *Envelope) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"source":`...)
	b = jsonenc.String(b, e.Source)
	b = append(b, `,"sender":`...)
	b = jsonenc.String(b, e.Sender)
	if len(e.Recipients) > 0 {
		b = append(b, `,"recipients":[`...)
		for i, r := range e.Recipients {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"addr":`...)
			b = jsonenc.String(b, r.Address)
			b = append(b, `,"kind":`...)
			b = jsonenc.String(b, string(r.Kind))
			if r.ExpandedFrom != "" {
				b = append(b, `,"expanded_from":`...)
				b = jsonenc.String(b, r.ExpandedFrom)
			}
			if r.ForwardedFrom != "" {
				b = append(b, `,"forwarded_from":`...)
				b = jsonenc.String(b, r.ForwardedFrom)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(e.Custodians) > 0 {
		b = append(b, `,"custodians":`...)
		b = jsonenc.Strings(b, e.Custodians)
	}
	b = append(b, `,"received_at":`...)
	b, err := jsonenc.Time(b, e.ReceivedAt)
	if err != nil {
		return nil, fmt.Errorf("ingest: envelope: received_at: %w", err)
	}
	if e.DeliveryKey != "" {
		b = append(b, `,"delivery_key":`...)
		b = jsonenc.String(b, e.DeliveryKey)
	}
	if len(e.Meta) > 0 {
		b = append(b, `,"meta":`...)
		b = jsonenc.StringMap(b, e.Meta)
	}
	return append(b, '}'), nil
}

// Validate reports the first problem that makes e unusable.
func (e *Envelope) Validate() error {
	if e == nil {
		return errors.New("ingest: envelope is nil")
	}
	switch e.Source {
	case SourceSMTP, SourceJournal, SourceGoogle, SourceBcc, SourceHarvest, SourceImport:
	case "":
		return errors.New("ingest: envelope has no source")
	default:
		return fmt.Errorf("ingest: unknown source %q", e.Source)
	}
	if e.ReceivedAt.IsZero() {
		return errors.New("ingest: envelope has no received time")
	}
	for _, r := range e.Recipients {
		switch r.Kind {
		case KindTo, KindCc, KindBcc, KindRecipient:
		default:
			return fmt.Errorf("ingest: recipient %q has unknown kind %q", r.Address, r.Kind)
		}
	}
	return nil
}

// CustodianList returns the custodians of the delivery: Custodians if set,
// else every recipient address, lower-cased and without duplicates.
func (e *Envelope) CustodianList() []string {
	src := e.Custodians
	if len(src) == 0 {
		src = make([]string, 0, len(e.Recipients))
		for _, r := range e.Recipients {
			src = append(src, r.Address)
		}
	}
	out := make([]string, 0, len(src))
	seen := make(map[string]bool, len(src))
	for _, a := range src {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}

// Receipt is the archive's promise that one delivery is durable: the message
// object and its key object are written (fsync'd or S3-acknowledged) and the
// ledger entry is committed. A source may acknowledge the message (SMTP 250,
// advance a harvest cursor) only once it holds a receipt.
type Receipt struct {
	// Seq is the ledger sequence number of this delivery's entry.
	Seq uint64
	// MessageSeq is the ledger sequence number of the entry that stored the
	// message bytes; it equals Seq unless the bytes were already archived.
	MessageSeq uint64
	// SHA256 is the SHA-256 of the raw message bytes.
	SHA256 [32]byte
	// Duplicate is true when the bytes were already archived, so this
	// delivery was recorded against the existing message.
	Duplicate bool
	// Replayed is true when the DeliveryKey was already recorded, so nothing
	// was written and Seq is the earlier delivery's.
	Replayed bool
	// Problems lists what the MIME parser found malformed. The message is
	// archived byte for byte regardless; these are warnings, not errors.
	Problems []string
}

// Archiver is the archive's single write path as sources see it.
type Archiver interface {
	// Archive stores one delivery of raw. It returns a Receipt only once the
	// delivery is durable and committed; on any error nothing of this
	// delivery is acknowledged and the caller must treat it as not archived
	// (SMTP 451, harvest cursor not advanced). Malformed MIME is not an
	// error: it is archived byte for byte and the problem recorded.
	// ErrRefused (wrapped) marks a permanent refusal, such as a message over
	// the size limit; every other error is temporary. Archive keeps no
	// reference to raw once it returns, whatever it returns: the caller may
	// reuse its buffer.
	Archive(ctx context.Context, env *Envelope, raw []byte) (Receipt, error)
}

// An Announcer is an Archiver that a source can tell, ahead of Archive,
// that a message is coming; archive.Store's group commit then waits briefly
// for it instead of committing a batch without it (a batch begun before the
// announcement does not wait: the next one does). Announce returns the
// context to derive that message's Archive context from (Archive withdraws
// the announcement once the message is queued) and a function that
// withdraws it, for a message that does not come; calling it again is
// harmless. A source must withdraw every announcement it does not archive.
type Announcer interface {
	Announce(ctx context.Context) (context.Context, func())
}

// AckWhenDurable marks ctx for an Archive call whose caller needs only the
// acknowledgement, such as the SMTP receiver's 250: archive.Store may then
// return the Receipt as soon as the delivery is durable, its objects
// written and its ledger entry committed (invariant 1), while more
// deliveries are on their way, and list it in the index a few milliseconds
// later, in one transaction with the deliveries that follow. The index is
// rebuilt from the ledger after a crash, so nothing acknowledged depends on
// it. Without the mark, Archive returns once the index lists the delivery
// too: a caller that archives and then reads finds what it archived.
func AckWhenDurable(ctx context.Context) context.Context {
	return context.WithValue(ctx, ackWhenDurable{}, true)
}

// AcksWhenDurable reports whether ctx carries AckWhenDurable's mark.
func AcksWhenDurable(ctx context.Context) bool {
	v, _ := ctx.Value(ackWhenDurable{}).(bool)
	return v
}

type ackWhenDurable struct{}

// ErrRefused wraps permanent refusals from an Archiver: retrying the same
// message will fail the same way.
var ErrRefused = errors.New("ingest: message refused")
