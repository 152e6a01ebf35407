package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/imapview/search"
)

// scopeSQL is the condition "message m.seq is in the account's scope":
// one of its custodians is in Custodians or under Domains. Case scopes are
// not resolved here (they see nothing through the API yet). ok is false
// when the scope sees nothing.
func scopeSQL(s auth.Scope, msgExpr string) (where string, args []any, ok bool) {
	if s.All {
		return "", nil, true
	}
	var conds []string
	if len(s.Custodians) > 0 {
		conds = append(conds, "c.addr IN (?"+strings.Repeat(",?", len(s.Custodians)-1)+")")
		for _, a := range s.Custodians {
			args = append(args, a)
		}
	}
	for _, d := range s.Domains {
		conds = append(conds, `c.addr LIKE ? ESCAPE '\'`)
		args = append(args, "%@"+strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(d))
	}
	if len(conds) == 0 {
		return "", nil, false
	}
	return msgExpr + " IN (SELECT c.message FROM custodians c WHERE " + strings.Join(conds, " OR ") + ")", args, true
}

type searchRequest struct {
	// Query is in `cairn search`'s language (IMAP SEARCH keys).
	Query string `json:"query"`
	// Limit caps the matches returned (default 100).
	Limit int `json:"limit,omitempty"`
}

// Match is one search result.
type Match struct {
	Seq      uint64    `json:"seq"`
	Archived time.Time `json:"archived"`
	Date     time.Time `json:"date,omitzero"`
	From     string    `json:"from"`
	Subject  string    `json:"subject"`
	Size     int64     `json:"size"`
}

type searchResult struct {
	Query   string  `json:"query"`
	Count   int     `json:"count"` // matches in all (within the scope)
	Matches []Match `json:"matches"`
	// Truncated: more matches than returned (raise limit).
	Truncated bool `json:"truncated,omitempty"`
}

func (s *Server) search(w http.ResponseWriter, r *http.Request, c *call) error {
	var req searchRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Limit == 0 {
		req.Limit = 100
	}
	if req.Limit < 0 || req.Limit > s.opts.MaxResults {
		return errorf(http.StatusBadRequest, "limit %d: want 1 to %d", req.Limit, s.opts.MaxResults)
	}
	node, err := search.Parse(req.Query)
	if err != nil {
		return errorf(http.StatusBadRequest, "query: %v", err)
	}
	ctx := r.Context()
	comp, err := search.Compile(node, search.Options{SearchKey: s.opts.SearchKey})
	if err != nil {
		return errorf(http.StatusBadRequest, "query: %v", err)
	}
	if comp.FullText {
		if err := s.opts.Archive.FlushSearch(ctx); err != nil {
			s.lg.Warn("full-text index not brought up to date; recent messages may be missing", "err", err)
		}
	}
	var matches []Match
	if scope, sargs, ok := scopeSQL(c.p.User.Scope, "m.seq"); ok {
		where := `m.state = 0 AND (` + comp.Where + `)`
		args := append([]any(nil), comp.Args...)
		if scope != "" {
			where += " AND " + scope
			args = append(args, sargs...)
		}
		if matches, err = s.query(ctx, where, args); err != nil {
			return err
		}
	}
	if len(comp.Phrases) > 0 && len(matches) <= s.opts.ConfirmLimit {
		kept := matches[:0]
		for _, m := range matches {
			if search.ConfirmStored(ctx, s.opts.Archive, m.Seq, comp.Phrases) {
				kept = append(kept, m)
			}
		}
		matches = kept
	}
	res := searchResult{Query: node.String(), Count: len(matches), Matches: matches}
	if len(matches) > req.Limit {
		res.Matches, res.Truncated = matches[:req.Limit], true
	}
	if res.Matches == nil {
		res.Matches = []Match{}
	}
	ev := c.event(audit.OutcomeSuccess)
	ev.Details = audit.Details{Query: node.String(), Count: int64(len(matches)), Note: fmt.Sprintf("%d returned", len(res.Matches))}
	if err := c.record(ctx, ev); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// query runs a search condition over m (messages) and d (first delivery).
// It reads at most MaxResults+ConfirmLimit rows: beyond, the answer says
// so rather than hold an unbounded list.
func (s *Server) query(ctx context.Context, where string, args []any) ([]Match, error) {
	limit := s.opts.MaxResults + s.opts.ConfirmLimit + 1
	rows, err := s.db.QueryContext(ctx, `SELECT m.seq, d.received_at, m.date, m.from_addr, m.subject, m.size FROM messages m
		JOIN deliveries d ON d.seq = m.seq WHERE `+where+` ORDER BY m.seq LIMIT `+strconv.Itoa(limit), args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	var out []Match
	for rows.Next() {
		var m Match
		var at int64
		var date sql.NullInt64
		if err := rows.Scan(&m.Seq, &at, &date, &m.From, &m.Subject, &m.Size); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		m.Archived = time.Unix(0, at).UTC()
		if date.Valid {
			m.Date = time.Unix(date.Int64, 0).UTC()
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if len(out) == limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, "more than %d matches: narrow the query", limit-1)
	}
	return out, nil
}

// inScope reports whether the caller's scope covers message seq.
func (s *Server) inScope(ctx context.Context, scope auth.Scope, seq uint64) (bool, error) {
	where, args, ok := scopeSQL(scope, "?")
	if !ok {
		return false, nil
	}
	if where == "" {
		return true, nil
	}
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 WHERE `+where, append([]any{int64(seq)}, args...)...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("scope: %w", err)
	}
	return true, nil
}

// message answers the original bytes of one message (message/rfc822), as
// `cairn cat` prints them.
func (s *Server) message(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	seq, err := s.opts.Archive.Resolve(ctx, id)
	if err == nil {
		var in bool
		if in, err = s.inScope(ctx, c.p.User.Scope, seq); err == nil && !in {
			// As if it did not exist: a scope does not reveal what is
			// outside it.
			err = fmt.Errorf("%w: %s", archive.ErrNotFound, id)
		}
	}
	if err != nil {
		ev := c.event(audit.OutcomeFailure)
		ev.Reason = err.Error()
		ev.Details = audit.Details{Parts: []string{"BODY[]"}, Query: id}
		if aerr := c.record(ctx, ev); aerr != nil {
			return aerr
		}
		if errors.Is(err, archive.ErrNotFound) {
			return errorf(http.StatusNotFound, "no message %s", id)
		}
		return err
	}
	m, err := s.opts.Archive.OpenMessage(ctx, seq)
	if errors.Is(err, archive.ErrUnreadable) || errors.Is(err, index.ErrNotFound) {
		ev := c.event(audit.OutcomeFailure)
		ev.Reason = err.Error()
		ev.Target.Ledger = strconv.FormatUint(seq, 10)
		ev.Details.Parts = []string{"BODY[]"}
		if aerr := c.record(ctx, ev); aerr != nil {
			return aerr
		}
		return errorf(http.StatusGone, "%v", err)
	}
	if err != nil {
		return err
	}
	defer m.Close()
	ev := c.event(audit.OutcomeSuccess)
	ev.Target.Ledger = strconv.FormatUint(seq, 10)
	ev.Details = audit.Details{Parts: []string{"BODY[]"}, Bytes: m.Size(), Count: 1}
	// Recorded before a byte is sent: no audit, no read.
	if err := c.record(ctx, ev); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Content-Length", strconv.FormatInt(m.Size(), 10))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Cairn-Seq", strconv.FormatUint(seq, 10))
	w.WriteHeader(http.StatusOK)
	_, err = m.WriteTo(w)
	return err
}
