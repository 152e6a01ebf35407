// Package imapview is Cairn's read-only IMAP view: auditors browse and
// search the archive in the mail client they already use. It is the only
// package that imports go-imap's server (github.com/emersion/go-imap/v2
// imapserver, a pinned copy with the patches listed in
// third_party/go-imap/CAIRN-PATCHES.md).
//
// # Invariants
//
//   - Nothing a client sends changes the archive (DESIGN.md invariant 5).
//     APPEND, COPY, MOVE, EXPUNGE, UID EXPUNGE, CREATE, DELETE, RENAME and
//     STORE of \Deleted are refused with NO [NOPERM] on every folder, never
//     with TRYCREATE; APPEND is refused before the client uploads (patch
//     3); CLOSE and UNSELECT remove nothing (patches 1, 2). Flags are the
//     account's own annotations (auth's flags table): STORE under SELECT
//     changes them, EXAMINE and FETCH BODY[] under EXAMINE change nothing.
//   - Every access is audited before it is served, and refused when the
//     audit log cannot record it (fail closed, DESIGN.md invariant 6):
//     login success and failure, SELECT/EXAMINE (mailbox.select), each
//     FETCH batch with its UIDs, ledger seqs and items (message.fetch),
//     each SEARCH with its program (message.search; the audit log keeps a
//     keyed hash of it unless configured otherwise), each flag change and
//     the implicit \Seen of BODY[] (message.flag). UID FETCH commands
//     pipelined behind one another (mbsync sends one per message) are
//     recorded together before the first is served (pipeline.go).
//   - No per-message state in memory: a selected folder is the pair (top
//     UID, ledger mark); sequence numbers are counted through narrow
//     indexes; FETCH pages through SQL, opens at most 8 bodies ahead and
//     streams each through the archive's ranged reader; SEARCH holds the
//     matching UIDs only. An idle connection costs ~14 KiB.
//
// # Folders (virtual, computed from the index)
//
//	INBOX                    every message in the account's scope
//	Custodians/<address>     the messages delivered to one custodian
//	Cases/<case-id>          the messages held for a case (CaseSource)
//	Dates/<yyyy>/<mm>        the messages first received that month (UTC)
//	Custodians, Cases, Dates, Dates/<yyyy>   \Noselect containers
//
// A message's UID in a folder is the ledger seq + 1 of the entry that
// brought it there: in INBOX and Dates/ the message entry itself (so UID =
// seq + 1, as `cairn cat` names it), in Custodians/<address> its first
// delivery to that custodian, in a scoped INBOX its first delivery in
// scope. UIDs are stable forever and never reused, a message that reaches
// a folder late (the same bytes journaled again for another mailbox) gets
// a UID above UIDNEXT, and UIDVALIDITY is derived once from the ledger's
// name and never changes. Folders made of litigation holds (Cases/<id>, a
// case-scoped account's INBOX and Dates/) number a message by its own entry,
// so a hold added to a case can bring in messages below UIDNEXT: their
// UIDVALIDITY adds the count of the case's hold placements and releases
// (CaseSource.Epoch) and grows with it, and clients resynchronize.
//
// New messages appear as EXISTS at the end of every command and, during
// IDLE, within Options.PollInterval; a message disposed of or erased
// (messages.state != 0, with its dispose or erase ledger entry) disappears
// with EXPUNGE where the client may be told.
//
// INTERNALDATE is the time the message was first received (its first
// delivery's received_at: the SMTP receiver's clock, the harvested
// server's INTERNALDATE, the imported file's date), not the archive time:
// that is when the mail arrived, which clients sort and thread by.
//
// # Search
//
// SEARCH, UID SEARCH and ESEARCH (RFC 4731) compile to one SQL query over
// the index (package search, where each key's semantics are written
// down): header keys are substring matches over narrow indexes, BODY and
// TEXT match words through the blind full-text index and, with few
// candidates, are confirmed as phrases by decrypting each.
//
// # Access
//
// Accounts, roles, scopes and the login throttle are package auth's.
// IMAPS (ServeTLS) and STARTTLS are offered; a client not on loopback sees
// LOGINDISABLED until TLS (RFC 9051 §6.2.3). Connections are limited in
// all and per address; a command line over 50 KiB, a literal over 4 KiB
// outside APPEND, and search programs nested deeper than 64 levels are
// refused with clean errors.
//
// Specifications: RFC 9051 (IMAP4rev2, served as IMAP4rev1 plus
// ESEARCH, NAMESPACE, BINARY, CHILDREN, STATUS=SIZE, UNSELECT, IDLE,
// ENABLE, LITERAL-), RFC 3501, RFC 2177 (IDLE), RFC 3516 (BINARY), RFC
// 4731 (ESEARCH), RFC 5530 (response codes), RFC 8314 (implicit TLS).
package imapview
