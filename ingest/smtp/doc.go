// Package smtp is Cairn's SMTP receiver: journaling MTAs (Exchange and
// Microsoft 365 journal rules, Postfix always_bcc / recipient_bcc_maps,
// Google Workspace routing) deliver to it, and every message it accepts is in
// the archive before it says so.
//
// It is built on github.com/emersion/go-smtp v0.25.1, which parses commands,
// un-dot-stuffs DATA and offers PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES,
// CHUNKING, SIZE, STARTTLS and AUTH. This package adds what an archive
// needs around it.
//
// Invariants:
//
//   - 250 means archived (DESIGN.md invariant 1). The reply to DATA or the
//     last BDAT is 250 only after ingest.Archiver.Archive has returned a
//     Receipt, whose ledger sequence number is in the reply text and in the
//     log line. Any Archive error gives 451 4.3.0 (a wrapped
//     ingest.ErrRefused gives 554 5.3.0), and nothing else of the message is
//     kept: it is held in memory only while it is received and archived.
//   - One DATA yields at most one message (SMTP smuggling). go-smtp ends DATA
//     only at <CRLF>.<CRLF>; this package refuses, with 554 5.5.2, any
//     message that contains a CR or LF that is not part of a CRLF pair
//     (RFC 5321 §2.3.8, §4.1.1.4), so "\n.\r\n", "\n.\n", "\r.\r\n" and
//     "\r\r\n.\r\r\n" followed by commands are data of one refused message,
//     never an end of data followed by a second one. One sequence cannot be
//     seen: go-smtp drops the ".\r" of a line that starts with ".\r" not
//     followed by "\n", so such a bare CR is lost before this package reads
//     the data; it can alter a non-conforming message but cannot end one.
//   - Commands pipelined after STARTTLS are discarded (RFC 3207 §4.2):
//     go-smtp replaces its buffered reader with a fresh one on the TLS
//     connection, so bytes that arrived in clear after the STARTTLS line are
//     dropped; the tests prove it with a raw socket.
//   - Memory is bounded before any authentication: command lines by
//     MaxLineLength, recipients by MaxRecipients, sessions by MaxSessions and
//     MaxSessionsPerIP, and the bytes of all messages being received together
//     by MaxBufferedBytes (past it, 452 4.3.1); a refused message is drained
//     by at most MaxMessageBytes more before the connection is dropped.
//   - Sessions archive concurrently; nothing in this package serialises
//     them, so the archive's group commit sees every session at once.
//   - Shutdown answers every session: one between commands gets 421 at
//     once, one in the middle of a message finishes it (archived and
//     answered) and then gets 421.
//
// Every SMTP reply this package chooses is in replies.go, with the RFC that
// defines it. Protocol errors that go-smtp answers itself (syntax, command
// order, SIZE= over the limit at MAIL, too many recipients) keep go-smtp's
// replies. Known go-smtp v0.25.1 behaviour kept as it is:
//
//   - A failed STARTTLS handshake is answered "550 5.0.0 Handshake error" and
//     the session goes on in clear; AUTH stays unavailable there, since it
//     needs a TLS connection.
//   - The idle session told to leave at shutdown reads "421 4.4.2 Idle
//     timeout, bye bye" (go-smtp's text for a read that times out).
//   - DATA of exactly MaxMessageBytes bytes is refused: go-smtp fails the read
//     past the limit before it sees the end of data.
//   - "RCPT TO:<postmaster>" without a domain is a syntax error (501).
//   - A quoted local part is unquoted by go-smtp's parser before the session
//     sees it, so such an address is archived without its quotes.
package smtp
