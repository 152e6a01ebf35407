package importer

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Defaults for Options fields left zero.
const (
	// DefaultWorkers is the number of messages archived at once. The
	// archive group-commits what its writers hand it at once, so its rate
	// grows with concurrency: measured on the 2-core reference machine with
	// the volume store, 1,100 msgs/s at 16 writers, 1,600 at 32, 1,800 at 64.
	DefaultWorkers = 64
	// DefaultMemoryBudget bounds the bytes of messages held in memory by
	// the workers and the reader together.
	DefaultMemoryBudget = 256 << 20
	// DefaultMaxMessageSize is the largest message imported: 50 MiB, above
	// the 25-35 MB limits of common mail services once base64 is counted.
	// Messages in memory are bounded by DefaultMemoryBudget, whatever the
	// number of workers.
	DefaultMaxMessageSize = 50 << 20
	// DefaultRetries is how often a temporary Archiver error is retried.
	DefaultRetries = 3
	// DefaultMaxFailures is how many failed messages stop an import: past
	// that the archive is most likely down, and a rerun is exact.
	DefaultMaxFailures = 100
	// DefaultMaxIssues is how many issues of each kind a Summary keeps.
	DefaultMaxIssues = 1000
	// DefaultProgressInterval is the time between two Progress calls.
	DefaultProgressInterval = 200 * time.Millisecond
)

// ErrTooManyFailures is returned (wrapped) by Run when it stopped because
// Options.MaxFailures messages failed.
var ErrTooManyFailures = errors.New("importer: too many failures")

// Options tune Run. The zero value is usable: every zero field takes its
// default.
type Options struct {
	// Custodians become every Envelope's Custodians (lower-cased). Imports
	// have no recipients, so without custodians the archive can attribute
	// the messages to no mailbox.
	Custodians []string
	// Workers is the number of messages archived concurrently; 0 means
	// DefaultWorkers.
	Workers int
	// MemoryBudget bounds the bytes of messages in memory at once (one
	// message larger than it still goes through, alone); 0 means
	// DefaultMemoryBudget.
	MemoryBudget int64
	// MaxMessageSize is the largest message, in bytes as archived, that is
	// imported; a larger one is refused and reported with its location and
	// the import goes on. 0 means DefaultMaxMessageSize.
	MaxMessageSize int64
	// Quoting is how mbox ">From " lines are unquoted; the zero value is
	// QuotingMboxrd. See the package documentation.
	Quoting Quoting
	// Location is the time zone of From_ line dates that carry none
	// (asctime). nil means time.Local, since mbox writers use local time.
	Location *time.Location
	// AllFiles makes every regular file found in a searched directory that
	// is not an mbox one message, instead of only .eml files and files that
	// look like a message header.
	AllFiles bool
	// Retries is how often a message is tried again after a temporary
	// Archiver error (one without ingest.ErrRefused), with backoff; 0 means
	// DefaultRetries, a negative value none.
	Retries int
	// MaxFailures stops the import once this many messages failed; 0 means
	// DefaultMaxFailures, a negative value never.
	MaxFailures int
	// Progress, if set, is called every ProgressInterval and once more when
	// Run returns, never concurrently. It must return quickly.
	Progress func(Progress)
	// ProgressInterval is the time between Progress calls; 0 means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// OnIssue, if set, is called for every issue as it happens (refusal,
	// failure, warning, skipped file), never concurrently. It must return
	// quickly. The Summary keeps only MaxIssues of each kind.
	OnIssue func(Issue)
	// MaxIssues is how many issues of each kind the Summary keeps; 0 means
	// DefaultMaxIssues.
	MaxIssues int
}

// withDefaults returns o with zero fields set to their defaults, or an error
// naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Workers < 0:
		return o, fmt.Errorf("importer: workers must be positive, not %d", o.Workers)
	case o.MaxMessageSize < 0:
		return o, fmt.Errorf("importer: max message size must be positive, not %d", o.MaxMessageSize)
	case o.Quoting < QuotingMboxrd || o.Quoting > QuotingNone:
		return o, fmt.Errorf("importer: unknown mbox quoting %d", int(o.Quoting))
	case o.ProgressInterval < 0:
		return o, fmt.Errorf("importer: progress interval must be positive, not %v", o.ProgressInterval)
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.Location == nil {
		o.Location = time.Local
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	if o.ProgressInterval == 0 {
		o.ProgressInterval = DefaultProgressInterval
	}
	if o.MaxIssues <= 0 {
		o.MaxIssues = DefaultMaxIssues
	}
	cs := make([]string, 0, len(o.Custodians))
	for _, c := range o.Custodians {
		if c = strings.ToLower(strings.TrimSpace(c)); c != "" {
			cs = append(cs, c)
		}
	}
	o.Custodians = cs
	return o, nil
}
