package harvest

import (
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// DeliveryKey returns the ingest.Envelope.DeliveryKey of a harvested
// message. The format is frozen (changing it would make every harvested
// message look new):
//
//	harvest:v1:<host>:<account>:<folder>:<sha256 of the bytes, hex>
//
// host is the source's host name in lower case, account the login name,
// folder the canonical folder name ("/" between levels, see
// canonicalFolder); each is escaped by escapeKeyPart.
//
// What makes two deliveries "the same" is the mailbox and the bytes, not the
// UID: a UID names a message only within one UIDVALIDITY epoch (RFC 9051
// §2.3.1.1), and the server may renumber a folder at any time (Dovecot does
// when its uidlist is lost, when a folder is recreated or restored, when an
// account is migrated). A key built from the UID would record every message
// of a renumbered folder as a second delivery. This key survives
// renumbering, so a re-scan after a UIDVALIDITY change finds every message
// already recorded (Receipt.Replayed) and archives only what is new. UID,
// UIDVALIDITY, INTERNALDATE and flags are still recorded, in Envelope.Meta.
//
// The price: byte-identical copies of one message in one folder are one
// delivery (the second is answered Replayed and counted as such in the
// status). They carry the same evidence, bytes and mailbox, so nothing is
// lost to the archive; the same bytes in another folder or another account
// are another delivery. A message moved to another folder is a new delivery
// there; renaming a folder makes its messages new deliveries under the new
// name (their bytes are deduplicated).
func DeliveryKey(host, account, folder string, delim rune, sha [32]byte) string {
	return deliveryKeyBase(host, account, folder, delim) + hex.EncodeToString(sha[:])
}

// deliveryKeyBase is the DeliveryKey of a folder without the hash.
func deliveryKeyBase(host, account, folder string, delim rune) string {
	var b strings.Builder
	b.WriteString("harvest:v1:")
	b.WriteString(escapeKeyPart(strings.ToLower(host)))
	b.WriteByte(':')
	b.WriteString(escapeKeyPart(account))
	b.WriteByte(':')
	b.WriteString(escapeKeyPart(canonicalFolder(folder, delim)))
	b.WriteByte(':')
	return b.String()
}

// escapeKeyPart percent-escapes ':' (the key's separator), '%', control
// characters and bytes that are not UTF-8, so that the key is valid text and
// different parts never give the same key.
func escapeKeyPart(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || r < 0x20 || r == 0x7f || r == '%' || r == ':' {
			for k := 0; k < n; k++ {
				c := s[i+k]
				b.WriteByte('%')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&15])
			}
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
