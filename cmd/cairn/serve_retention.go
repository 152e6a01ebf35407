package main

import (
	"context"
	"time"

	"github.com/cairn-archive/cairn/retention"
)

func init() { registerService("retention", startRetention) }

// archiveIndexed is told when the archive has indexed a commit (open.go
// sets it as archive.Options.OnIndexed): the retention service then sets
// the S3 Object Locks of the new message objects at once.
var archiveIndexed = make(chan struct{}, 1)

func notifyIndexed(uint64) {
	select {
	case archiveIndexed <- struct{}{}:
	default:
	}
}

// retentionService runs in cairn serve: the disposal schedule, the Object
// Lock of new messages, and the ledger events of hold changes made by the
// CLI while serve holds the archive.
type retentionService struct {
	m        *retention.Manager
	schedule time.Duration
}

// Checks between runs: new messages' locks and pending hold events.
const retentionPoll = 5 * time.Second

// retentionFirstRun is the wait before the first scheduled run, so that a
// restart loop never disposes in a burst and start-up stays quick.
var retentionFirstRun = time.Minute

func startRetention(ctx context.Context, d *deps) (service, error) {
	pol, err := d.cfg.Retention.policy()
	if err != nil {
		return nil, err
	}
	lm, _ := d.cfg.Retention.lockMode()
	m, err := retention.Open(ctx, retention.Options{
		Path:      d.cfg.retentionDB(),
		IndexPath: d.cfg.indexDB(),
		Archive:   d.archive,
		Objects:   d.objects,
		SearchKey: d.keys.ring.SearchKey(),
		Audit:     d.audit,
		Policy:    pol,
		LockMode:  lm,
		Logger:    logger,
	})
	if err != nil {
		return nil, err
	}
	return &retentionService{m: m, schedule: d.cfg.Retention.Schedule}, nil
}

func (s *retentionService) Run(ctx context.Context) error {
	defer s.m.Close()
	poll := time.NewTicker(retentionPoll)
	defer poll.Stop()
	var next <-chan time.Time
	if s.schedule > 0 {
		t := time.NewTimer(retentionFirstRun)
		defer t.Stop()
		next = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-archiveIndexed:
			s.lockNew(ctx)
		case <-poll.C:
			if err := s.m.RecordPending(ctx); err != nil && ctx.Err() == nil {
				logger.Error("retention: hold events not recorded in the ledger; retrying", "err", err)
			}
			s.lockNew(ctx)
		case <-next:
			s.run(ctx)
			t := time.NewTimer(s.schedule)
			next = t.C
		}
	}
}

func (s *retentionService) lockNew(ctx context.Context) {
	for ctx.Err() == nil {
		ch, more, err := s.m.LockNew(ctx)
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("retention: Object Lock of new messages failed; retrying", "err", err)
			}
			return
		}
		if ch.Retention+ch.HoldsOn > 0 {
			logger.Debug("retention: locked new messages", "retention", ch.Retention, "legal_holds", ch.HoldsOn)
		}
		if !more {
			return
		}
	}
}

func (s *retentionService) run(ctx context.Context) {
	t0 := time.Now()
	rep, err := s.m.Run(ctx, retention.SystemCaller, false)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("retention: run failed; the next one retries", "err", err)
		}
		return
	}
	lvl := logger.Info
	if len(rep.Failed) > 0 {
		lvl = logger.Warn
	}
	lvl("retention: run", "checked", rep.Checked, "disposed", len(rep.Disposed), "erased", len(rep.Erased),
		"held", rep.Held, "failed", len(rep.Failed), "objects_deleted", rep.ObjectsDeleted,
		"lock_retention", rep.Locks.Retention, "legal_holds_on", rep.Locks.HoldsOn, "legal_holds_off", rep.Locks.HoldsOff,
		"took", time.Since(t0).Round(time.Millisecond))
	for _, f := range rep.Failed {
		logger.Warn("retention: not disposed; retried by the next run", "seq", f.Seq, "err", f.Err)
	}
}
