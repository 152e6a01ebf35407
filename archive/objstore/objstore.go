// Package objstore is the write-once object storage under the archive:
// message objects, key objects, ledger segments and checkpoints.
//
// Backends: fs (a local folder; the embedded default) and s3 (any S3 with a
// conditional PUT; Object Lock where the bucket has it). Every backend passes
// the conformance suite in objstore/storetest.
//
// Invariants every backend keeps:
//   - Write-once: Put never replaces an existing object. A second Put of the
//     same key fails with ErrExist and leaves the first object unchanged.
//   - Durable on return: when Put returns nil the object is whole, visible
//     and survives a crash (fsync'd file and directory; S3-acknowledged).
//     When Put returns an error, nothing is visible under the key.
//   - A missing object is reported as ErrNotExist, by Get and Stat alike.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Sentinel errors. Backends wrap them; test with errors.Is.
var (
	// ErrNotExist: the object does not exist.
	ErrNotExist = errors.New("objstore: object does not exist")
	// ErrExist: Put found an object already stored under the key.
	ErrExist = errors.New("objstore: object already exists")
	// ErrLocked: Delete refused because the object is under an Object Lock
	// retention period or legal hold.
	ErrLocked = errors.New("objstore: object is locked")
	// ErrInvalidKey: the key does not follow the key syntax (see ValidKey).
	ErrInvalidKey = errors.New("objstore: invalid key")
)

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a write-once object store. Keys follow ValidKey. All methods are
// safe for concurrent use.
type Store interface {
	// Put stores exactly size bytes read from r under key. It fails with
	// ErrExist if key already exists, and with an error if r yields more or
	// fewer than size bytes. A nil return means durable (see the package
	// comment); on error nothing is visible under key.
	Put(ctx context.Context, key string, r io.Reader, size int64) error

	// Get opens the object for reading. It returns ErrNotExist (wrapped) if
	// the object is missing; the check happens before Get returns, not on
	// the first Read. The caller closes the reader.
	Get(ctx context.Context, key string) (io.ReadCloser, error)

	// Stat returns the object's Info, or ErrNotExist.
	Stat(ctx context.Context, key string) (Info, error)

	// Delete removes the object. It returns ErrNotExist if it is missing
	// and ErrLocked if a retention period or legal hold forbids it.
	Delete(ctx context.Context, key string) error

	// List calls fn for every object whose key starts with prefix, in
	// lexical key order. An error from fn stops the walk and is returned.
	// The prefix follows ValidPrefix, else List fails with ErrInvalidKey.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// ReaderAt is an open object that supports ranged reads.
type ReaderAt interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// RangeReader is implemented by stores that read byte ranges without
// fetching the whole object (both fs and s3 do).
type RangeReader interface {
	// OpenReaderAt opens key for ranged reads; ErrNotExist if missing.
	OpenReaderAt(ctx context.Context, key string) (ReaderAt, error)
}

// LockMode is an S3 Object Lock retention mode.
type LockMode string

// Object Lock modes (S3 API names).
const (
	Governance LockMode = "GOVERNANCE"
	Compliance LockMode = "COMPLIANCE"
)

// Lock is the Object Lock state of one object.
type Lock struct {
	Mode        LockMode  // empty when no retention is set
	RetainUntil time.Time // zero when no retention is set
	LegalHold   bool
}

// Locker is implemented by stores whose objects can carry an S3 Object Lock
// (the s3 backend on a bucket created with Object Lock enabled).
type Locker interface {
	// LockEnabled reports whether the bucket has Object Lock enabled.
	LockEnabled(ctx context.Context) (bool, error)
	// SetRetention sets (or extends) the retention of key.
	SetRetention(ctx context.Context, key string, mode LockMode, until time.Time) error
	// SetLegalHold turns the legal hold of key on or off.
	SetLegalHold(ctx context.Context, key string, on bool) error
	// GetLock returns the lock state of key, or ErrNotExist.
	GetLock(ctx context.Context, key string) (Lock, error)
}

// ValidKey checks the key syntax shared by every backend: 1 to 512 bytes of
// segments joined by '/', each segment made of [a-z0-9._-], not starting
// with '.', and 1 to 255 bytes long (the file name limit of common
// filesystems, so that every valid key fits the fs backend).
func ValidKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("%w: %q: length must be 1-512", ErrInvalidKey, key)
	}
	// One pass, no allocation: every read and write checks its key.
	start := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			c := key[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: %q: byte %q not allowed", ErrInvalidKey, key, c)
			}
			continue
		}
		seg := key[start:i]
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w: %q: empty segment or segment starting with '.'", ErrInvalidKey, key)
		}
		if len(seg) > 255 {
			return fmt.Errorf("%w: %q: segment longer than 255 bytes", ErrInvalidKey, key)
		}
		start = i + 1
	}
	return nil
}

// ValidPrefix checks a List prefix: empty (everything), or a string that
// ValidKey accepts, optionally followed by one '/'. A prefix may end in the
// middle of a segment ("messages/a" matches "messages/ab/..."). Any other
// prefix could match no key, so List refuses it with ErrInvalidKey rather
// than report nothing and hide a caller's bug.
func ValidPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := ValidKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("%w (as a List prefix)", err)
	}
	return nil
}

// Batcher is implemented by stores where many objects can be made durable
// together more cheaply than one by one (fs: one syncfs instead of two
// fsyncs per object). The archive writes a batch's objects with PutUnsynced
// and calls Sync once before the ledger segment that references them.
type Batcher interface {
	// PutUnsynced stores like Put (write-once, ErrExist), but the object is
	// durable only after a later Sync returns nil: until then a crash may
	// lose it, or leave it visible but short. Never reference it before.
	PutUnsynced(ctx context.Context, key string, r io.Reader, size int64) error
	// Sync makes every object PutUnsynced stored before the call durable.
	Sync(ctx context.Context) error
}

// FlushesInOrder is implemented by Batchers whose durable Put also makes
// every object PutUnsynced before it durable (an append-only log flushed
// in order, like the volume store): a caller that is about to Put may skip
// the Sync before it.
type FlushesInOrder interface {
	Batcher
	// PutFlushesEarlier reports that a nil Put means every earlier
	// PutUnsynced is durable too.
	PutFlushesEarlier() bool
}

// Prefetcher is implemented by stores that can look up many objects'
// locations at once more cheaply than one by one (the volume store: one
// map.db query instead of one per object). A reader about to open keys calls
// Prefetch first; it is only a hint, and what it finds is used once.
type Prefetcher interface {
	Prefetch(ctx context.Context, keys []string)
}

// Hinter is implemented by stores that can tell where an object they just
// stored lies, and read it back from there without looking it up (the
// volume store: a map.db query per object otherwise, which cost more than
// the read of a small message). A hint is small and opaque, and only ever a
// hint: ReadHint checks that what lies there is key, whole, and fails with
// ErrStaleHint otherwise (the object was deleted, or the hint is not this
// store's); the caller then reads the usual way, which finds the object or
// reports it missing.
type Hinter interface {
	Batcher
	// PutUnsyncedHint is PutUnsynced, returning a hint to the object.
	PutUnsyncedHint(ctx context.Context, key string, r io.Reader, size int64) (hint []byte, err error)
	// ReadHint returns the whole object key from where hint says it lies,
	// if it holds at most max bytes (ErrStaleHint otherwise). If alloc is
	// not nil, what is read goes into a buffer alloc(n) returns (of at
	// least n bytes), in which the returned data lies.
	ReadHint(ctx context.Context, key string, hint []byte, max int64, alloc func(n int) []byte) ([]byte, error)
	// Hint returns a hint to an object already stored (ErrNotExist if it
	// is not), for an index rebuilt from the ledger.
	Hint(ctx context.Context, key string) ([]byte, error)
}

// ErrStaleHint is returned (wrapped) by Hinter.ReadHint when the hint does
// not lead to the object.
var ErrStaleHint = errors.New("objstore: the hint does not lead to the object")

// ContextReader reads from r until ctx is done (a copy into a store stops
// then).
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// SyncDir fsyncs a folder, making the entries added or removed in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
