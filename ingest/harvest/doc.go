// Package harvest pulls mail from IMAP mailboxes into the archive: a
// journal mailbox, or every user's mailbox, continuously and incrementally.
// It is the library behind `cairn harvest run|status` and the harvester
// service of `cairn serve`, built on the go-imap v2 client.
//
// # How a source is read
//
// A Source is one account on one server (implicit TLS, STARTTLS or, on
// loopback, plain; certificates verified unless told otherwise; LOGIN with a
// password from a file or an environment variable, or SASL XOAUTH2 /
// OAUTHBEARER (RFC 7628) with a token from a file or a command). Each pass
// lists the folders (LIST "" "*", RFC 9051 §6.3.9), keeps those the
// include/exclude patterns select (see ParsePattern), and for each folder:
//
//  1. opens it with EXAMINE, read-only (RFC 9051 §6.3.3), or SELECT in
//     journal mode; a folder whose UIDNEXT shows nothing above the cursor
//     costs this one command;
//  2. compares UIDVALIDITY with the folder's cursor; when it changed, the
//     cursor restarts at 0 (RFC 9051 §2.3.1.1) and the folder is read again;
//  3. fetches UIDs above the cursor in batches of Options.BatchSize with
//     UID FETCH (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[]): PEEK never
//     sets \Seen (RFC 9051 §6.4.5). Messages are streamed to Options.Workers
//     concurrent Archive calls (shared by all sources) while the next batch
//     is fetched;
//  4. once every message of a batch has its receipt, removes them in
//     journal mode (UID EXPUNGE, RFC 4315, or UID MOVE, RFC 6851) and then
//     advances the cursor.
//
// Between passes a session waits in IDLE (RFC 2177) on the idle folder,
// archiving new mail there as the server announces it, or simply for the
// poll interval. A failed connection is retried with exponential backoff.
//
// # Invariants
//
//   - Nothing acknowledged is lost (DESIGN.md invariant 1): a folder's
//     cursor passes a message only after the archive returned its receipt
//     (or after the message was skipped and reported), and journal mode
//     removes only messages with a receipt. The cursor can lag (it is
//     written once per batch), never lead.
//   - Nothing is recorded twice: every delivery carries a DeliveryKey made
//     of the host, the account, the folder and the SHA-256 of the bytes, not
//     the UID (see DeliveryKey for why). A kill -9 at any instant, a lost
//     state database or a UIDVALIDITY change makes the next pass read
//     messages again; the archive answers each one already recorded with
//     Receipt.Replayed and writes nothing.
//   - Bytes are archived exactly as the server sends BODY[]; malformed MIME
//     is archived as received and reported (ReportMalformed).
//   - A message that cannot be archived is not retried forever: one the
//     archive refuses (ingest.ErrRefused, e.g. over the size limit) or
//     larger than Options.MaxMessageSize is skipped and reported at once;
//     one the server cannot deliver is tried Options.MaxAttempts times
//     (over several passes) and then skipped and reported (ReportSkipped).
//     A batch during which the connection broke is fetched message by
//     message the next time, to find a message that kills the server.
//   - One failing source never stops the others: each runs on its own.
//   - Memory is bounded whatever the mailbox size: message bytes held (read
//     and not yet archived, over all sources) never exceed
//     Options.MemoryBudget, and per batch only UIDs and receipts are kept.
//   - The harvester never changes a mailbox outside journal mode, and in
//     journal mode never issues a plain EXPUNGE, which would also remove
//     mail another client marked \Deleted.
//
// # Record of a delivery
//
// Each delivery is an ingest.Envelope with Source ingest.SourceHarvest,
// ReceivedAt the INTERNALDATE, Custodians the source's custodian, and Meta
// keys host, account, folder (the server's name), uidvalidity, uid,
// internaldate (RFC 3339), flags (space-separated, as fetched) and
// harvest_source (the source's name).
//
// # State and status
//
// Cursors and status live in a SQLite database (Options.StatePath, e.g.
// <data_dir>/harvest.db), which is not evidence: it can be deleted, and the
// next pass reads everything again without recording anything twice.
// Harvester.Status (and Status on a read-only State, for `cairn harvest
// status` while a harvester runs) returns per source the last pass, the
// last error and the count of consecutive failures, and per folder the
// cursor, the counts (archived, duplicates, replayed, skipped, malformed,
// removed) and the last error.
//
// One Harvester (one process) per state database: the archive's writer
// lock already ensures that.
package harvest
