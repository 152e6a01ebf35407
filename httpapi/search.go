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

// scopeSQL is the condition "message msgExpr is in the account's scope":
// one of its custodians is in Custodians or under Domains, or a hold of one
// of its Cases keeps it (the retention manager's Members, the IMAP view's
// Cases/ folders). ok is false when the scope sees nothing.
func (s *Server) scopeSQL(ctx context.Context, sc auth.Scope, msgExpr string) (where string, args []any, ok bool, err error) {
	if sc.All {
		return "", nil, true, nil
	}
	var parts, conds []string
	if len(sc.Custodians) > 0 {
		conds = append(conds, "c.addr IN (?"+strings.Repeat(",?", len(sc.Custodians)-1)+")")
		for _, a := range sc.Custodians {
			args = append(args, a)
		}
	}
	for _, d := range sc.Domains {
		conds = append(conds, `c.addr LIKE ? ESCAPE '\'`)
		args = append(args, "%@"+strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(d))
	}
	if len(conds) > 0 {
		parts = append(parts, msgExpr+" IN (SELECT c.message FROM custodians c WHERE "+strings.Join(conds, " OR ")+")")
	}
	if len(sc.Cases) > 0 && s.opts.Retention != nil {
		if m := s.opts.Retention(); m != nil {
			for _, id := range sc.Cases {
				q, a, err := m.Members(ctx, id)
				if err != nil {
					return "", nil, false, fmt.Errorf("scope: case %s: %w", id, err)
				}
				parts = append(parts, msgExpr+" IN (SELECT msg FROM ("+q+"))")
				args = append(args, a...)
			}
		}
	}
	if len(parts) == 0 {
		return "", nil, false, nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", args, true, nil
}

type searchRequest struct {
	// Query is in `cairn search`'s language (IMAP SEARCH keys).
	Query string `json:"query"`
	// Limit caps the matches returned (default 100, at most MaxResults).
	Limit int `json:"limit,omitempty"`
	// After pages: only messages with a greater seq (the previous page's
	// next).
	After *uint64 `json:"after,omitempty"`
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
	Query string `json:"query"`
	// Count is how many messages match in all (within the scope).
	Count   int     `json:"count"`
	Matches []Match `json:"matches"`
	// Next, when set, is the after of the next page.
	Next *uint64 `json:"next,omitempty"`
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
	res := searchResult{Query: node.String(), Matches: []Match{}}
	scope, sargs, ok, err := s.scopeSQL(ctx, c.p.User.Scope, "m.seq")
	if err != nil {
		return err
	}
	if ok {
		where := `m.state = 0 AND (` + comp.Where + `)`
		args := append([]any(nil), comp.Args...)
		if scope != "" {
			where += " AND " + scope
			args = append(args, sargs...)
		}
		if res.Count, err = s.count(ctx, where, args); err != nil {
			return err
		}
		var matches []Match
		// IMAP's substring rule for BODY and TEXT, as the IMAP view keeps
		// it: with few word matches each is checked for the exact phrase;
		// beyond, matching is by words.
		confirm := len(comp.Phrases) > 0 && res.Count <= s.opts.ConfirmLimit
		if confirm {
			all, err := s.page(ctx, where, args, nil, res.Count)
			if err != nil {
				return err
			}
			for _, m := range all {
				if search.ConfirmStored(ctx, s.opts.Archive, m.Seq, comp.Phrases) {
					matches = append(matches, m)
				}
			}
			res.Count = len(matches)
			if req.After != nil {
				i := 0
				for i < len(matches) && matches[i].Seq <= *req.After {
					i++
				}
				matches = matches[i:]
			}
		} else if matches, err = s.page(ctx, where, args, req.After, req.Limit+1); err != nil {
			return err
		}
		if len(matches) > req.Limit {
			matches = matches[:req.Limit]
			next := matches[len(matches)-1].Seq
			res.Next = &next
		}
		res.Matches = append(res.Matches, matches...)
	}
	ev := c.event(audit.OutcomeSuccess)
	ev.Details = audit.Details{Query: node.String(), Count: int64(len(res.Matches)),
		Note: fmt.Sprintf("%d returned of %d matches", len(res.Matches), res.Count)}
	if req.After != nil {
		ev.Details.Note += fmt.Sprintf(", after %d", *req.After)
	}
	if err := c.record(ctx, ev); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

const searchFrom = ` FROM messages m JOIN deliveries d ON d.seq = m.seq WHERE `

// count counts the messages matching a condition over m (messages) and d
// (first delivery).
func (s *Server) count(ctx context.Context, where string, args []any) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*)`+searchFrom+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("search: %w", err)
	}
	return n, nil
}

// page returns up to limit matches after seq after (nil: from the start),
// in seq order: a range of the primary key, however deep the page.
func (s *Server) page(ctx context.Context, where string, args []any, after *uint64, limit int) ([]Match, error) {
	if after != nil {
		where = `m.seq > ? AND ` + where
		args = append([]any{int64(*after)}, args...)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.seq, d.received_at, m.date, m.from_addr, m.subject, m.size`+searchFrom+where+
		` ORDER BY m.seq LIMIT `+strconv.Itoa(limit), args...)
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
	return out, rows.Err()
}

// inScope reports whether the caller's scope covers message seq.
func (s *Server) inScope(ctx context.Context, scope auth.Scope, seq uint64) (bool, error) {
	where, args, ok, err := s.scopeSQL(ctx, scope, "x.seq")
	if err != nil || !ok {
		return false, err
	}
	if where == "" {
		return true, nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, `SELECT 1 FROM (SELECT ? AS seq) x WHERE `+where, append([]any{int64(seq)}, args...)...).Scan(&one)
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
