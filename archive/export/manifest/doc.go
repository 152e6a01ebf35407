// Package manifest is the format of a Cairn eDiscovery export and its
// independent verifier: what a court's expert runs, with nothing of the
// archive but its public signing key.
//
// An export folder (docs/FORMAT.md §11) holds the original messages
// byte-identical (one .eml file each, or one mboxrd file), manifest.json,
// manifest.csv, README.txt and manifest.sig. The manifest gives, per
// message, its SHA-256, the salt that opens the ledger's commitments, the
// ledger entry lines of the message and its deliveries, each delivery's
// envelope and each entry's RFC 9162 inclusion proof against one signed
// checkpoint (c2sp.org/tlog-checkpoint). manifest.sig is a signed note
// (c2sp.org/signed-note) over the manifest's SHA-256, by the same ed25519
// key that signs the ledger's checkpoints.
//
// Verify checks all of it and names each problem. Invariants:
//
//   - It trusts only the key it is given: not the key the manifest names,
//     not a root or a size the manifest states outside a signed note.
//   - Every byte of the folder is accounted for: each file is listed (with
//     its SHA-256) by the signed manifest, or it is reported as added.
//   - It reads only inside the folder and only regular files (a symbolic
//     link is reported, never followed), and streams message files, so an
//     export of any size verifies in bounded memory (per message: its
//     manifest record, and in the mbox layout its record).
//
// The package depends on the standard library,
// golang.org/x/mod/sumdb/note and github.com/transparency-dev/merkle only,
// never on the archive's stores, so it can be audited alone.
package manifest
