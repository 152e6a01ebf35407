package harvest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/ingest"
)

// folderInfo is one folder as LIST returned it.
type folderInfo struct {
	name  string
	delim rune
}

// folderError marks an error that concerns one folder only: the session
// stays usable and the other folders go on.
type folderError struct{ err error }

func (e *folderError) Error() string { return e.err.Error() }
func (e *folderError) Unwrap() error { return e.err }

// folderLevel reports whether err concerns one folder only: a NO or BAD
// from the server (RFC 9051 §7.1) or a folderError.
func folderLevel(err error) bool {
	var fe *folderError
	return isServerError(err) || errors.As(err, &fe)
}

// errNoUIDPlus is reported by journal mode on servers without UIDPLUS.
var errNoUIDPlus = errors.New("journal mode: the server offers neither UIDPLUS nor IMAP4rev2, so messages cannot be removed one by one (a plain EXPUNGE would also remove other clients' \\Deleted mail); archived messages are left in place")

// fetchOptions asks for everything a delivery records. BODY.PEEK[] never
// sets \Seen (RFC 9051 §6.4.5); UID comes first so that it precedes the
// literal.
var fetchOptions = &imap.FetchOptions{
	UID:          true,
	Flags:        true,
	InternalDate: true,
	RFC822Size:   true,
	BodySection:  []*imap.FetchItemBodySection{{Peek: true}},
}

// job is one fetched message on its way to the archive.
type job struct {
	fr    *folderRun
	w     *window
	uid   uint32
	flags []imap.Flag
	date  time.Time
	size  int64 // RFC822.SIZE
	bytes int64 // the body's size as fetched
	raw   []byte
	held  int64 // bytes taken from the source's budget

	// Set by the reader: skip is why the message is passed over for good
	// (reported, never retried); fetchErr is why it could not be fetched
	// this time.
	skip     string
	fetchErr string

	// Set by the worker.
	rc  ingest.Receipt
	err error
}

// window is one UID FETCH batch: UIDs start..end (end 0 means "*").
type window struct {
	start, end uint32
	jobs       []*job
	got        map[uint32]bool
	maxUID     uint32
	wg         sync.WaitGroup
	partial    bool // the connection broke during the fetch
	// hold: an earlier batch failed, so this one is counted but neither
	// removes mail nor moves the cursor.
	hold bool
}

func newWindow(start, end uint32) *window {
	return &window{start: start, end: end, got: make(map[uint32]bool)}
}

func (w *window) contains(uid uint32) bool {
	return uid >= w.start && (w.end == 0 || uid <= w.end)
}

// folderRun is one pass over one folder.
type folderRun struct {
	r        *sourceRun
	sess     *session
	f        folderInfo
	uv       uint32
	keyBase  string // DeliveryKey up to the hash
	messages int64  // EXISTS at SELECT, -1 if unknown
	pass     progress
}

// syncFolder archives every message of f above its cursor. It returns a
// folder-level error (folderLevel) when only this folder failed.
func (r *sourceRun) syncFolder(ctx context.Context, sess *session, f folderInfo) error {
	fr := &folderRun{r: r, sess: sess, f: f, messages: -1}
	err := fr.run(ctx)
	r.passProgress.add(&fr.pass)
	if err != nil && folderLevel(err) {
		r.lg.Warn("harvest: folder failed", "folder", f.name, "err", err)
	}
	// The status write must happen even as ctx ends.
	if serr := r.h.state.folderSeen(context.WithoutCancel(ctx), r.src.Name, f.name, fr.messages, err); serr != nil && err == nil {
		err = serr
	}
	return err
}

func (fr *folderRun) run(ctx context.Context) error {
	st, src := fr.r.h.state, fr.r.src
	cur, err := st.cursor(ctx, src.Name, fr.f.name)
	if err != nil {
		return err
	}
	c := fr.sess.c
	// EXAMINE opens the folder read-only (RFC 9051 §6.3.3): nothing this
	// session does can change it. Journal mode needs SELECT to remove mail.
	data, err := c.Select(fr.f.name, &imap.SelectOptions{ReadOnly: src.Journal == JournalOff}).Wait()
	if err != nil {
		return fmt.Errorf("select %q: %w", fr.f.name, err)
	}
	fr.messages = int64(data.NumMessages)
	if data.UIDValidity == 0 {
		// RFC 9051 §7.1: UIDVALIDITY is required; without it no cursor
		// can be trusted.
		return &folderError{fmt.Errorf("select %q: the server sent no UIDVALIDITY", fr.f.name)}
	}
	if cur.UIDValidity != data.UIDValidity {
		if cur.UIDValidity != 0 {
			// RFC 9051 §2.3.1.1: the old UIDs mean nothing now. Read the
			// folder again; the DeliveryKey (mailbox and bytes, not UID)
			// recognises every message already archived.
			fr.r.lg.Warn("harvest: UIDVALIDITY changed, reading the folder again",
				"folder", fr.f.name, "old", cur.UIDValidity, "new", data.UIDValidity)
		}
		if err := st.resetFolder(ctx, src.Name, fr.f.name, data.UIDValidity, cur.UIDValidity != 0); err != nil {
			return err
		}
		cur = cursor{UIDValidity: data.UIDValidity}
		delete(fr.r.fragile, fr.f.name)
	}
	fr.uv = cur.UIDValidity
	fr.keyBase = deliveryKeyBase(src.Host, src.User, fr.f.name, fr.f.delim)

	uidNext := uint32(data.UIDNext) // 0: the server did not say
	if cur.LastUID == math.MaxUint32 {
		return nil
	}
	if data.NumMessages == 0 {
		if uidNext > 0 && uidNext-1 > cur.LastUID {
			// UIDs below UIDNEXT that are gone never come back (RFC 9051
			// §2.3.1.1: UIDs only grow), so the cursor may pass them.
			return st.advance(ctx, src.Name, fr.f.name, cursor{fr.uv, uidNext - 1}, &progress{})
		}
		return nil
	}
	return fr.windows(ctx, cur.LastUID+1, uidNext)
}

// windows fetches UIDs from next up to uidNext-1 (or "*" when uidNext is
// 0) in batches. While one batch's messages are being archived the next
// batch is fetched; a batch is finalised (cursor, journal removal) once all
// its messages are answered.
func (fr *folderRun) windows(ctx context.Context, next, uidNext uint32) (err error) {
	batch := uint32(fr.r.h.opts.BatchSize)
	var pending *window
	defer func() {
		if pending != nil {
			fr.drain(pending)
			if ferr := fr.finalize(ctx, pending); err == nil {
				err = ferr
			}
		}
	}()
	lookForGap := true
	gapEnd := uint32(0) // the cursor may pass everything up to here
	for {
		if uidNext != 0 && next >= uidNext {
			break
		}
		// Skip UIDs that no longer exist (a journal mailbox, a folder
		// after mass deletion) in one round trip: ESEARCH MIN (RFC 4731).
		if lookForGap && uidNext != 0 && uidNext-next > batch && fr.sess.caps.Has(imap.CapESearch) {
			min, err := fr.firstUIDFrom(next)
			if err != nil && !isServerError(err) {
				return err
			}
			if err == nil {
				if min == 0 || min < next {
					gapEnd = uidNext - 1
					break
				}
				next = min
			}
		}
		end := uint32(0)
		if uidNext != 0 {
			end = uidNext - 1
			if next <= math.MaxUint32-batch+1 && next+batch-1 < end {
				end = next + batch - 1
			}
		}
		w := newWindow(next, end)
		ferr := fr.fetchWindow(ctx, w)
		if pending != nil {
			fr.drain(pending)
			perr := fr.finalize(ctx, pending)
			pending = nil
			if perr != nil {
				fr.drain(w)
				w.hold = true
				fr.finalize(ctx, w)
				return perr
			}
		}
		pending = w
		if ferr != nil {
			return ferr
		}
		lookForGap = len(w.jobs) == 0
		if end == 0 || end == math.MaxUint32 {
			break
		}
		next = end + 1
	}
	if pending != nil {
		fr.drain(pending)
		perr := fr.finalize(ctx, pending)
		pending = nil
		if perr != nil {
			return perr
		}
	}
	if gapEnd > 0 {
		return fr.r.h.state.advance(ctx, fr.r.src.Name, fr.f.name, cursor{fr.uv, gapEnd}, &progress{})
	}
	return nil
}

// drain waits until every message of w is answered by the archive. No
// command is pending meanwhile, so the session's watchdog stands down.
func (fr *folderRun) drain(w *window) {
	fr.sess.setQuiet(true)
	w.wg.Wait()
	fr.sess.setQuiet(false)
}

// firstUIDFrom returns the smallest UID >= from in the folder, 0 if none.
// RFC 4731 §3.1: UID SEARCH RETURN (MIN). "from:*" also matches the
// highest UID when from is above it (RFC 9051 §9, seq-range), so a result
// below from means none.
func (fr *folderRun) firstUIDFrom(from uint32) (uint32, error) {
	crit := &imap.SearchCriteria{UID: []imap.UIDSet{{{Start: imap.UID(from), Stop: 0}}}}
	data, err := fr.sess.c.UIDSearch(crit, &imap.SearchOptions{ReturnMin: true}).Wait()
	if err != nil {
		return 0, err
	}
	return data.Min, nil
}

// fetchWindow fetches one batch and hands its messages to the workers.
func (fr *folderRun) fetchWindow(ctx context.Context, w *window) error {
	if start, ok := fr.r.fragile[fr.f.name]; ok && start == w.start {
		// This batch broke the connection last time: find the culprit by
		// fetching it message by message.
		err := fr.fetchSlow(ctx, w)
		if err == nil {
			delete(fr.r.fragile, fr.f.name)
		}
		return err
	}
	set := imap.UIDSet{{Start: imap.UID(w.start), Stop: imap.UID(w.end)}}
	fr.r.lg.Debug("harvest: fetch", "folder", fr.f.name, "uids", set.String())
	err := fr.fetch(ctx, set, w)
	if err == nil {
		return nil
	}
	if isServerError(err) {
		// RFC 9051 §7.1.2: NO to a FETCH means some messages could not be
		// fetched. Fetch the rest one by one to tell which.
		fr.r.lg.Warn("harvest: fetch failed, retrying message by message", "folder", fr.f.name,
			"uids", set.String(), "err", err)
		return fr.fetchSlow(ctx, w)
	}
	w.partial = true
	if ctx.Err() == nil {
		fr.r.fragile[fr.f.name] = w.start
	}
	return err
}

// fetchSlow fetches the messages of w not yet received, one UID FETCH
// each. A message that fails is counted (state attempts); after
// MaxAttempts it is skipped and reported instead of being tried forever.
func (fr *folderRun) fetchSlow(ctx context.Context, w *window) error {
	uids, err := fr.listUIDs(w)
	if err != nil {
		if !isServerError(err) {
			w.partial = true
		}
		return err
	}
	for _, uid := range uids {
		if w.got[uid] {
			continue
		}
		// A message that failed MaxAttempts times is not fetched again: a
		// server that drops the connection on it would never let the
		// batch complete.
		n, reason, err := fr.r.h.state.attempts(ctx, fr.r.src.Name, fr.f.name, fr.uv, uid)
		if err != nil {
			return err
		}
		if n >= fr.r.h.opts.MaxAttempts {
			fr.add(w, &job{fr: fr, uid: uid, skip: fmt.Sprintf("could not be fetched after %d attempts: %s", n, reason)})
			continue
		}
		set := imap.UIDSetNum(imap.UID(uid))
		fr.r.lg.Debug("harvest: fetch one", "folder", fr.f.name, "uid", uid, "attempts", n)
		err = fr.fetch(ctx, set, w)
		if err == nil && !w.got[uid] {
			// Nothing came back: expunged meanwhile. Nothing to archive.
			continue
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			w.partial = true
			return err
		}
		if !w.got[uid] {
			j := &job{fr: fr, w: w, uid: uid, fetchErr: err.Error()}
			fr.add(w, j)
			if derr := fr.dispatch(ctx, w, j); derr != nil {
				w.partial = true
				return derr
			}
		}
		if !isServerError(err) {
			w.partial = true
			return err
		}
	}
	return nil
}

// listUIDs lists the UIDs in w: UID FETCH start:end (UID), metadata only.
func (fr *folderRun) listUIDs(w *window) ([]uint32, error) {
	set := imap.UIDSet{{Start: imap.UID(w.start), Stop: imap.UID(w.end)}}
	cmd := fr.sess.c.Fetch(set, &imap.FetchOptions{UID: true})
	var uids []uint32
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		for item := msg.Next(); item != nil; item = msg.Next() {
			if u, ok := item.(imapclient.FetchItemDataUID); ok && w.contains(uint32(u.UID)) {
				uids = append(uids, uint32(u.UID))
			}
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	return uids, nil
}

// fetch runs one UID FETCH and dispatches each message as it arrives, so
// at most the budget's bytes are held whatever the batch.
func (fr *folderRun) fetch(ctx context.Context, set imap.UIDSet, w *window) error {
	cmd := fr.sess.c.Fetch(set, fetchOptions)
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		j, err := fr.read(ctx, msg)
		if err != nil {
			cmd.Close()
			return err
		}
		if j.uid == 0 || !w.contains(j.uid) || w.got[j.uid] {
			// An unsolicited FETCH (flag change by another client) or a
			// repeat: not ours.
			fr.r.budget.release(j.held)
			continue
		}
		fr.add(w, j)
		if err := fr.dispatch(ctx, w, j); err != nil {
			cmd.Close()
			return err
		}
	}
	return cmd.Close()
}

func (fr *folderRun) add(w *window, j *job) {
	j.w = w
	w.jobs = append(w.jobs, j)
	w.got[j.uid] = true
	if j.uid > w.maxUID {
		w.maxUID = j.uid
	}
}

// read reads one message's data items. The body is read into a buffer of
// exactly its literal's size, taken from the budget first.
func (fr *folderRun) read(ctx context.Context, msg *imapclient.FetchMessageData) (*job, error) {
	j := &job{fr: fr}
	body := false
	for {
		item := msg.Next()
		if item == nil {
			break
		}
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			j.uid = uint32(it.UID)
		case imapclient.FetchItemDataFlags:
			j.flags = it.Flags
		case imapclient.FetchItemDataInternalDate:
			j.date = it.Time
		case imapclient.FetchItemDataRFC822Size:
			j.size = it.Size
		case imapclient.FetchItemDataBodySection:
			body = true
			if it.Literal == nil {
				j.fetchErr = "the server returned NIL for BODY[]"
				continue
			}
			n := it.Literal.Size()
			j.bytes = n
			if limit := fr.r.h.opts.MaxMessageSize; n > limit {
				if _, err := io.Copy(io.Discard, it.Literal); err != nil {
					return nil, fmt.Errorf("read uid %d: %w", j.uid, err)
				}
				j.skip = fmt.Sprintf("%d bytes is over the %d-byte limit", n, limit)
				continue
			}
			if err := fr.r.budget.acquire(ctx, n); err != nil {
				return nil, err
			}
			j.held = n
			j.raw = make([]byte, n)
			if _, err := io.ReadFull(it.Literal, j.raw); err != nil {
				fr.r.budget.release(j.held)
				return nil, fmt.Errorf("read uid %d: %w", j.uid, err)
			}
		}
	}
	if !body && j.skip == "" && j.fetchErr == "" {
		j.fetchErr = "the server sent no BODY[]"
	}
	return j, nil
}

// dispatch hands j to a worker, or settles it at once when it cannot be
// archived.
func (fr *folderRun) dispatch(ctx context.Context, w *window, j *job) error {
	if j.fetchErr != "" {
		fr.r.budget.release(j.held)
		j.held, j.raw = 0, nil
		limit := fr.r.h.opts.MaxAttempts
		n, err := fr.r.h.state.attempt(context.WithoutCancel(ctx), fr.r.src.Name, fr.f.name, fr.uv, j.uid, j.fetchErr)
		if err != nil {
			return err
		}
		fr.r.progressed = true
		if n >= limit {
			j.skip = fmt.Sprintf("could not be fetched after %d attempts: %s", n, j.fetchErr)
		} else {
			j.err = &folderError{fmt.Errorf("could not be fetched (attempt %d of %d): %s", n, limit, j.fetchErr)}
		}
		return nil
	}
	if j.skip != "" {
		return nil
	}
	w.wg.Add(1)
	select {
	case fr.r.jobs <- j:
		return nil
	case <-ctx.Done():
		w.wg.Done()
		fr.r.budget.release(j.held)
		j.held, j.raw = 0, nil
		j.err = ctx.Err()
		return ctx.Err()
	}
}

// archive is a worker's part: one Archive call.
func (r *sourceRun) archive(ctx context.Context, j *job) {
	defer j.w.wg.Done()
	fr := j.fr
	sha := sha256.Sum256(j.raw)
	flags := make([]string, len(j.flags))
	for i, f := range j.flags {
		flags[i] = string(f)
	}
	received := j.date
	if received.IsZero() {
		received = time.Now()
	}
	env := &ingest.Envelope{
		Source:      ingest.SourceHarvest,
		Custodians:  []string{r.custodian},
		ReceivedAt:  received,
		DeliveryKey: fr.keyBase + hex.EncodeToString(sha[:]),
		Meta: map[string]string{
			"harvest_source": r.src.Name,
			"host":           r.src.Host,
			"account":        r.src.User,
			"folder":         fr.f.name,
			"uidvalidity":    strconv.FormatUint(uint64(fr.uv), 10),
			"uid":            strconv.FormatUint(uint64(j.uid), 10),
			"internaldate":   j.date.Format(time.RFC3339),
			"flags":          strings.Join(flags, " "),
		},
	}
	j.rc, j.err = r.h.opts.Archiver.Archive(ctx, env, j.raw)
	r.budget.release(j.held)
	j.held, j.raw = 0, nil
}

// finalize settles a fetched window once every message is answered: counts
// and reports, journal-mode removal, then the cursor. The cursor passes a
// message only when it has a receipt or was skipped for good, and never
// passes the first message that failed.
func (fr *folderRun) finalize(ctx context.Context, w *window) error {
	sort.Slice(w.jobs, func(a, b int) bool { return w.jobs[a].uid < w.jobs[b].uid })
	var p progress
	to := w.end
	if to == 0 {
		to = max(w.maxUID, w.start-1)
	}
	// Only a settled batch reports skips: in a partial or held one the
	// cursor stays before them, so they come round again.
	settled := !w.partial && !w.hold
	var firstErr error
	var archived []uint32
	for _, j := range w.jobs {
		switch {
		case j.err == nil && j.skip == "":
			archived = append(archived, j.uid)
			if j.rc.Replayed {
				p.replayed++
				continue
			}
			p.archived++
			p.bytes += j.bytes
			if j.rc.Duplicate {
				p.duplicates++
			}
			if len(j.rc.Problems) > 0 {
				p.malformed++
				p.reports = append(p.reports, report{uid: j.uid, kind: ReportMalformed, seq: int64(j.rc.Seq),
					detail: truncate(strings.Join(j.rc.Problems, "; "), 1000)})
				fr.r.lg.Info("harvest: archived a malformed message as received", "folder", fr.f.name, "uid", j.uid,
					"seq", j.rc.Seq, "problems", len(j.rc.Problems))
			}
		case firstErr != nil:
			// Beyond the first failure nothing is settled.
		case !settled:
		case j.skip != "" || errors.Is(j.err, ingest.ErrRefused):
			reason := j.skip
			if reason == "" {
				reason = j.err.Error()
			}
			p.skipped++
			p.reports = append(p.reports, report{uid: j.uid, kind: ReportSkipped, seq: -1, detail: truncate(reason, 1000)})
			fr.r.lg.Warn("harvest: message skipped", "folder", fr.f.name, "uid", j.uid, "reason", reason)
		default:
			firstErr = fmt.Errorf("uid %d: %w", j.uid, j.err)
			to = j.uid - 1
		}
	}
	if w.partial {
		// The connection broke: which UIDs of the batch were never seen is
		// unknown, so the cursor stays where the batch began.
		to = min(to, w.start-1)
	}
	if w.hold {
		// The cursor only grows within an epoch (State.advance), so 0
		// leaves it where it is.
		to = 0
	}
	if fr.r.src.Journal != JournalOff && len(archived) > 0 && !w.partial && !w.hold {
		n, err := fr.remove(archived)
		p.removed += int64(n)
		if err != nil {
			if !errors.Is(err, errNoUIDPlus) || firstErr == nil {
				firstErr = err
			}
			if !errors.Is(err, errNoUIDPlus) {
				// Not removed: read the batch again next pass (each
				// message is then Replayed) and try the removal again.
				to = min(to, w.start-1)
			} else {
				firstErr = &folderError{err}
			}
		}
	}
	fr.pass.add(&p)
	if to >= w.start {
		fr.r.progressed = true
	}
	if err := fr.r.h.state.advance(context.WithoutCancel(ctx), fr.r.src.Name, fr.f.name, cursor{fr.uv, to}, &p); err != nil {
		return err
	}
	return firstErr
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// remove takes archived messages out of a journal mailbox: only after their
// receipts, and only those UIDs.
func (fr *folderRun) remove(uids []uint32) (int, error) {
	c, caps := fr.sess.c, fr.sess.caps
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	deleted := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	expunge := func() error {
		if !caps.Has(imap.CapUIDPlus) {
			return errNoUIDPlus
		}
		// RFC 4315 §2.1: UID EXPUNGE removes only the listed UIDs that
		// are \Deleted, never other mail someone else marked.
		if err := c.Store(set, deleted, nil).Close(); err != nil {
			return fmt.Errorf("journal: uid store \\Deleted: %w", err)
		}
		if err := c.UIDExpunge(set).Close(); err != nil {
			return fmt.Errorf("journal: uid expunge: %w", err)
		}
		return nil
	}
	switch fr.r.src.Journal {
	case JournalExpunge:
		if err := expunge(); err != nil {
			return 0, err
		}
	case JournalMove:
		dest := fr.r.moveTo
		if caps.Has(imap.CapMove) {
			// RFC 6851 §3.1: UID MOVE is atomic: copy, then expunge.
			if _, err := c.Move(set, dest).Wait(); err != nil {
				return 0, fmt.Errorf("journal: uid move to %q: %w", dest, err)
			}
			break
		}
		if !caps.Has(imap.CapUIDPlus) {
			return 0, errNoUIDPlus
		}
		if _, err := c.Copy(set, dest).Wait(); err != nil {
			return 0, fmt.Errorf("journal: uid copy to %q: %w", dest, err)
		}
		if err := expunge(); err != nil {
			return 0, err
		}
	}
	return len(uids), nil
}
