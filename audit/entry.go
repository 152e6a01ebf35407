package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Seq is an entry's position in the audit chain. The first entry is 1; 0
// means "none" (an empty log, a cursor before the first entry).
type Seq uint64

// Hash is a SHA-256 digest.
type Hash [32]byte

// String returns the lowercase hex form used in entries and on the wire.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero (the prev of entry 1).
func (h Hash) IsZero() bool { return h == Hash{} }

// ParseHash parses a 64-digit lowercase hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("audit: hash %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil || hex.EncodeToString(h[:]) != s {
		return h, fmt.Errorf("audit: hash %q: not lowercase hex", s)
	}
	return h, nil
}

// Entry is one committed event as stored.
//
// Bytes are the exact stored bytes:
//
//	{"v":1,"seq":N,"prev":"<hex SHA-256 of entry N-1's bytes, zeros for N=1>",<event members>}
//
// where <event members> are the canonical encoding of Event without its
// opening brace. Hash is SHA-256(Bytes). Line appends the hash as a last
// member; that is the form written to segments and sinks.
type Entry struct {
	Seq   Seq
	Prev  Hash
	Hash  Hash
	Bytes []byte
	Event Event
}

// ErrMalformed is wrapped by errors from ParseLine and ParseEntry.
var ErrMalformed = errors.New("audit: malformed entry")

// entryBytes builds the stored bytes of an entry from the canonical event
// encoding (which starts with '{').
func entryBytes(dst []byte, seq Seq, prev Hash, event []byte) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, SchemaVersion, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, uint64(seq), 10)
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, prev[:])
	dst = append(dst, `",`...)
	return append(dst, event[1:]...)
}

const hashMember = `,"hash":"`

// Line returns the entry as one JSON object with the hash as its last
// member: Bytes without the closing brace, then ,"hash":"<hex>"}. No newline.
func (e *Entry) Line() []byte {
	return AppendLine(nil, e.Bytes, e.Hash)
}

// AppendLine appends the line form of stored bytes b with hash h.
func AppendLine(dst, b []byte, h Hash) []byte {
	dst = append(dst, b[:len(b)-1]...)
	dst = append(dst, hashMember...)
	dst = hex.AppendEncode(dst, h[:])
	return append(dst, `"}`...)
}

// ParseLine parses the line form (Entry.Line): it splits off the hash
// member, checks that SHA-256 of the remaining bytes equals it, and parses
// the entry. A line whose bytes do not match its hash returns the parsed
// Entry (Hash set to the hash in the line) and an error wrapping
// ErrHashMismatch, so a verifier can name the damaged seq.
func ParseLine(line []byte) (Entry, error) {
	line = bytes.TrimRight(line, "\r\n")
	const tail = len(hashMember) + 64 + 2
	if len(line) < tail+2 || !bytes.HasSuffix(line, []byte(`"}`)) ||
		!bytes.Equal(line[len(line)-tail:len(line)-tail+len(hashMember)], []byte(hashMember)) {
		return Entry{}, fmt.Errorf("%w: no trailing hash member", ErrMalformed)
	}
	h, err := ParseHash(string(line[len(line)-66 : len(line)-2]))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	b := make([]byte, 0, len(line)-tail+1)
	b = append(append(b, line[:len(line)-tail]...), '}')
	e, err := ParseEntry(b)
	if err != nil {
		return e, err
	}
	if e.Hash != h {
		e.Hash = h
		return e, fmt.Errorf("%w: seq %d", ErrHashMismatch, e.Seq)
	}
	return e, nil
}

// ErrHashMismatch: stored bytes do not hash to the hash recorded with them.
var ErrHashMismatch = errors.New("audit: entry bytes do not match their hash")

// ParseEntry parses stored bytes and computes their hash. It checks that
// the prefix is exactly the one entryBytes writes, so two different byte
// strings never parse to the same (seq, prev).
func ParseEntry(b []byte) (Entry, error) {
	var e Entry
	seq, prev, ok := parseHead(b)
	if !ok {
		return e, fmt.Errorf("%w: not in canonical form", ErrMalformed)
	}
	// One decoding pass: the header members are read by parseHead; the
	// event members by json, with the header names bound to ignored fields.
	var w struct {
		V    int    `json:"v"`
		Seq  Seq    `json:"seq"`
		Prev string `json:"prev"`
		Event
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return e, fmt.Errorf("%w: seq %d: %v", ErrMalformed, seq, err)
	}
	if w.V != SchemaVersion || w.Seq != seq {
		return e, fmt.Errorf("%w: seq %d: schema version %d", ErrMalformed, seq, w.V)
	}
	e.Seq, e.Prev, e.Bytes, e.Hash, e.Event = seq, prev, b, sha256.Sum256(b), w.Event
	return e, nil
}

// parseHead reads seq and prev from the canonical prefix of stored bytes
// without decoding the event: the sealer's fast path. It accepts only the
// exact prefix entryBytes writes.
func parseHead(b []byte) (seq Seq, prev Hash, ok bool) {
	const p1 = `{"v":1,"seq":`
	const p2 = `,"prev":"`
	if !bytes.HasPrefix(b, []byte(p1)) {
		return 0, prev, false
	}
	i := len(p1)
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseUint(string(b[i:j]), 10, 64)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != string(b[i:j]) {
		return 0, prev, false
	}
	if !bytes.HasPrefix(b[j:], []byte(p2)) || len(b) < j+len(p2)+64+3 {
		return 0, prev, false
	}
	h, err := ParseHash(string(b[j+len(p2) : j+len(p2)+64]))
	if err != nil || string(b[j+len(p2)+64:j+len(p2)+66]) != `",` || b[len(b)-1] != '}' {
		return 0, prev, false
	}
	return Seq(n), h, true
}
