package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairn-archive/cairn/internal/jsonenc"
)

// Entry kinds.
const (
	KindMessage  = "message"  // new message bytes stored, with their first delivery
	KindDelivery = "delivery" // a further delivery of an archived message (Ref)
	KindDispose  = "dispose"  // a message disposed under a retention policy (Ref)
	KindErase    = "erase"    // a message erased on request, e.g. GDPR Art. 17 (Ref)
	KindEvent    = "event"    // an administrative event: holds, key rotation
)

// Version is the entry format version.
const Version = 1

// Entry is one ledger entry. Field order is the encoding order.
type Entry struct {
	V    int       `json:"v"`
	Seq  uint64    `json:"seq"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// Prev is the hex SHA-256 of the previous entry's line; 64 zeros for
	// entry 0.
	Prev string `json:"prev"`
	// Ref is the sequence number of the message entry this entry concerns
	// (delivery, dispose, erase).
	Ref      *uint64   `json:"ref,omitempty"`
	Message  *Message  `json:"message,omitempty"`
	Delivery *Delivery `json:"delivery,omitempty"`
	Event    *Event    `json:"event,omitempty"`
}

// Message commits to stored message bytes.
type Message struct {
	// Content is hex SHA-256(salt || original bytes); the salt lives in the
	// key object, so erasing the key makes the commitment unconfirmable.
	Content string `json:"content"`
	// Size of the original bytes.
	Size int64 `json:"size"`
	// Object is the message object's key; ObjectSHA256 and ObjectSize are
	// those of the stored (encrypted) object.
	Object       string `json:"object"`
	ObjectSHA256 string `json:"object_sha256"`
	ObjectSize   int64  `json:"object_size"`
	// KeyObject is the key object's key.
	KeyObject string `json:"key_object"`
}

// Delivery commits to one delivery's envelope.
type Delivery struct {
	// Envelope is the envelope JSON sealed under the message key (base64).
	Envelope string `json:"envelope"`
	// EnvelopeCommit is hex SHA-256(salt || envelope JSON).
	EnvelopeCommit string `json:"envelope_commit"`
	// Evidence is the key of a sealed evidence object (an Exchange journal
	// report), with its SHA-256; empty when there is none.
	Evidence       string `json:"evidence,omitempty"`
	EvidenceSHA256 string `json:"evidence_sha256,omitempty"`
}

// Event records an administrative act: dispose and erase reasons, hold
// changes, key rotation. Fields are free-form strings (sorted by key).
type Event struct {
	Type   string            `json:"type"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Marshal returns the entry's line (without the trailing newline).
// The bytes are json.Marshal's (FuzzEntryMarshal compares them), written
// without reflection: every message costs two entries.
func (e *Entry) Marshal() ([]byte, error) {
	b := make([]byte, 0, e.sizeHint())
	b = append(b, `{"v":`...)
	b = jsonenc.Int(b, int64(e.V))
	b = append(b, `,"seq":`...)
	b = jsonenc.Uint(b, e.Seq)
	b = append(b, `,"kind":`...)
	b = jsonenc.String(b, e.Kind)
	b = append(b, `,"time":`...)
	b, err := jsonenc.Time(b, e.Time)
	if err != nil {
		return nil, fmt.Errorf("ledger: marshal entry %d: %w", e.Seq, err)
	}
	b = append(b, `,"prev":`...)
	b = jsonenc.String(b, e.Prev)
	if e.Ref != nil {
		b = append(b, `,"ref":`...)
		b = jsonenc.Uint(b, *e.Ref)
	}
	if m := e.Message; m != nil {
		b = append(b, `,"message":{"content":`...)
		b = jsonenc.String(b, m.Content)
		b = append(b, `,"size":`...)
		b = jsonenc.Int(b, m.Size)
		b = append(b, `,"object":`...)
		b = jsonenc.String(b, m.Object)
		b = append(b, `,"object_sha256":`...)
		b = jsonenc.String(b, m.ObjectSHA256)
		b = append(b, `,"object_size":`...)
		b = jsonenc.Int(b, m.ObjectSize)
		b = append(b, `,"key_object":`...)
		b = jsonenc.String(b, m.KeyObject)
		b = append(b, '}')
	}
	if d := e.Delivery; d != nil {
		b = append(b, `,"delivery":{"envelope":`...)
		b = jsonenc.String(b, d.Envelope)
		b = append(b, `,"envelope_commit":`...)
		b = jsonenc.String(b, d.EnvelopeCommit)
		if d.Evidence != "" {
			b = append(b, `,"evidence":`...)
			b = jsonenc.String(b, d.Evidence)
		}
		if d.EvidenceSHA256 != "" {
			b = append(b, `,"evidence_sha256":`...)
			b = jsonenc.String(b, d.EvidenceSHA256)
		}
		b = append(b, '}')
	}
	if ev := e.Event; ev != nil {
		b = append(b, `,"event":{"type":`...)
		b = jsonenc.String(b, ev.Type)
		if len(ev.Fields) > 0 {
			b = append(b, `,"fields":`...)
			b = jsonenc.StringMap(b, ev.Fields)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// sizeHint is about the length of e's line, escapes aside.
func (e *Entry) sizeHint() int {
	n := 128 + len(e.Kind) + len(e.Prev)
	if m := e.Message; m != nil {
		n += 128 + len(m.Content) + len(m.Object) + len(m.ObjectSHA256) + len(m.KeyObject)
	}
	if d := e.Delivery; d != nil {
		n += 96 + len(d.Envelope) + len(d.EnvelopeCommit) + len(d.Evidence) + len(d.EvidenceSHA256)
	}
	if ev := e.Event; ev != nil {
		n += 32 + len(ev.Type)
		for k, v := range ev.Fields {
			n += 6 + len(k) + len(v)
		}
	}
	return n
}

// ParseEntry decodes a line strictly: unknown fields, a wrong version, or a
// line that does not re-encode to the same bytes are errors, so that no two
// lines can mean the same entry.
func ParseEntry(line []byte) (*Entry, error) {
	if e, ok := parseCanonical(line); ok && e.V == Version {
		if again, err := e.Marshal(); err == nil && bytes.Equal(again, line) {
			return e, nil
		}
	}
	return parseStrict(line)
}

// parseStrict is ParseEntry with encoding/json, for every line
// parseCanonical does not take (and the errors of those that fail).
func parseStrict(line []byte) (*Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var e Entry
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("ledger: entry does not parse: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("ledger: trailing data after entry")
	}
	if e.V != Version {
		return nil, fmt.Errorf("ledger: entry version %d, want %d", e.V, Version)
	}
	again, err := e.Marshal()
	if err != nil || !bytes.Equal(again, line) {
		return nil, fmt.Errorf("ledger: entry %d is not in canonical form", e.Seq)
	}
	return &e, nil
}

// Hash is an entry hash: SHA-256 of its line.
type Hash [32]byte

// String is the lower-case hex form used in entries.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// EntryHash returns SHA-256(line): what the next entry's Prev holds.
func EntryHash(line []byte) Hash { return sha256.Sum256(line) }

// LeafHash returns the RFC 9162 §2.1.1 leaf hash SHA-256(0x00 || line).
func LeafHash(line []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(line)
	var out Hash
	h.Sum(out[:0])
	return out
}

// ParseHash decodes a 64-hex-digit hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("ledger: hash %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("ledger: hash %q: %w", s, err)
	}
	return h, nil
}
