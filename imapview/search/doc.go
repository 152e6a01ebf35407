// Package search answers IMAP SEARCH (RFC 9051 §6.4.4) and `cairn search`
// from the archive's SQLite index, without decrypting a message for any key
// but a phrase check (below).
//
// A search program is a tree of Nodes, read from IMAP's grammar (by
// imapview, from go-imap's criteria) or from the same grammar as text
// (Parse, for the command line), and compiled to one SQL condition over
// the index (Compile). The semantics of each key, where the index shapes
// them:
//
//   - FROM, TO, CC: case-insensitive substring of the message's addresses
//     as the index holds them (lower-cased "local@domain", from the From,
//     To and Cc fields); display names are not searched. BCC: of the Bcc
//     recipients of any delivery (journal reports and envelopes carry
//     them; the header field usually does not exist).
//   - SUBJECT: substring of the decoded subject (ASCII case-insensitive).
//   - HEADER field string: From, To, Cc, Bcc and Subject as above,
//     Message-ID against the indexed Message-ID; any other field by a scan
//     of the stored header blocks, unfolded and RFC 2047-decoded. An empty
//     string matches every message that has the field.
//   - BODY: the full-text index holds keyed hashes of words, never words
//     (DESIGN.md invariant 4), so BODY is word-based, as Dovecot's FTS
//     plugins make it: the string is split into words exactly as the
//     indexer splits text (archive.Words: runs of letters and digits,
//     lower-cased) and a message matches when its text holds every word.
//     When BODY keys stand in the top-level conjunction of the program and
//     at most Options.ConfirmLimit messages match, each is decrypted and its
//     decoded text must contain the string itself (case-insensitively, white
//     space collapsed) — IMAP's substring rule, for phrases. A string with
//     no word at all matches every message. Parts of words ("budg" for
//     "budget") do not match.
//   - TEXT: BODY's rule, or FROM, TO, CC or SUBJECT's.
//   - SINCE, BEFORE, ON: INTERNALDATE, the time the message was first
//     received (the first delivery's received_at, UTC days).
//     SENTSINCE, SENTBEFORE, SENTON: the Date field (UTC days); a message
//     without a readable Date matches none of them.
//   - LARGER, SMALLER: RFC822.SIZE. UID: the folder's UIDs.
//   - Flags: the searching account's own annotations (auth's flags table);
//     RECENT and NEW match nothing, OLD everything (the archive has no
//     \Recent).
//
// Compile bounds the program: at most MaxDepth levels and MaxNodes keys.
package search
