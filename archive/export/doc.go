// Package export writes eDiscovery exports: the original messages of a
// case (the messages its active litigation holds cover) or of a search,
// byte for byte, with a signed manifest that lets anyone check them
// against the archive's ledger without the archive (DESIGN.md invariant 2).
// The format is docs/FORMAT.md §11; its verifier is archive/export/manifest.
//
// Run is the one entry point, for the CLI (cairn export) and the HTTP API
// alike. Its invariants:
//
//   - Audited, fail closed: the export.create event (case, the query as a
//     keyed hash, the ledger seqs, count, bytes, format) is recorded before
//     any message is written; a failure after that is recorded too.
//   - Every message is proven: its bytes open the ledger's content
//     commitment with the message's salt, and each of its entries has an
//     RFC 9162 inclusion proof against one signed checkpoint, which covers
//     every exported entry. On a writable store Run signs a fresh one; on
//     a read-only store (cairn serve writes) it takes the newest stored one
//     and refuses messages it does not cover (ErrUncovered).
//   - Nothing half-made looks finished: the export is written under a
//     temporary name beside the output folder, verified with the
//     independent verifier exactly as a recipient will, and only then
//     renamed into place. Files are created 0600: they hold plaintext mail.
//   - Memory does not grow with the archive: proofs come from one
//     streaming pass over the index's leaf hashes, keeping only the tree
//     nodes the proofs need; messages are streamed (the mbox layout holds
//     one message at a time to quote it).
package export
