package harvest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// sourceRun harvests one source: its sessions, its workers and its budget.
type sourceRun struct {
	h         *Harvester
	src       *Source
	sel       *Selector
	lg        *slog.Logger
	custodian string
	budget    *budget   // the Harvester's
	jobs      chan *job // the Harvester's workers take from it
	// moveTo is the server's name of Source.MoveTo, resolved at each pass.
	moveTo string
	// fragile maps a folder to the first UID of a batch during which the
	// connection broke: that batch is fetched message by message next
	// time, to find a message the server cannot serve.
	fragile map[string]uint32
	// idle is the folder watched with IDLE, when it is harvested.
	idle *folderInfo

	passProgress progress
	passFolders  []FolderError
	// progressed is set when a cursor moved or a failed fetch was counted.
	progressed bool
}

// FolderError is one folder's failure in a pass.
type FolderError struct {
	Folder string
	Err    error
}

// PassResult is the outcome of RunOnce for one source.
type PassResult struct {
	Source string
	// Err is why the pass did not complete (after retries); nil when it did.
	Err error
	// Folders lists the folders that failed while the others went on.
	Folders []FolderError
	// Counts over the pass, as in FolderStatus.
	Archived, Duplicates, Replayed, Skipped, Malformed, Removed, Bytes int64
}

func newSourceRun(h *Harvester, src *Source) *sourceRun {
	sel, _ := NewSelector(src.Include, src.Exclude) // checked by Validate
	return &sourceRun{
		h:         h,
		src:       src,
		sel:       sel,
		lg:        h.opts.Logger.With("source", src.Name),
		custodian: src.custodian(),
		budget:    h.budget,
		jobs:      h.jobs,
		fragile:   make(map[string]uint32),
	}
}

// loop harvests until ctx ends (once false) or until one pass over every
// folder completes (once true). Failures are retried with backoff; in once
// mode at most MaxAttempts times in a row.
func (r *sourceRun) loop(ctx context.Context, once bool) PassResult {
	failures := 0
	for {
		// In once mode the result covers every session of the pass.
		r.passFolders = nil
		r.progressed = false
		passes, err := r.session(ctx, once)
		if ctx.Err() != nil {
			return r.result(ctx.Err())
		}
		if err == nil && once {
			return r.result(nil)
		}
		if passes > 0 || r.progressed {
			// A session that got somewhere (a pass, a batch, a message
			// counted against its attempts) is not part of a run of
			// failures: a message that breaks the connection needs
			// MaxAttempts sessions before it is skipped.
			failures = 0
		}
		failures++
		r.lg.Warn("harvest: source failed", "err", err, "failures", failures)
		if once && failures >= r.h.opts.MaxAttempts {
			return r.result(err)
		}
		if !sleep(ctx, r.backoff(failures)) {
			return r.result(ctx.Err())
		}
	}
}

func (r *sourceRun) result(err error) PassResult {
	p := r.passProgress
	return PassResult{Source: r.src.Name, Err: err, Folders: r.passFolders,
		Archived: p.archived, Duplicates: p.duplicates, Replayed: p.replayed, Skipped: p.skipped,
		Malformed: p.malformed, Removed: p.removed, Bytes: p.bytes}
}

// backoff is the wait after the n-th failure in a row: MinBackoff doubled
// each time up to MaxBackoff, with ±20% jitter so that many sources do not
// reconnect in step.
func (r *sourceRun) backoff(n int) time.Duration {
	d := r.h.opts.MinBackoff
	for i := 1; i < n && d < r.h.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.h.opts.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// session connects, then makes passes (waiting in IDLE or for the poll
// interval between them) until an error, or until one pass in once mode.
// It returns the number of completed passes.
func (r *sourceRun) session(ctx context.Context, once bool) (int, error) {
	st := r.h.state
	bg := context.WithoutCancel(ctx)
	sess, err := dial(ctx, r.src, r.h.opts.Timeout)
	if err != nil {
		if ctx.Err() == nil {
			st.passEnded(bg, r.src.Name, err)
		}
		return 0, err
	}
	defer sess.close()
	st.setConnected(bg, r.src.Name, true)
	defer st.setConnected(bg, r.src.Name, false)
	r.lg.Debug("harvest: connected", "caps", len(sess.caps))
	passes := 0
	for {
		err := r.pass(ctx, sess)
		if ctx.Err() != nil {
			return passes, ctx.Err()
		}
		if err != nil && sess.watchClosed.Load() {
			err = fmt.Errorf("%w (the server sent nothing for %v while a command was pending)", err, r.h.opts.Timeout)
		}
		st.passEnded(bg, r.src.Name, err)
		if err != nil {
			return passes, err
		}
		passes++
		if once {
			return passes, nil
		}
		if err := r.wait(ctx, sess); err != nil {
			return passes, err
		}
		r.passProgress = progress{}
		r.passFolders = nil
	}
}

// pass lists the folders and archives what is new in each. A folder that
// fails alone is recorded and skipped; anything else ends the pass.
func (r *sourceRun) pass(ctx context.Context, sess *session) error {
	st := r.h.state
	if err := st.passStarted(ctx, r.src.Name); err != nil {
		return err
	}
	folders, err := r.list(sess)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	listed := make(map[string]bool, len(folders))
	for _, f := range folders {
		listed[f.name] = true
	}
	for _, f := range folders {
		if err := r.syncFolder(ctx, sess, f); err != nil {
			if !folderLevel(err) || ctx.Err() != nil {
				return fmt.Errorf("folder %q: %w", f.name, err)
			}
			r.passFolders = append(r.passFolders, FolderError{Folder: f.name, Err: err})
		}
	}
	return st.foldersListed(ctx, r.src.Name, listed)
}

// list returns the harvested folders: every selectable folder that the
// Selector takes.
func (r *sourceRun) list(sess *session) ([]folderInfo, error) {
	// RFC 9051 §6.3.9: "*" lists every level. LIST-STATUS (RFC 5819) would
	// save a SELECT per unchanged folder, but Dovecot 2.3 answers it from
	// its mailbox list index, which lags mail appended by other sessions
	// by seconds: a pass would miss new mail. SELECT is authoritative.
	boxes, err := sess.c.List("", "*", nil).Collect()
	if err != nil {
		return nil, err
	}
	moveCanon := ""
	if r.src.Journal == JournalMove {
		moveCanon = canonicalFolder(r.src.MoveTo, '/')
	}
	idleCanon := canonicalFolder(r.src.idleFolder(), '/')
	r.idle, r.moveTo = nil, ""
	var out []folderInfo
	var delim rune
	for _, b := range boxes {
		if b.Delim != 0 {
			delim = b.Delim
		}
		canon := canonicalFolder(b.Mailbox, b.Delim)
		if moveCanon != "" && canon == moveCanon {
			// Never harvest the journal's own destination.
			r.moveTo = b.Mailbox
			continue
		}
		if hasAttr(b.Attrs, imap.MailboxAttrNoSelect) || hasAttr(b.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		if !r.sel.Match(b.Mailbox, b.Delim) {
			continue
		}
		f := folderInfo{name: b.Mailbox, delim: b.Delim}
		out = append(out, f)
		if canon == idleCanon {
			fc := f
			r.idle = &fc
		}
	}
	if r.src.Journal == JournalMove && r.moveTo == "" {
		name := r.src.MoveTo
		if delim != 0 && delim != '/' {
			name = strings.ReplaceAll(name, "/", string(delim))
		}
		if err := sess.c.Create(name, nil).Wait(); err != nil {
			return nil, &folderError{fmt.Errorf("journal: create %q: %w", name, err)}
		}
		r.moveTo = name
	}
	return out, nil
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

// keepAlive is how often a session waiting without IDLE sends NOOP: well
// within the 30-minute autologout timer of RFC 9051 §5.4.
const keepAlive = 10 * time.Minute

// wait waits for the next pass: in IDLE on the idle folder where the server
// offers it (archiving new mail there as it arrives), else for the poll
// interval.
func (r *sourceRun) wait(ctx context.Context, sess *session) error {
	poll := time.NewTimer(r.src.pollInterval())
	defer poll.Stop()
	if r.src.NoIdle || r.idle == nil || !sess.caps.Has(imap.CapIdle) {
		tick := time.NewTicker(keepAlive)
		defer tick.Stop()
		sess.setQuiet(true)
		defer sess.setQuiet(false)
		for {
			select {
			case <-poll.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-sess.c.Closed():
				return errors.New("the server closed the connection")
			case <-tick.C:
				sess.setQuiet(false)
				err := sess.c.Noop().Wait()
				sess.setQuiet(true)
				if err != nil {
					return fmt.Errorf("noop: %w", err)
				}
			}
		}
	}
	for {
		// Drain a stale signal; mail that came in since the last sync is
		// seen by the sync below, which compares UIDNEXT with the cursor.
		select {
		case <-sess.exists:
		default:
		}
		if err := r.syncFolder(ctx, sess, folderInfo{name: r.idle.name, delim: r.idle.delim}); err != nil {
			if !folderLevel(err) || ctx.Err() != nil {
				return err
			}
		}
		// RFC 2177 / RFC 9051 §6.3.13: IDLE in the folder selected by the
		// sync; the server announces new mail with EXISTS.
		if sess.c.Mailbox() == nil {
			// The folder could not be selected: fall back to polling.
			select {
			case <-poll.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		idle, err := sess.c.Idle()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		sess.setQuiet(true)
		var stop error
		newMail := false
		select {
		case <-sess.exists:
			newMail = true
		case <-poll.C:
		case <-ctx.Done():
			stop = ctx.Err()
		case <-sess.c.Closed():
			stop = errors.New("the server closed the connection")
		}
		sess.setQuiet(false)
		if err := idle.Close(); err != nil && stop == nil {
			stop = fmt.Errorf("idle: %w", err)
		}
		if stop == nil {
			if err := idle.Wait(); err != nil {
				stop = fmt.Errorf("idle: %w", err)
			}
		}
		if stop != nil {
			return stop
		}
		if !newMail {
			return nil
		}
		r.lg.Debug("harvest: new mail announced", "folder", r.idle.name)
	}
}
