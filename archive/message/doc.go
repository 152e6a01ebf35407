// Package message parses a mail message once, at ingest, into a tree of
// Parts with byte offsets, so that the IMAP view can later answer ENVELOPE,
// BODYSTRUCTURE, BODY[section], BINARY[section] and searches from the
// stored structure and the raw bytes without parsing the MIME structure
// again. The tree is stored in the index with MarshalBinary and read back
// with Unmarshal.
//
// # Invariants
//
//   - Parse never fails and never panics. Whatever is malformed is reported
//     as a Problem and the best structure possible is returned; the message
//     itself is archived byte for byte (DESIGN.md invariant 8).
//   - Offsets are absolute in the raw message, also inside embedded
//     messages. For every part HeaderStart <= BodyStart <= BodyEnd <=
//     len(raw); children lie inside the parent's body, in order; the root
//     spans all of raw (HeaderStart 0, BodyEnd len(raw)).
//   - A part is multipart exactly when it has children, and message/rfc822
//     or message/global exactly when it has an embedded Message.
//   - Work is bounded: at most MaxDepth levels and MaxParts parts, linear
//     time in the message size (times the nesting depth), no copy of
//     header or body bytes beyond the field values kept.
//
// # How malformed MIME is read
//
// The rules follow RFC 5322, RFC 2045-2047, RFC 2183 and RFC 2231 where
// the message follows them, and what Dovecot and common clients do where
// it does not:
//
//   - Line ends may be CRLF, LF or mixed. The line break before a boundary
//     delimiter belongs to the delimiter (RFC 2046 §5.1.1).
//   - The header ends at the first empty line, or at a delimiter line of
//     an enclosing multipart, or at the end of the input (a header-only
//     message). A line starting with white space continues the previous
//     field; a line without a colon after a field is taken as a wrongly
//     folded continuation; junk before the first field is skipped; an
//     entity whose first line is no header field at all has an empty
//     header and starts its body there. An mbox "From " line at the top of
//     a message is skipped.
//   - A delimiter line is "--" boundary, optionally "--", then only
//     white space. Delimiters of all enclosing multiparts are recognised,
//     innermost first; an enclosing one ends the inner multipart (whose
//     close delimiter was missing). A missing close delimiter ends the
//     multipart at the end of its parent.
//   - A Content-Type that cannot be used means text/plain; charset=
//     us-ascii (RFC 2045 §5.2), so does a multipart without boundary
//     parameter or without any delimiter line. Parameters are read
//     leniently: unquoted values with tspecials or spaces, missing closing
//     quotes, missing ";", duplicates (the first wins), RFC 2231
//     continuations and charsets.
//   - A message/rfc822 or message/global part with a transfer encoding
//     other than 7bit, 8bit or binary is kept as an application/octet-
//     stream leaf, since its message is not in raw as such.
//
// # Binary encoding (version 1)
//
// MarshalBinary writes one version byte (1), then the root part. Integers
// are unsigned LEB128 varints (encoding/binary Uvarint). A string is a
// varint x: if x is odd, the string is entry (x-1)/2 of a fixed dictionary
// of common MIME words (see dict in binary.go, frozen for version 1);
// otherwise x/2 bytes of the string follow. A part is:
//
//	flags        varint; bit i set: the field marked i below is present
//	headerDelta  varint; HeaderStart minus the base (0 for the root; the
//	             parent's BodyStart for its first child and for an
//	             embedded message; the previous sibling's BodyEnd after)
//	headerLen    varint; BodyStart - HeaderStart
//	bodyLen      varint; BodyEnd - BodyStart
//	type         string
//	subtype      string
//	0  lines        varint
//	1  params       varint n, then n × (name string, value string)
//	2  encoding     string
//	3  disposition  string, then params as in 1
//	4  envelope     date, subject (strings); from, sender, reply-to, to,
//	                cc, bcc (each varint n, then n × (name, route, mailbox,
//	                host strings)); in-reply-to, message-id (strings)
//	6  id           string
//	7  description  string
//	8  md5          string
//	9  language     varint n, then n strings
//	10 location     string
//	5  parts        varint n >= 1, then n parts
//	11 message      one part: the embedded message
//
// Nothing follows the root part. A typical 10 KB message encodes to 200-400
// bytes. testdata/golden-v1.bin is the committed test vector.
//
// # Specifications
//
// RFC 5322 (message format), RFC 2045, RFC 2046, RFC 2047, RFC 2231 (MIME),
// RFC 2183 (Content-Disposition), RFC 3282 (Content-Language), RFC 2557
// (Content-Location), RFC 1864 (Content-MD5), RFC 6532 (message/global),
// RFC 9051 §6.4.5 and §7.5.2 (IMAP sections, ENVELOPE, BODYSTRUCTURE),
// RFC 3516 (BINARY).
package message
