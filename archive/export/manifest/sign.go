package manifest

import (
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// The manifest signature (manifest.sig) is a signed note
// (SPEC: c2sp.org/signed-note) by the ledger's key whose text is three
// lines:
//
//	cairn-export/v1
//	<export id>
//	<hex SHA-256 of manifest.json>
//
// The first line keeps it from being read as a checkpoint (whose first
// line is the origin and second a decimal size) or a ledger segment (JSON
// lines), which the same key signs.

// SignatureText is the text that manifest.sig signs.
func SignatureText(id string, digest [32]byte) string {
	return Format + "\n" + id + "\n" + hex.EncodeToString(digest[:]) + "\n"
}

// Sign returns manifest.sig for the export id whose manifest.json has
// SHA-256 digest.
func Sign(id string, digest [32]byte, s note.Signer) ([]byte, error) {
	if id == "" || strings.ContainsAny(id, "\n") {
		return nil, fmt.Errorf("manifest: export id %q", id)
	}
	b, err := note.Sign(&note.Note{Text: SignatureText(id, digest)}, s)
	if err != nil {
		return nil, fmt.Errorf("manifest: sign: %w", err)
	}
	return b, nil
}

// OpenSignature checks manifest.sig with v and returns the export id and
// manifest digest it signs.
func OpenSignature(sig []byte, v note.Verifier) (id string, digest [32]byte, err error) {
	n, err := note.Open(sig, note.VerifierList(v))
	if err != nil {
		return "", digest, err
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 4 || lines[0] != Format || lines[1] == "" || lines[3] != "" {
		return "", digest, fmt.Errorf("the signed text is not a %s manifest signature", Format)
	}
	b, err := hex.DecodeString(lines[2])
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != lines[2] {
		return "", digest, fmt.Errorf("the signed digest %q is not 64 lower-case hex digits", lines[2])
	}
	copy(digest[:], b)
	return lines[1], digest, nil
}
