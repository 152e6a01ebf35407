package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/retention"
)

// The legal team's endpoints: holds, erasure requests, explanations. They
// call the same retention.Manager as `cairn hold`, `cairn erase` and
// `cairn retention explain`, which audits each change itself (fail
// closed) with the API caller as actor.

// holdRequest is retention.HoldSpec with dates as YYYY-MM-DD.
type holdRequest struct {
	Case       string   `json:"case"`
	Reason     string   `json:"reason"`
	Custodians []string `json:"custodians,omitempty"`
	From       string   `json:"from,omitempty"`
	To         string   `json:"to,omitempty"`
	Query      string   `json:"query,omitempty"`
}

func parseDay(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.DateOnly, time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errorf(http.StatusBadRequest, "%s %q: want YYYY-MM-DD", field, s)
}

func (s *Server) placeHold(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	var req holdRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	spec := retention.HoldSpec{Case: req.Case, Reason: req.Reason, Custodians: req.Custodians, Query: req.Query}
	if spec.From, err = parseDay("from", req.From); err != nil {
		return err
	}
	if spec.To, err = parseDay("to", req.To); err != nil {
		return err
	}
	if err := spec.Validate(); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	rep, err := m.PlaceHold(r.Context(), c.caller(), spec)
	if err != nil {
		return err
	}
	c.recorded = true // hold.place, by the manager
	writeJSON(w, http.StatusCreated, rep)
	return nil
}

type releaseRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	var req releaseRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return errorf(http.StatusBadRequest, "a release needs a reason")
	}
	reps, err := m.ReleaseHold(r.Context(), c.caller(), r.PathValue("id"), req.Reason)
	if err != nil {
		return err
	}
	c.recorded = true // hold.release, by the manager
	writeJSON(w, http.StatusOK, map[string]any{"released": reps})
	return nil
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	all := r.URL.Query().Get("all")
	reps, err := m.ListHolds(r.Context(), all == "true" || all == "1")
	if err != nil {
		return err
	}
	if err := c.note(r, c.event(audit.OutcomeSuccess), "%d holds", len(reps)); err != nil {
		return err
	}
	if reps == nil {
		reps = []*retention.HoldReport{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"holds": reps})
	return nil
}

func (s *Server) showHold(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	reps, err := m.ShowHold(r.Context(), id)
	if err != nil {
		return err
	}
	ev := c.event(audit.OutcomeSuccess)
	ev.Target.Case = reps[0].Case
	if len(reps) == 1 {
		ev.Target.Hold = reps[0].ID
	}
	if err := c.note(r, ev, "%d holds", len(reps)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"holds": reps})
	return nil
}

type erasureRequest struct {
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	DryRun  bool   `json:"dry_run,omitempty"`
}

func (s *Server) erase(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	var req erasureRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := retention.CheckAddress(strings.ToLower(strings.TrimSpace(req.Subject))); err != nil {
		return errorf(http.StatusBadRequest, "subject: %v", err)
	}
	if strings.TrimSpace(req.Reason) == "" {
		return errorf(http.StatusBadRequest, "an erasure needs a reason (a request reference; never personal data)")
	}
	if strings.Contains(strings.ToLower(req.Reason), strings.ToLower(strings.TrimSpace(req.Subject))) {
		return errorf(http.StatusBadRequest, "the reason holds the subject's address, and the ledger keeps it for ever: give a request reference instead")
	}
	rep, err := m.Erase(r.Context(), c.caller(), retention.ErasureRequest(req))
	if err != nil {
		return err
	}
	c.recorded = true // message.search (dry run) or erasure.execute, by the manager
	writeJSON(w, http.StatusOK, rep)
	return nil
}

type runRequest struct {
	DryRun bool `json:"dry_run,omitempty"`
}

// retentionRun runs the retention schedule's run now (cairn retention run,
// which cannot while serve holds the archive): disposal of what the policy
// no longer keeps, erasures no hold defers any more, Object Lock upkeep.
// The manager records each disposal and erasure, under the caller, before
// it happens; the call itself is recorded with the run's counts (a dry run
// as a read: it changes nothing).
func (s *Server) retentionRun(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	var req runRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	rep, err := m.Run(r.Context(), c.caller(), req.DryRun)
	if err != nil {
		return err
	}
	ev := c.event(audit.OutcomeSuccess)
	what := "retention run: %d checked, disposed %d, erased %d, %d held, %d failed"
	if req.DryRun {
		ev.Action = audit.ActionLogin
		what = "retention dry run: %d checked, would dispose %d, would erase %d, %d held, %d failed"
	}
	ev.Details.Count = int64(len(rep.Disposed) + len(rep.Erased))
	if err := c.note(r, ev, what,
		rep.Checked, len(rep.Disposed), len(rep.Erased), rep.Held, len(rep.Failed)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request, c *call) error {
	m, err := s.retention()
	if err != nil {
		return err
	}
	ctx := r.Context()
	id := r.PathValue("id")
	seq, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		// A SHA-256 names the message too.
		if seq, err = s.opts.Archive.Resolve(ctx, id); err != nil {
			return err
		}
	}
	x, err := m.Explain(ctx, seq)
	if err != nil {
		return err
	}
	ev := c.event(audit.OutcomeSuccess)
	ev.Target.Ledger = fmt.Sprint(seq)
	if err := c.note(r, ev, "%s, rule %s", x.State, x.Rule.Name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}
