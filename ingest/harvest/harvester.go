package harvest

import (
	"context"
	"fmt"
	"sync"
)

// Harvester pulls mail from IMAP sources into an Archiver.
type Harvester struct {
	opts  Options
	state *State
	// Shared by every source of a Run or RunOnce: the archive workers take
	// jobs from jobs; budget bounds the message bytes held in all.
	budget *budget
	jobs   chan *job
}

// New opens the state database and checks the options. Close it when done.
func New(ctx context.Context, opts Options) (*Harvester, error) {
	opts.defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	st, err := OpenState(opts.StatePath, false)
	if err != nil {
		return nil, err
	}
	h := &Harvester{opts: opts, state: st, budget: newBudget(opts.MemoryBudget)}
	for i := range opts.Sources {
		s := &h.opts.Sources[i]
		reset, err := st.registerSource(ctx, s)
		if err != nil {
			st.Close()
			return nil, err
		}
		if reset {
			opts.Logger.Warn("harvest: the source's host or user changed; every folder is read again (messages already archived are recognised)",
				"source", s.Name, "host", s.Host, "user", s.User)
		}
	}
	return h, nil
}

// startWorkers starts the archive workers; the returned func stops them
// once no source dispatches any more.
func (h *Harvester) startWorkers(ctx context.Context) (stop func()) {
	h.jobs = make(chan *job)
	var wg sync.WaitGroup
	for i := 0; i < h.opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range h.jobs {
				j.fr.r.archive(ctx, j)
			}
		}()
	}
	return func() {
		close(h.jobs)
		wg.Wait()
	}
}

// Close closes the state database. Run and RunOnce must have returned.
func (h *Harvester) Close() error { return h.state.Close() }

// State returns the state database.
func (h *Harvester) State() *State { return h.state }

// selected returns the enabled sources named (every enabled source when
// names is empty).
func (h *Harvester) selected(names []string) ([]*Source, error) {
	var out []*Source
	if len(names) == 0 {
		for i := range h.opts.Sources {
			if !h.opts.Sources[i].Disabled {
				out = append(out, &h.opts.Sources[i])
			}
		}
		return out, nil
	}
	for _, n := range names {
		found := false
		for i := range h.opts.Sources {
			if h.opts.Sources[i].Name == n {
				out = append(out, &h.opts.Sources[i])
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("harvest: no source is named %q", n)
		}
	}
	return out, nil
}

// Run harvests the named sources (every enabled source when none is named)
// until ctx ends, each on its own: a source that fails is retried with
// backoff and never stops the others. It returns nil when ctx ends. Run and
// RunOnce must not overlap.
func (h *Harvester) Run(ctx context.Context, names ...string) error {
	srcs, err := h.selected(names)
	if err != nil {
		return err
	}
	stop := h.startWorkers(ctx)
	defer stop()
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Add(1)
		go func(s *Source) {
			defer wg.Done()
			newSourceRun(h, s).loop(ctx, false)
		}(s)
	}
	wg.Wait()
	return nil
}

// RunOnce makes one pass over every folder of the named sources (every
// enabled source when none is named), concurrently, and returns each
// source's result in the order named. A source whose connection fails is
// retried with backoff, at most MaxAttempts times in a row.
func (h *Harvester) RunOnce(ctx context.Context, names ...string) ([]PassResult, error) {
	srcs, err := h.selected(names)
	if err != nil {
		return nil, err
	}
	stop := h.startWorkers(ctx)
	defer stop()
	out := make([]PassResult, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Add(1)
		go func(i int, s *Source) {
			defer wg.Done()
			out[i] = newSourceRun(h, s).loop(ctx, true)
		}(i, s)
	}
	wg.Wait()
	return out, nil
}

// Status returns the status of every configured source (and of sources
// found only in the state database) with its folders. It reads the state
// database; metrics call it on each scrape.
func (h *Harvester) Status(ctx context.Context) ([]SourceStatus, error) {
	return Status(ctx, h.state, h.opts.Sources)
}

// Status merges the state database's status with the configured sources:
// Configured and Disabled are set, and a configured source that never ran
// is listed with zero values.
func Status(ctx context.Context, st *State, sources []Source) ([]SourceStatus, error) {
	out, err := st.Status(ctx)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i := range out {
		idx[out[i].Name] = i
	}
	for _, s := range sources {
		i, ok := idx[s.Name]
		if !ok {
			out = append(out, SourceStatus{Name: s.Name, Host: s.Host, User: s.User})
			i = len(out) - 1
			idx[s.Name] = i
		}
		out[i].Configured = true
		out[i].Disabled = s.Disabled
	}
	return out, nil
}
