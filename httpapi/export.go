package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/cairn-archive/cairn/audit"
)

// ExportRequest asks for an eDiscovery export of a case's held messages
// or of a search.
type ExportRequest struct {
	Case   string `json:"case,omitempty"`
	Query  string `json:"query,omitempty"`
	Format string `json:"format,omitempty"` // eml (default) or mbox
}

// ExportFunc runs an export for actor and returns what to answer (the
// export's summary). It records the export.create event itself, before
// the export is written (fail closed), as `cairn export` does.
type ExportFunc func(ctx context.Context, actor audit.Actor, source audit.Source, req ExportRequest) (any, error)

func (s *Server) export(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.opts.Export == nil {
		return errorf(http.StatusNotImplemented, "exports are not available in this build")
	}
	var req ExportRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	req.Case, req.Query = strings.TrimSpace(req.Case), strings.TrimSpace(req.Query)
	if (req.Case == "") == (req.Query == "") {
		return errorf(http.StatusBadRequest, "give either case or query")
	}
	// An export shows message content: a scoped account exports only the
	// cases in its scope (a query could reach beyond it).
	if sc := c.p.User.Scope; !sc.All && (req.Case == "" || !sc.CoversCase(req.Case)) {
		return errorf(http.StatusForbidden, "the account's scope (%s) does not cover this export: a scoped account exports only its cases", sc)
	}
	switch req.Format {
	case "":
		req.Format = "eml"
	case "eml", "mbox":
	default:
		return errorf(http.StatusBadRequest, "format %q: want eml or mbox", req.Format)
	}
	res, err := s.opts.Export(r.Context(), c.actor, c.source, req)
	if err != nil {
		return err
	}
	c.recorded = true // export.create, by the export
	writeJSON(w, http.StatusCreated, res)
	return nil
}
