// Package crypto holds Cairn's keys and the symmetric sealing of everything
// stored: per-message file keys, key objects, sealed envelopes and evidence.
//
// Keys, from the outside in (docs/FORMAT.md gives the exact bytes):
//
//   - The archive identity: age X25519 identities in a key file (0600), the
//     newest last. It is used once at start-up, to open the key-encryption
//     keys; never per message (one X25519 operation costs ~160 µs here).
//   - Key-encryption keys (KEKs): 32 random bytes each, stored in the object
//     store as age files encrypted to the archive identity and to optional
//     escrow recipients, so the object store plus the identity is enough to
//     read everything (invariant 3). A KEK object also carries the archive
//     secret, from which object-name, index and search keys are derived; it
//     is the same in every KEK, so names stay stable across rotations.
//     Rotation adds a new identity and a new KEK; new messages use the newest
//     KEK, old ones stay readable through theirs.
//   - Message keys: every message is age-encrypted under its own fresh file
//     key. The file key and the salt of the ledger's content commitment are
//     wrapped under the current KEK (XChaCha20-Poly1305) into a small key
//     object of their own, bound to the message object's name. Deleting the
//     key object erases the message, its sealed envelopes and the ability to
//     confirm its content hash, wherever copies of the message object remain
//     (crypto-shredding, invariant 4).
//   - The ledger signing key: ed25519, in the golang.org/x/mod/sumdb/note key
//     format, named after the ledger's origin. It signs ledger segments and
//     checkpoints (SPEC: c2sp.org/signed-note, c2sp.org/tlog-checkpoint).
package crypto
