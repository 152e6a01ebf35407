// Package ledger is Cairn's append-only, hash-chained, Merkle-checkpointed
// log of everything the archive committed: each stored message, each further
// delivery of it, and each disposal, erasure or hold change.
//
// In the manner of Certificate Transparency (RFC 9162), an entry is a small
// commitment, never message content:
//
//   - Entries are JSON objects, one per line; the exact bytes of the line are
//     what is hashed. Each carries its sequence number (0-based, equal to its
//     leaf index) and the SHA-256 of the previous entry's line, so the log is
//     a hash chain; each line is also a leaf of an RFC 9162 §2.1 Merkle tree
//     (leaf hash SHA-256(0x00 || line)).
//   - Committed entries are written to the object store in segments: one
//     write-once object per group commit, "ledger/<log id>/<20-digit first
//     seq>.seg", holding the lines as a signed note (SPEC: c2sp.org/signed-note)
//     so an entry added or edited without the signing key is detected.
//   - Checkpoints (SPEC: c2sp.org/tlog-checkpoint) commit to the tree's size
//     and root, signed by the same ed25519 key, stored as
//     "checkpoints/<log id>/<20-digit size>.ckpt" and handed to the audit log,
//     so copies live outside the archive.
//
// Invariants: Append returns only once the segment is durably stored (the
// entries are committed); on error nothing was committed and the log's state
// is unchanged. Sequence numbers have no gaps. docs/FORMAT.md specifies every
// byte, with test vectors in testdata.
package ledger
