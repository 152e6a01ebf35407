package archive

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/ingest"
)

// commitTimeout bounds one group commit (segment write and index
// transaction); past it the batch fails and its deliveries are not
// acknowledged.
const commitTimeout = 2 * time.Minute

// commitLoop takes pending deliveries off the queue in batches: whatever
// queued while the previous batch was committing goes into the next one, so
// concurrent writers share one segment write and one index transaction.
//
// A commit has two stages, pipelined: this loop makes the batch's objects
// durable and appends its ledger segment (the entries are then committed);
// indexLoop writes its index rows meanwhile, commits them once the segment
// is durable, and only then answers the writers, except those answered
// once the segment was durable (ingest.AckWhenDurable, see commit). While
// one batch's index transaction commits, the next one's segment is
// written.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	defer close(s.indexQ)
	// idle fires when no batch followed the last one for indexIdle: an
	// index transaction waiting for batches then commits what it has.
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	defer idle.Stop()
	for {
		var first *pending
		select {
		case <-idle.C:
			select {
			case s.indexKick <- struct{}{}:
			default:
			}
			continue
		case first = <-s.queue:
		case <-s.stop:
			// Commit what was queued before the stop.
			for {
				select {
				case p := <-s.queue:
					s.commit(s.fill(p))
				default:
					return
				}
			}
		}
		s.commit(s.fill(first))
		idle.Reset(indexIdle)
	}
}

// indexIdle is how long the segment stage waits for a next batch before
// it tells the index stage that nothing more is on its way.
const indexIdle = 5 * time.Millisecond

// fill takes what is queued behind first, up to MaxBatch. While writers
// that announced a message before the batch began are still on their way,
// it waits for them, at most CommitWait in all: a batch then carries more
// deliveries for one flush, one signature and two transactions. Writers
// that announce while it waits go in the next batch: under a steady load
// someone is always about to announce, and waiting for them too held every
// batch for all of CommitWait (instrumented under bench/smtp's load: a
// batch waited 0.75–0.8 ms, now 0.5 ms, and its writers got their answers
// that much later). Writers that did not announce (cairn import's workers)
// are never waited for, nor is anyone when no one announced: a single
// client's message commits at once.
func (s *Store) fill(first *pending) []*pending {
	batch := []*pending{first}
	var timer *time.Timer
	// The messages announced so far have all come once as many have
	// arrived. (Arrivals are not told apart: one announced later that
	// arrives first stands in for an earlier one, and the batch stops
	// waiting that much earlier.)
	awaited := s.announcements.Load()
	for len(batch) < s.opts.MaxBatch {
		select {
		case p := <-s.queue:
			batch = append(batch, p)
			continue
		default:
		}
		if s.opts.CommitWait < 0 || s.announced.Load() <= 0 || s.arrived.Load() >= awaited {
			break
		}
		if timer == nil {
			timer = time.NewTimer(s.opts.CommitWait)
			defer timer.Stop()
			if testHookFillWaits != nil {
				testHookFillWaits()
			}
		}
		select {
		case p := <-s.queue:
			batch = append(batch, p)
			continue
		case <-timer.C:
		}
		break
	}
	return batch
}

// testHookFillWaits, if set (by tests), runs when a batch starts waiting
// for announced messages.
var testHookFillWaits func()

// Announce implements ingest.Announcer: the caller is about to archive a
// message (the SMTP receiver announces one at a transaction's first
// accepted RCPT). Until the message is queued for the group commit (its
// Archive call got the returned context) or withdraw is called, a group
// commit begun after the announcement waits up to CommitWait for it.
// withdraw may be called more than once.
func (s *Store) Announce(ctx context.Context) (context.Context, func()) {
	s.announcements.Add(1)
	s.announced.Add(1)
	a := &announcement{s: s}
	return context.WithValue(ctx, announcementKey{}, a), a.done
}

// announcement is one message announced and not yet queued.
type announcement struct {
	s         *Store
	withdrawn atomic.Bool
	// came: counted in Store.arrived (queued, or given up).
	came atomic.Bool
}

// arriving counts the announced message as arrived, once: enqueue calls it
// before the message is queued, so that a fill which receives the message
// sees it counted.
func (a *announcement) arriving() {
	if a.came.CompareAndSwap(false, true) {
		a.s.arrived.Add(1)
	}
}

func (a *announcement) done() {
	if a.withdrawn.CompareAndSwap(false, true) {
		a.arriving()
		a.s.announced.Add(-1)
	}
}

type announcementKey struct{}

var _ ingest.Announcer = (*Store)(nil)

// segmentResult is the outcome of a batch's segment write: the ledger
// state after it, or why its entries are not committed.
type segmentResult struct {
	state ledger.State
	err   error
}

// finish gives the batch's writers their outcome and releases their
// delivery keys and content hashes.
func finish(batch []*pending, err error) {
	for _, p := range batch {
		p.done <- err
		release(p.release)
	}
}

// indexed is a batch for the index stage: its segment is prepared, and
// segment says whether writing it committed the entries.
type indexed struct {
	segment chan segmentResult
	batch   []*pending
	b       *index.Batch
	first   uint64
	last    uint64
	// answered: every writer of the batch is answered once its segment is
	// written (ingest.AckWhenDurable, under load); none waits for the index.
	answered bool
}

// commit is the first stage: durability of the objects, then the segment.
func (s *Store) commit(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if s.behind.Load() {
		// The batch's deduplication was decided against an index that
		// lacked committed entries: after catching up, it may store bytes
		// the ledger already holds. Refuse it (temporarily); the writers
		// retry against the caught-up index.
		err := s.catchUpLocked(ctx)
		if err == nil {
			err = errors.New("archive: the index caught up with the ledger; retry")
		}
		finish(batch, err)
		return
	}
	t0 := time.Now()
	defer func() {
		s.stats.stageA.Add(int64(time.Since(t0)))
		s.stats.batches.Add(1)
		s.stats.entries.Add(int64(len(batch)))
	}()
	// Objects written unsynced become durable here, together, before the
	// segment that references them (a store whose Put flushes everything
	// appended before it does it with the segment's own flush).
	ordered := false
	if f, ok := s.objs.(objstore.FlushesInOrder); ok && f.PutFlushesEarlier() {
		ordered = true
	}
	for _, p := range batch {
		if p.unsynced && !ordered {
			if err := s.objs.(objstore.Batcher).Sync(ctx); err != nil {
				finish(batch, fmt.Errorf("archive: commit: %w", err))
				return
			}
			break
		}
	}
	now := time.Now().UTC()
	entries := make([]*ledger.Entry, len(batch))
	for i, p := range batch {
		p.entry.Time = now
		entries[i] = p.entry
	}
	seg, err := s.log.Prepare(entries)
	if err != nil {
		finish(batch, fmt.Errorf("archive: commit: %w", err))
		return
	}
	b := &index.Batch{Tokens: make(map[uint64]string)}
	for i, p := range batch {
		e := p.entry
		b.Entries = append(b.Entries, index.EntryRow{Seq: e.Seq, Kind: e.Kind, Ref: e.Ref, Line: seg.Lines[i], Leaf: seg.Leaves[i]})
		if p.message != nil {
			p.message.Seq = e.Seq
			p.message.ArchivedAt = e.Time
			p.delivery.Message = e.Seq
			b.Messages = append(b.Messages, *p.message)
			if p.tokens != "" {
				b.Tokens[e.Seq] = p.tokens
			}
		}
		if p.gone != nil {
			b.Gone = append(b.Gone, *p.gone)
		}
		if !p.noDelivery {
			p.delivery.Seq = e.Seq
			b.Deliveries = append(b.Deliveries, p.delivery)
		}
	}
	// The index stage commits the batch's rows only once the segment is
	// durable (ib.segment). Writers that asked for it (ingest.AckWhenDurable) are answered once
	// the segment is written when more deliveries are on their way (or an
	// index transaction gathers batches): the index stage then lists this
	// batch with the ones that follow, in one transaction. A writer on its
	// own still waits for the index, and finds its message there once
	// answered.
	early := len(s.queue) > 0 || s.announced.Load() > 0 || s.indexOpen.Load()
	answered := early
	for _, p := range batch {
		answered = answered && p.durable != nil
	}
	ib := &indexed{batch: batch, b: b, first: entries[0].Seq, last: entries[len(entries)-1].Seq,
		answered: answered, segment: make(chan segmentResult, 1)}
	s.indexWG.Add(1)
	s.indexQ <- ib
	st, err := s.log.Write(ctx, seg)
	if err != nil {
		// A segment write that reported failure may have landed after all
		// (an S3 PUT whose answer was lost, or that completes after its
		// timeout), and a taken segment name says one did. Either way the
		// ledger must be re-read from the store before the next lookup or
		// commit relies on the index: its entries then count, at worst as
		// one more delivery of bytes a sender retries. Set before the
		// writers hear of the failure, so that a retry catches up first
		// instead of reaching a commit that refuses it.
		s.behind.Store(true)
	} else if early {
		for _, p := range batch {
			if p.durable != nil {
				close(p.durable)
			}
		}
	}
	ib.segment <- segmentResult{st, err}
	if err != nil {
		return
	}
	if st.Size-s.ckptSize.Load() >= s.opts.CheckpointEvery {
		select {
		case s.ckptKick <- struct{}{}:
		default:
		}
	}
}

// indexLoop is the second stage: the index transaction, then the answers.
func (s *Store) indexLoop() {
	defer close(s.indexDone)
	for ib := range s.indexQ {
		for ib != nil {
			var done int
			done, ib = s.indexRun(ib)
			for range done {
				s.indexWG.Done()
			}
		}
	}
}

// indexRun indexes ib and returns how many batches it finished, and a
// batch it took from indexQ and did not index (carry: indexLoop's next).
// A batch whose writers wait for the index has its rows written while its
// segment is made durable, and committed once it is. A batch whose writers
// were answered already (commit answers them once durable under load) is
// gathered in memory with the batches that follow, for up to IndexWait,
// and all are written in one transaction: one index commit then serves
// several group commits, with a fraction of their index pages written, and
// the index's write lock is not held while batches are gathered.
func (s *Store) indexRun(ib *indexed) (int, *indexed) {
	// After a failed index commit, later batches must not be indexed
	// either (the index would skip entries): they wait for the catch-up.
	if s.behind.Load() {
		if seg := <-ib.segment; seg.err != nil {
			finish(ib.batch, fmt.Errorf("archive: commit: %w", seg.err))
			return 1, nil
		}
		finish(ib.batch, fmt.Errorf("archive: index unavailable (ledger entries %d-%d are committed; the index will catch up)", ib.first, ib.last))
		return 1, nil
	}
	t0 := time.Now()
	defer func() { s.stats.stageB.Add(int64(time.Since(t0))) }()
	var w *index.Writing
	var err error
	if !ib.answered {
		// The rows are written while the segment stage makes the batch's
		// segment durable, and committed only once it has: the index
		// never holds an entry the ledger lacks, and no reader sees a
		// message before it is durable.
		w, err = s.index.Write(ib.b)
	}
	seg := <-ib.segment
	if seg.err != nil {
		if w != nil {
			w.Rollback()
		}
		finish(ib.batch, fmt.Errorf("archive: commit: %w", seg.err))
		return 1, nil
	}
	run, taken := []*indexed{ib}, 1
	var carry *indexed
	if ib.answered {
		// Until this run is committed, the batches that come are answered
		// early too (commit) and gathered into the next run.
		s.indexOpen.Store(true)
		defer s.indexOpen.Store(false)
		run, seg, taken, carry = s.gather(ib, seg)
		if testHookIndexGathered != nil {
			testHookIndexGathered()
		}
		w, err = s.index.Write(ib.b)
	}
	first, last := run[0].first, run[len(run)-1].last
	if err == nil {
		err = w.Commit(seg.state)
	}
	if err != nil {
		// The entries are in the ledger; the index catches up from it
		// before the next commit. The writers not answered yet retry,
		// which at worst records one more delivery of the same bytes.
		s.behind.Store(true)
		for _, r := range run {
			finish(r.batch, fmt.Errorf("archive: index: %w (ledger entries %d-%d are committed; the index will catch up)", err, first, last))
		}
		return taken, carry
	}
	s.stats.indexCommits.Add(1)
	// The gathered batches' tokens are in ib.b now.
	hasText := len(ib.b.Tokens) > 0
	if hasText {
		// Before the writers are answered: a FlushSearch they make next
		// must see that there is text to index.
		s.textGen.Add(1)
	}
	for _, r := range run {
		finish(r.batch, nil)
	}
	if s.opts.OnIndexed != nil {
		s.opts.OnIndexed(last)
	}
	if hasText {
		select {
		case s.ftsKick <- struct{}{}:
		default:
		}
	}
	return taken, carry
}

// testHookIndexGathered, if set (by tests), runs once an index run has
// gathered its batches, before it writes them.
var testHookIndexGathered func()

// gather appends to ib's rows those of the batches that follow, with their
// segments written, while they are answered batches too, for up to
// IndexWait or until nothing more is on its way (indexKick), at most
// MaxBatch deliveries. A batch whose writers wait ends the run: it joins
// it and is committed at once. seg is ib's segment result. gather returns
// the batches whose rows ib.b now holds (ib first), the last one's segment
// result, how many batches it finished (a batch whose segment failed is
// finished here and left out), and the batch it took whose segment was
// still being written when IndexWait ran out (carry), if any: a segment
// write can last as long as the store's timeout, and the batches gathered
// so far were answered already, so they are listed without waiting for it.
func (s *Store) gather(ib *indexed, seg segmentResult) ([]*indexed, segmentResult, int, *indexed) {
	run, taken := []*indexed{ib}, 1
	if s.opts.IndexWait <= 0 {
		return run, seg, taken, nil
	}
	timer := time.NewTimer(s.opts.IndexWait)
	defer timer.Stop()
	for entries := len(ib.batch); entries < s.opts.MaxBatch; {
		next := s.nextIndexed(timer.C)
		if next == nil {
			break
		}
		var nseg segmentResult
		select {
		case nseg = <-next.segment:
		case <-timer.C:
			return run, seg, taken, next
		}
		taken++
		// A batch whose segment failed has no committed entries: its rows
		// stay out.
		if nseg.err != nil {
			finish(next.batch, fmt.Errorf("archive: commit: %w", nseg.err))
			break
		}
		ib.b.Append(next.b)
		run = append(run, next)
		seg = nseg
		entries += len(next.batch)
		if !next.answered {
			break
		}
	}
	return run, seg, taken, nil
}

// nextIndexed returns the next batch for the index stage, or nil once
// timeout fires, the segment stage says nothing more is on its way, or
// indexQ is closed.
func (s *Store) nextIndexed(timeout <-chan time.Time) *indexed {
	select {
	case next := <-s.indexQ:
		return next
	default:
	}
	select {
	case next := <-s.indexQ:
		return next
	case <-timeout:
		return nil
	case <-s.indexKick:
		// No batch followed the last one; any batch sent before the
		// kick is queued already.
		select {
		case next := <-s.indexQ:
			return next
		default:
			return nil
		}
	}
}

// catchUp replays into the index the ledger entries it lacks, after an
// index commit failed.
func (s *Store) catchUp(ctx context.Context) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if !s.behind.Load() {
		return nil
	}
	return s.catchUpLocked(ctx)
}

func (s *Store) catchUpLocked(ctx context.Context) error {
	// Batches already past their segment finish (failing) first.
	s.indexWG.Wait()
	st, err := s.index.LedgerState()
	if err != nil {
		return fmt.Errorf("archive: index unavailable: %w", err)
	}
	r := newReplayer(s)
	lg, err := ledger.Open(ctx, s.objs, s.opts.LogID, s.opts.Signing.Signer, s.opts.Signing.Verifier, st, r.replay)
	if err != nil {
		return fmt.Errorf("archive: index catch-up: %w", err)
	}
	if err := r.flush(ctx, lg.State()); err != nil {
		return fmt.Errorf("archive: index catch-up: %w", err)
	}
	s.log = lg
	s.behind.Store(false)
	s.textGen.Add(1)
	s.lg.Info("index caught up with the ledger", "entries", r.count)
	return nil
}

// checkpointLoop publishes a signed checkpoint when CheckpointEvery entries
// have been added, and every CheckpointInterval while entries keep coming.
func (s *Store) checkpointLoop() {
	defer close(s.ckptDone)
	t := time.NewTicker(s.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.ckptKick:
		}
		if s.log.Size() > s.ckptSize.Load() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if _, _, err := s.publishCheckpoint(ctx); err != nil {
				s.lg.Error("checkpoint not published", "err", err)
			}
			cancel()
		}
	}
}

// PublishCheckpoint signs and stores a checkpoint of the ledger as it is
// now, and hands it to OnCheckpoint.
func (s *Store) PublishCheckpoint(ctx context.Context) (ledger.Checkpoint, []byte, error) {
	return s.publishCheckpoint(ctx)
}

func (s *Store) publishCheckpoint(ctx context.Context) (ledger.Checkpoint, []byte, error) {
	if s.log == nil {
		return ledger.Checkpoint{}, nil, fmt.Errorf("archive: opened read-only")
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.commitMu.Lock()
	lg := s.log
	s.commitMu.Unlock()
	c, signed, err := lg.PublishCheckpoint(ctx)
	if err != nil {
		return c, nil, err
	}
	// A copy beside the index: verify notices if the store loses it.
	if err := s.index.SetMeta(ctx, "checkpoint", signed); err != nil {
		s.lg.Warn("checkpoint not recorded in the index", "err", err)
	}
	if c.Size > s.ckptSize.Load() {
		s.ckptSize.Store(c.Size)
		if s.opts.OnCheckpoint != nil {
			s.opts.OnCheckpoint(c, signed)
		}
	}
	return c, signed, nil
}

// ftsLoop moves committed messages' tokens into the full-text index in the
// background, shortly after each commit, in large transactions.
func (s *Store) ftsLoop() {
	defer close(s.ftsDone)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.flushText()
			return
		case <-t.C:
		case <-s.ftsKick:
			// Let a burst of commits gather first.
			time.Sleep(50 * time.Millisecond)
		}
		s.flushText()
	}
}

func (s *Store) flushText() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.FlushSearch(ctx); err != nil {
		s.lg.Error("full-text indexing failed; retrying", "err", err)
	}
}

// FlushSearch makes every committed message visible to full-text search
// (searches call it before BODY and TEXT queries). It costs nothing when
// no text was committed since the last flush.
func (s *Store) FlushSearch(ctx context.Context) error {
	gen := s.textGen.Load()
	if s.flushedGen.Load() >= gen {
		return nil
	}
	if err := s.index.FlushText(ctx); err != nil {
		return err
	}
	for {
		old := s.flushedGen.Load()
		if old >= gen || s.flushedGen.CompareAndSwap(old, gen) {
			return nil
		}
	}
}

// commitStats counts what group commits did, for Stats.
type commitStats struct {
	batches, entries atomic.Int64
	indexCommits     atomic.Int64
	stageA, stageB   atomic.Int64 // nanoseconds in the segment and index stages
}

// CommitStats reports the group commits so far: batches, entries, index
// transactions (one can list several batches), and the time spent writing
// segments (with the objects' durability) and in index transactions
// (IndexWait included).
type CommitStats struct {
	Batches, Entries int64
	IndexCommits     int64
	SegmentTime      time.Duration
	IndexTime        time.Duration
}

// Stats returns the group-commit counters (for metrics and benchmarks).
func (s *Store) Stats() CommitStats {
	return CommitStats{Batches: s.stats.batches.Load(), Entries: s.stats.entries.Load(),
		IndexCommits: s.stats.indexCommits.Load(), SegmentTime: time.Duration(s.stats.stageA.Load()), IndexTime: time.Duration(s.stats.stageB.Load())}
}
