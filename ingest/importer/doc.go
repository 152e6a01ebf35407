// Package importer reads mail from mbox files, Maildir folders and .eml files
// and hands every message to an ingest.Archiver. It is the library behind
// `cairn import PATH...`.
//
// # Sources
//
// Each path given to Run is detected by what it is:
//
//   - A directory holding cur/ and new/ is a Maildir
//     (SPEC: https://cr.yp.to/proto/maildir.html). Messages are read from cur/
//     and new/, never tmp/; names starting with a dot are skipped as the
//     spec asks. Maildir++ subfolders (.Sent, .A.B) and nested Maildirs
//     (Dovecot LAYOUT=fs: Archive/2020/cur) are imported too, each recorded
//     as a folder name with "/" between levels ("Sent", "A/B",
//     "Archive/2020"); the top folder is "INBOX".
//   - Any other directory is searched recursively: Maildirs inside it are
//     imported as above, mbox files (first line a From_ line, or named .mbox
//     or .mbx), .eml files and files that look like one RFC 5322 message
//     (MH folders, .raw dumps) are imported; other files are skipped and
//     reported. Hidden entries (a leading dot) are skipped and reported.
//   - A file whose first line is a From_ line (RFC 4155), or that is named
//     .mbox or .mbx, is an mbox. Any other file named on the command line is
//     one message, archived byte for byte.
//   - A file ending in .gz is decompressed first and then detected as above
//     (an .mbox.gz archive, an .eml.gz message).
//   - A Maildir or .eml message file that a server stored compressed
//     (Dovecot's zlib and mail_compress plugins) is archived decompressed:
//     gzip and bzip2 are read, zstd, xz and lz4 are refused with a reason.
//
// # Mbox
//
// A From_ line opens a message and is not part of it. A From_ line is a line
// starting with "From " at the start of the file or after a blank line; the
// one blank line the writer put before it (or at the end of the file) is not
// part of the message either. Line endings (LF or CRLF, even mixed) are kept
// as they are, so a CRLF mbox yields CRLF messages. Quoting is undone
// according to Options.Quoting:
//
//   - QuotingMboxrd (the default) removes one '>' from every line matching
//     ^>+From , which restores exactly the message that went into an mboxrd
//     file.
//   - QuotingMboxo removes the '>' from lines matching ^>From  only. mboxo
//     writers quote "From " but not ">From ", so an original ">From " line is
//     indistinguishable from a quoted "From " line and comes back as
//     "From ": mboxo is lossy and no reader can undo that.
//   - QuotingNone archives the lines as they are in the file.
//
// Reading an mboxo file with the mboxrd rule differs from the mboxo rule only
// on lines starting with two or more '>' before "From ", which are rare;
// reading an mboxrd file with the mboxo rule leaves those lines one '>' too
// deep. So mboxrd is the default. Content-Length based formats (mboxcl,
// mboxcl2) are read as mboxrd; their Content-Length headers are not trusted.
//
// # Invariants
//
//   - Streaming: a worker holds one message at a time and the reader holds at
//     most the message it is reading; an mbox is never read whole. A message
//     over Options.MaxMessageSize is refused and reported with its location,
//     and the import goes on.
//   - Idempotency: every delivery carries a DeliveryKey that depends only on
//     where the message is (see deliveryKey), never on the time or the order
//     of the run, so an import that is killed at any instant and run again
//     neither loses nor duplicates a message: the archive answers a known key
//     with Receipt.Replayed. The key formats are frozen: changing them would
//     make every earlier import look new.
//   - Nothing is counted as imported before the Archiver returned a Receipt,
//     which means durable and committed.
package importer
