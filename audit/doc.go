// Package audit records every access to the archive and every administrative
// action as a tamper-evident, hash-chained log, and streams it to SIEMs.
//
// The canonical record is Event (schema version SchemaVersion, documented field
// by field in docs/AUDIT.md with its OCSF and ECS mappings). A Log appends
// events to its own chain and implements Recorder.
//
// Invariants:
//   - Fail closed: Record returns a Seq only after the event is committed to
//     the local chain in SQLite (WAL, synchronous=FULL). A caller that cannot
//     record refuses the access it was about to grant.
//   - Hash chain: entry n carries seq n and the SHA-256 of entry n-1; its own
//     hash is the SHA-256 of its exact stored bytes (see Entry). Editing,
//     removing, reordering or inserting an entry breaks the chain or
//     disagrees with a signed checkpoint, and Verify names the seq and kind.
//   - Write-once copies: sealed ranges of the chain are written as segments
//     to the object store (audit/<origin>/<20-digit first seq>.seg), each
//     followed by a signed checkpoint (SPEC: c2sp.org/tlog-checkpoint) over
//     the RFC 9162 Merkle tree of all entries so far.
//   - Sinks never slow Record: each sink reads committed entries from SQLite
//     behind its own durable cursor, in order, at least once, retrying with
//     capped exponential backoff for as long as the destination is down.
//   - Every delivered event carries its seq and hash, so a SIEM can detect
//     gaps and duplicates.
package audit
