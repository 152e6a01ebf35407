package importer

import "strconv"

// IssueKind classifies an Issue.
type IssueKind int

// Issue kinds.
const (
	// IssueRefused: the message was not archived and retrying will not
	// help: over the size limit, empty, bytes before an mbox's first From_
	// line, or refused by the archive (ingest.ErrRefused).
	IssueRefused IssueKind = iota + 1
	// IssueFailed: the message (or the rest of a file) was not archived
	// because of an error that a rerun may not meet again: a read error or
	// an Archiver error after the retries.
	IssueFailed
	// IssueWarning: the message was archived, byte for byte, and the
	// archive's parser found it malformed (Receipt.Problems).
	IssueWarning
	// IssueSkipped: a file or directory was not imported because it is not
	// mail (or is hidden).
	IssueSkipped
)

// String returns "refused", "failed", "warning" or "skipped".
func (k IssueKind) String() string {
	switch k {
	case IssueRefused:
		return "refused"
	case IssueFailed:
		return "failed"
	case IssueWarning:
		return "warning"
	case IssueSkipped:
		return "skipped"
	}
	return "IssueKind(" + strconv.Itoa(int(k)) + ")"
}

// Issue is one thing worth telling the operator about, with where it was.
type Issue struct {
	Kind IssueKind
	// Path is the file (or directory) as found on disk, absolute.
	Path string
	// Offset is the byte offset of the message's From_ line in an mbox (in
	// the decompressed stream for .gz), or -1.
	Offset int64
	// Reason says what happened, in words.
	Reason string
}

// Location returns "PATH" or, for an mbox message, "PATH:OFFSET".
func (i Issue) Location() string {
	if i.Offset < 0 {
		return i.Path
	}
	return i.Path + ":" + strconv.FormatInt(i.Offset, 10)
}

// String reads "importer: LOCATION: KIND: REASON".
func (i Issue) String() string {
	return "importer: " + i.Location() + ": " + i.Kind.String() + ": " + i.Reason
}

// Summary counts what an import did. Every message found ends in exactly one
// of Archived, Duplicates, Replayed, Refused and Failed; Warnings counts
// messages (of the first three) that the archive found malformed.
type Summary struct {
	// Archived counts new deliveries of bytes new to the archive.
	Archived int64
	// Duplicates counts new deliveries of bytes already archived
	// (Receipt.Duplicate): the same message in two places, or in a second
	// source.
	Duplicates int64
	// Replayed counts messages already imported: their DeliveryKey was
	// known (Receipt.Replayed), so nothing was written.
	Replayed int64
	// Refused counts messages not archived for good (see IssueRefused).
	Refused int64
	// Failed counts messages not archived because of errors (see
	// IssueFailed); a rerun imports them if the cause is gone.
	Failed int64
	// Warnings counts archived messages with parse problems.
	Warnings int64
	// Skipped counts files and directories not imported (see IssueSkipped).
	Skipped int64
	// Bytes is the number of source bytes read (compressed bytes for .gz).
	Bytes int64
	// Issues lists, in the order they happened, up to Options.MaxIssues
	// issues of each kind.
	Issues []Issue
}

// Messages returns the number of messages found: the sum of the outcomes.
func (s Summary) Messages() int64 {
	return s.Archived + s.Duplicates + s.Replayed + s.Refused + s.Failed
}

// Progress is a snapshot handed to Options.Progress.
type Progress struct {
	// Messages is the number of messages finished, whatever the outcome.
	Messages int64
	// Bytes is the number of source bytes finished (compressed bytes for
	// .gz); it reaches TotalBytes at the end of a complete import.
	Bytes int64
	// TotalBytes is the size of every file to read, known before the first
	// message: the sum of the sizes of the files named and found.
	TotalBytes int64
	// Refused and Failed are the counts so far, for a bar that shows
	// trouble as it happens.
	Refused int64
	Failed  int64
}
