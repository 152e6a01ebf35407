package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint commits to the first Size entries of a log.
// SPEC: c2sp.org/tlog-checkpoint — origin line, decimal tree size, base64
// root hash, each ending in a newline; signed as a note (c2sp.org/signed-note).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   Hash
}

// Text is the checkpoint body (the note text).
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// Sign returns the signed checkpoint note. The signer's name must be the
// origin.
func (c Checkpoint) Sign(s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("ledger: signer %q cannot sign a checkpoint of origin %q", s.Name(), c.Origin)
	}
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// ErrBadSignature is returned (wrapped) for a checkpoint or segment whose
// signature does not verify with the ledger's public key.
var ErrBadSignature = errors.New("ledger: signature does not verify")

// OpenCheckpoint verifies a signed checkpoint with v and parses it.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return ParseCheckpoint(n.Text)
}

// ParseCheckpoint parses a checkpoint body without checking any signature.
// Extension lines after the root are allowed and ignored.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint: want origin, size and root lines")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint: size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Checkpoint{}, fmt.Errorf("ledger: checkpoint: root %q", lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// CheckpointKey is the object key of the checkpoint of size size.
func CheckpointKey(logID string, size uint64) string {
	return fmt.Sprintf("checkpoints/%s/%020d.ckpt", logID, size)
}

// SegmentKey is the object key of the segment whose first entry is first.
func SegmentKey(logID string, first uint64) string {
	return fmt.Sprintf("ledger/%s/%020d.seg", logID, first)
}

// parseNumberedKey returns the number in ".../<20 digits><suffix>".
func parseNumberedKey(key, suffix string) (uint64, bool) {
	i := strings.LastIndexByte(key, '/')
	name := key[i+1:]
	if !strings.HasSuffix(name, suffix) || len(name) != 20+len(suffix) {
		return 0, false
	}
	n, err := strconv.ParseUint(name[:20], 10, 64)
	return n, err == nil
}

// splitNote separates a note's text from its signature block without
// verifying anything, so a segment whose signature fails can still be read
// and its entries named.
func splitNote(msg []byte) (text []byte, ok bool) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil, false
	}
	return msg[:i+1], true
}
