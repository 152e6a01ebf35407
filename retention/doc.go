// Package retention keeps exactly what the law requires, no less and no
// longer, and freezes what a case needs: retention policies, litigation
// holds, disposal, GDPR erasure, and their S3 Object Lock mapping.
//
// Invariants (DESIGN.md invariant 7, "a hold always wins"):
//
//   - No message is disposed or erased while an active hold covers it. A
//     hold is a set of criteria (custodians, a date range, a search
//     program), evaluated when a decision is taken, so it covers messages
//     archived after it was placed. Every disposal and erasure goes
//     through archive.Store.Dispose, which asks Held at the last moment;
//     the Manager holds retention.db's write lock from that question to the
//     tombstone's commit, and placing a hold takes the same lock, so a
//     hold placed by any process is either seen or placed after the
//     disposal is final.
//   - A message is disposed only when its rule's period has ended. A dry
//     run and a real run at the same instant decide from the same
//     evaluation (one SQL statement over the index, status.go), so the
//     dry run lists exactly what the run disposes.
//   - Erasure (GDPR Art. 17) keeps a message that a hold covers (Art.
//     17(3)(e)) or whose rule is a legal obligation still running (Art.
//     17(3)(b)); it remembers them and erases them in a later run once
//     nothing keeps them. Nothing personal is written to the ledger: the
//     tombstone holds the request id and the operator's reason.
//   - Every hold change, disposal and erasure is audited before it is made
//     (fail closed), and every hold change is a ledger event (hold.place,
//     hold.release) carrying the whole hold, so the object store alone
//     rebuilds retention.db's holds (Open does, for any it lacks).
//   - With S3 Object Lock, each message object carries a retention date
//     equal to its policy expiry and a legal hold while a hold covers it;
//     key objects are never locked, so erasure by key destruction always
//     works (lock.go).
//
// Policies are matched in order; the first rule that matches decides
// (policy.go). Periods are calendar periods (period.go).
package retention
