package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Format is the value of a manifest's "format" member.
const Format = "cairn-export/v1"

// The names of an export folder (docs/FORMAT.md §11).
const (
	FileManifest  = "manifest.json"
	FileSignature = "manifest.sig"
	FileCSV       = "manifest.csv"
	FileReadme    = "README.txt"
	DirMessages   = "messages"
	FileMbox      = "messages.mbox"
)

// Layouts of the exported messages.
const (
	LayoutEML  = "eml"  // one file per message: messages/<seq>-<sha256>.eml
	LayoutMbox = "mbox" // one mboxrd file, messages.mbox
)

// EMLName is the path, relative to the export folder, of message seq with
// SHA-256 sha (hex) in the eml layout. The seq is zero-padded to ten
// digits so that names sort in ledger order.
func EMLName(seq uint64, sha string) string {
	return fmt.Sprintf("%s/%010d-%s.eml", DirMessages, seq, sha)
}

// Header is everything in a manifest but its messages.
type Header struct {
	Format string `json:"format"`
	// ID is the export's UUIDv7.
	ID string `json:"id"`
	// Created is when the export was made.
	Created time.Time `json:"created"`
	// CreatedBy is who ran it.
	CreatedBy Actor `json:"created_by"`
	// AuditEvent is the id of the export.create audit event recorded
	// before any message was written.
	AuditEvent string `json:"audit_event,omitempty"`
	// Selection is what was exported: a case's holds, or a query.
	Selection Selection `json:"selection"`
	// Origin is the ledger's origin: the name of its signing key.
	Origin string `json:"origin"`
	// PublicKey is the signing key's public half
	// ("<origin>+<hash>+<base64>"), for reference only: a verifier uses the
	// key it was given, never this one.
	PublicKey string `json:"public_key"`
	// Checkpoint is the signed checkpoint every inclusion proof is against.
	Checkpoint Checkpoint `json:"checkpoint"`
	// Layout is LayoutEML or LayoutMbox.
	Layout string `json:"layout"`
	// Files are the other files the manifest covers: manifest.csv,
	// README.txt and, in the mbox layout, messages.mbox.
	Files []File `json:"files"`
	// Counts are the export's totals.
	Counts Counts `json:"counts"`
}

// Manifest is a whole manifest. In manifest.json, messages is the last
// member, so that a verifier can stream it (Decode).
type Manifest struct {
	Header
	Messages []Message `json:"messages"`
}

// Actor is who made the export (audit.Actor and audit.Source's fields).
type Actor struct {
	User     string `json:"user"`
	Role     string `json:"role,omitempty"`
	AuthMech string `json:"auth_mech,omitempty"`
	Service  string `json:"service,omitempty"`
	IP       string `json:"ip,omitempty"`
}

// Selection says what was exported: the active holds of a case, or the
// messages a search query matched.
type Selection struct {
	Case  string `json:"case,omitempty"`
	Holds []Hold `json:"holds,omitempty"`
	Query string `json:"query,omitempty"`
}

// Hold is one active hold of the exported case, as placed.
type Hold struct {
	ID       string    `json:"id"`
	Reason   string    `json:"reason,omitempty"`
	PlacedAt time.Time `json:"placed_at"`
	PlacedBy string    `json:"placed_by,omitempty"`
	// PlaceEntry is the ledger seq of the hold.place event, -1 while it
	// waits to be recorded.
	PlaceEntry int64 `json:"place_entry"`
	// The criteria: every one given must match.
	Custodians []string `json:"custodians,omitempty"`
	From       string   `json:"from,omitempty"` // YYYY-MM-DD
	To         string   `json:"to,omitempty"`   // YYYY-MM-DD
	Query      string   `json:"query,omitempty"`
}

// Checkpoint is a signed ledger checkpoint (c2sp.org/tlog-checkpoint).
type Checkpoint struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	// Root is the tree's root hash in hex (the note holds it in base64).
	Root string `json:"root"`
	// Signed is the signed note, verbatim: the text and its signature lines.
	Signed string `json:"signed"`
}

// File is a covered file: its path relative to the export folder, SHA-256
// (hex) and size.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Counts are an export's totals.
type Counts struct {
	Messages int64 `json:"messages"`
	// Entries counts ledger entries: one message entry per message plus
	// one delivery entry per further delivery.
	Entries int64 `json:"entries"`
	// Bytes is the sum of the messages' sizes (original bytes).
	Bytes int64 `json:"bytes"`
}

// Message is one exported message.
type Message struct {
	// Seq is the ledger sequence number of the message entry.
	Seq uint64 `json:"seq"`
	// File is the message's file in the eml layout (EMLName).
	File string `json:"file,omitempty"`
	// Mbox is where the message is in messages.mbox, in the mbox layout.
	Mbox *Span `json:"mbox,omitempty"`
	// SHA256 is the hex SHA-256 of the original bytes: of the .eml file,
	// or of the message recovered from its mbox span.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Salt (hex, 32 bytes) opens the ledger's commitments of this message:
	// content = SHA-256(salt || bytes), envelope_commit = SHA-256(salt ||
	// envelope JSON).
	Salt string `json:"salt"`
	// Custodians are the custodians of the included deliveries, derived
	// from their envelopes (Custodians).
	Custodians []string `json:"custodians"`
	// Descriptive fields from the archive's index, for reviewers: the
	// Date field (RFC 3339), the From addresses, the decoded subject, the
	// Message-ID. Signed with the manifest, not derived by a verifier.
	Date      string `json:"date,omitempty"`
	From      string `json:"from,omitempty"`
	Subject   string `json:"subject,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	// Entries are the message entry and its delivery entries up to the
	// checkpoint, in seq order.
	Entries []Entry `json:"entries"`
}

// Span is a message's record in messages.mbox.
type Span struct {
	// Offset and Length delimit the record: its From_ line, the quoted
	// message and the blank line after it.
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	// EOLAdded says the message did not end with a line ending and the
	// writer added one (mbox cannot keep that difference): a reader drops
	// it to get the original bytes.
	EOLAdded bool `json:"eol_added,omitempty"`
}

// Entry is one ledger entry with its inclusion proof.
type Entry struct {
	Seq uint64 `json:"seq"`
	// Line is the entry's line exactly as the ledger holds it.
	Line string `json:"line"`
	// Envelope is the delivery's envelope JSON, exactly as committed.
	Envelope string `json:"envelope"`
	// Proof is the RFC 9162 §2.1.3 inclusion proof of leaf Seq in the
	// checkpoint's tree, hex hashes from the leaf up.
	Proof []string `json:"proof"`
}

// ErrMalformed is returned (wrapped) by Decode and Parse for a manifest
// that is not one.
var ErrMalformed = errors.New("manifest: malformed")

// Decode reads a manifest from r, streaming its messages: it calls
// onHeader once, when it reaches the messages member (which must be the
// last), then onMessage for each message in order. Unknown and duplicate
// members are errors. Either callback may be nil; an error from one stops
// Decode and is returned as is.
func Decode(r io.Reader, onHeader func(*Header) error, onMessage func(*Message) error) error {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := delim(dec, '{'); err != nil {
		return err
	}
	members := map[string]json.RawMessage{}
	sawMessages := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		key, _ := tok.(string)
		if sawMessages {
			return fmt.Errorf("%w: member %q after messages (messages must be last)", ErrMalformed, key)
		}
		if key == "messages" {
			sawMessages = true
			var h Header
			if err := strictUnmarshal(members, &h); err != nil {
				return err
			}
			if err := h.check(); err != nil {
				return err
			}
			if onHeader != nil {
				if err := onHeader(&h); err != nil {
					return err
				}
			}
			if err := decodeMessages(dec, onMessage); err != nil {
				return err
			}
			continue
		}
		if _, dup := members[key]; dup {
			return fmt.Errorf("%w: member %q appears twice", ErrMalformed, key)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: member %q: %v", ErrMalformed, key, err)
		}
		members[key] = raw
	}
	if err := delim(dec, '}'); err != nil {
		return err
	}
	if !sawMessages {
		return fmt.Errorf("%w: no messages member", ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the manifest object", ErrMalformed)
	}
	return nil
}

func decodeMessages(dec *json.Decoder, onMessage func(*Message) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: messages: %v", ErrMalformed, err)
	}
	if tok == nil {
		return fmt.Errorf("%w: messages is null", ErrMalformed)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("%w: messages is not an array", ErrMalformed)
	}
	for i := 0; dec.More(); i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("%w: message %d: %v", ErrMalformed, i, err)
		}
		var m Message
		if err := strictDecode(raw, &m); err != nil {
			return fmt.Errorf("%w: message %d: %v", ErrMalformed, i, err)
		}
		if onMessage != nil {
			if err := onMessage(&m); err != nil {
				return err
			}
		}
	}
	return delim(dec, ']')
}

func delim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: want %q, found %v", ErrMalformed, want, tok)
	}
	return nil
}

func strictUnmarshal(members map[string]json.RawMessage, v any) error {
	b, err := json.Marshal(members)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := strictDecode(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// check refuses a header that a verifier cannot interpret at all; finer
// problems are Verify's to name.
func (h *Header) check() error {
	if h.Format != Format {
		return fmt.Errorf("%w: format %q, want %q", ErrMalformed, h.Format, Format)
	}
	if h.Layout != LayoutEML && h.Layout != LayoutMbox {
		return fmt.Errorf("%w: layout %q, want %q or %q", ErrMalformed, h.Layout, LayoutEML, LayoutMbox)
	}
	return nil
}

// Parse decodes a whole manifest.
func Parse(b []byte) (*Manifest, error) {
	var m Manifest
	err := Decode(bytes.NewReader(b), func(h *Header) error {
		m.Header = *h
		return nil
	}, func(msg *Message) error {
		m.Messages = append(m.Messages, *msg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Writer writes manifest.json, streaming: the header first, then one
// message at a time.
type Writer struct {
	w     io.Writer
	n     int
	err   error
	close bool
}

// NewWriter writes h and opens the messages member.
func NewWriter(w io.Writer, h *Header) (*Writer, error) {
	b, err := marshalIndent(h, "")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	// `{ ...header members...\n}` becomes `{ ...,\n  "messages": [`.
	b = bytes.TrimSuffix(b, []byte("\n}"))
	b = append(b, ",\n  \"messages\": ["...)
	mw := &Writer{w: w}
	_, mw.err = w.Write(b)
	return mw, mw.err
}

// Add writes one message.
func (w *Writer) Add(m *Message) error {
	if w.err != nil {
		return w.err
	}
	b, err := marshalIndent(m, "    ")
	if err != nil {
		w.err = fmt.Errorf("manifest: %w", err)
		return w.err
	}
	sep := ",\n    "
	if w.n == 0 {
		sep = "\n    "
	}
	w.n++
	if _, err := io.WriteString(w.w, sep); err != nil {
		w.err = err
		return err
	}
	_, w.err = w.w.Write(b)
	return w.err
}

// Close ends the manifest. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.err != nil || w.close {
		return w.err
	}
	w.close = true
	_, w.err = io.WriteString(w.w, "\n  ]\n}\n")
	return w.err
}

// marshalIndent is json.MarshalIndent without HTML escaping: a manifest is
// read by people, and "<a1@example.com>" reads better than its \u003c form.
func marshalIndent(v any, prefix string) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent(prefix, "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
