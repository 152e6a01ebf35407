// Package journal classifies one message received over SMTP and, for an
// Exchange envelope journal report, unwraps it: the original message's bytes
// become the archived message and the report's envelope becomes the
// delivery's ingest.Envelope.
//
// Four kinds of delivery are recognised, in this order:
//
//   - An Exchange 2007+ / Exchange Online envelope journal report (header
//     X-MS-Journal-Report). SPEC: [MS-XJRNL] §2.1 "Envelope-Part Structure"
//     and Exchange 2007's "Journal report format" ABNF. The report body lists
//     Sender:, Subject:, Message-ID: and one To:/Cc:/Bcc:/Recipient: line per
//     envelope recipient, each optionally followed by ", Expanded: list" or
//     ", Forwarded: mailbox"; the original is attached as message/rfc822.
//     Exchange writes the report text in the charset that best fits the
//     subject, quoted-printable when the subject needs 8 bits, and writes
//     "Unspecified Address" for a missing sender, which is read as the null
//     reverse-path.
//   - A Google Workspace routing copy (header X-Gm-Original-To).
//   - A Postfix always_bcc / recipient_bcc_maps / sender_bcc_maps copy: an
//     envelope recipient that is one of Options.ArchiveAddresses, or the
//     headers X-Original-To / Delivered-To that Postfix local delivery adds.
//   - Anything else: a plain message whose envelope is the SMTP one.
//
// Invariants:
//
//   - Nothing is dropped. Classify never fails: a journal report that cannot
//     be unwrapped (no attachment, garbled lines, broken MIME) is returned
//     whole, as received, with Meta["journal_malformed"] naming the problem
//     and the SMTP envelope as its envelope.
//   - The original is never re-encoded. When the message/rfc822 part has the
//     identity transfer encodings (7bit, 8bit, binary, or none), the bytes
//     returned are a sub-slice of the input: exactly the part's body as MIME
//     delimits it (RFC 2046 §5.1.1: the CRLF before the next boundary belongs
//     to the boundary). When Exchange has base64- or quoted-printable-encoded
//     the part (RFC 2046 §5.2.1 forbids it, but a downconverting hop may do
//     it), the bytes returned are the decoded body: base64 is lossless; for
//     quoted-printable the result is exact for a conforming encoder (trailing
//     unencoded white space on a line is transport padding and is removed,
//     RFC 2045 §6.7 rule 3). Meta["journal_transfer_encoding"] records the
//     encoding in that case.
//   - Two reports that carry the same attached bytes (Exchange bifurcation)
//     yield byte-identical originals, whatever boundary, line endings or
//     transfer encoding each report used for its own text and for the
//     attachment, because only the attached part's (decoded) body is
//     returned; the archive then stores one message with two deliveries.
//     Exchange does not always attach the same bytes, though: its journaling
//     agent adds the fork's Bcc recipients (from
//     X-MS-Exchange-Organization-BCC) to the embedded message as a Bcc:
//     header, and stamps a charset on a body part that lacks one. Forks whose
//     Bcc sets differ therefore carry different originals, and Cairn archives
//     both as received: it never normalises a message to make it deduplicate.
//   - The Evidence of a report is the received report with the attached
//     original's body cut out, so the report's own headers and text are kept
//     beside the delivery without storing the message twice.
//
// The envelope of a journal report, a Google copy or a Postfix copy comes
// from bytes the sending MTA wrote; it is as trustworthy as the clients the
// SMTP receiver lets in (its allowed networks and AUTH).
package journal
