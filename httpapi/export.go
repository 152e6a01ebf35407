package httpapi

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-archive/cairn/archive/export"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/imapview/search"
)

// Exports: POST /api/v1/exports writes one under ExportDir (as `cairn
// export` does, with archive/export), GET /api/v1/exports/{id} hands it
// out as a tar stream. The folder keeps the export, so that the archive's
// operators can hand it over again and `cairn verify-export` can check it
// on the server too.

// ExportRequest asks for an eDiscovery export of a case's held messages
// or of a search.
type ExportRequest struct {
	Case   string `json:"case,omitempty"`
	Query  string `json:"query,omitempty"`
	Format string `json:"format,omitempty"` // eml (default) or mbox
}

// ExportFunc writes an export for actor into the folder out (which does
// not exist yet). It records the export.create event itself, before any
// message is written (fail closed), as export.Run does.
type ExportFunc func(ctx context.Context, actor audit.Actor, source audit.Source, req ExportRequest, out string) (*export.Result, error)

// exportResult is the answer to POST /api/v1/exports.
type exportResult struct {
	ID         string `json:"id"`       // the export's folder under the export folder, and its download id
	Download   string `json:"download"` // GET this for a tar of the export
	ManifestID string `json:"manifest_id"`
	Format     string `json:"format"`
	Messages   int64  `json:"messages"`
	Entries    int64  `json:"entries"`
	Bytes      int64  `json:"bytes"`
	Checkpoint struct {
		Origin string `json:"origin"`
		Size   uint64 `json:"size"`
	} `json:"checkpoint"`
	ManifestSHA256 string `json:"manifest_sha256"`
	AuditEvent     string `json:"audit_event"`
}

func (s *Server) export(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.opts.Export == nil || s.opts.ExportDir == "" {
		return errorf(http.StatusNotImplemented, "exports are not available on this server")
	}
	var req ExportRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	req.Case, req.Query = strings.TrimSpace(req.Case), strings.TrimSpace(req.Query)
	if (req.Case == "") == (req.Query == "") {
		return errorf(http.StatusBadRequest, "give either case or query")
	}
	if req.Query != "" {
		if _, err := search.Parse(req.Query); err != nil {
			return errorf(http.StatusBadRequest, "query: %v", err)
		}
	}
	// An export shows message content: a scoped account exports only the
	// cases in its scope (a query could reach beyond it).
	if sc := c.p.User.Scope; !sc.All && (req.Case == "" || !sc.CoversCase(req.Case)) {
		return errorf(http.StatusForbidden, "the account's scope (%s) does not cover this export: a scoped account exports only its cases", sc)
	}
	switch req.Format {
	case "":
		req.Format = export.FormatEML
	case export.FormatEML, export.FormatMbox:
	default:
		return errorf(http.StatusBadRequest, "format %q: want eml or mbox", req.Format)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.opts.ExportDir, 0o700); err != nil {
		return fmt.Errorf("export folder: %w", err)
	}
	res, err := s.opts.Export(r.Context(), c.actor, c.source, req, filepath.Join(s.opts.ExportDir, id.String()))
	if err != nil {
		return err
	}
	c.recorded = true // export.create, by the export
	out := exportResult{ID: id.String(), Download: "/api/v1/exports/" + id.String(), ManifestID: res.ID, Format: res.Format,
		Messages: res.Messages, Entries: res.Entries, Bytes: res.Bytes, AuditEvent: res.AuditEvent}
	out.Checkpoint.Origin, out.Checkpoint.Size = res.Checkpoint.Origin, res.Checkpoint.Size
	out.ManifestSHA256 = fmt.Sprintf("%x", res.ManifestSHA256)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// exportFolder returns the folder of export id, or a 404.
func (s *Server) exportFolder(id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id || s.opts.ExportDir == "" {
		return "", errorf(http.StatusNotFound, "no export %q", id)
	}
	dir := filepath.Join(s.opts.ExportDir, id)
	if fi, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil || !fi.Mode().IsRegular() {
		return "", errorf(http.StatusNotFound, "no export %q", id)
	}
	return dir, nil
}

// downloadExport streams an export as a tar (POSIX ustar/PAX) of its
// folder, files in name order, under a top folder named by its id.
func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request, c *call) error {
	ctx := r.Context()
	id := r.PathValue("id")
	dir, err := s.exportFolder(id)
	if err != nil {
		return err
	}
	var hdr struct {
		Selection struct {
			Case string `json:"case"`
		} `json:"selection"`
		Counts struct {
			Messages int64 `json:"messages"`
		} `json:"counts"`
	}
	f, err := os.Open(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return err
	}
	err = json.NewDecoder(f).Decode(&hdr)
	f.Close()
	if err != nil {
		return fmt.Errorf("export %s: manifest.json: %w", id, err)
	}
	if sc := c.p.User.Scope; !sc.All && (hdr.Selection.Case == "" || !sc.CoversCase(hdr.Selection.Case)) {
		return errorf(http.StatusNotFound, "no export %q", id) // as if absent: a scope does not reveal others
	}
	var files []string
	var total int64
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, p)
			total += fi.Size()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", id, err)
	}
	ev := c.event(audit.OutcomeSuccess)
	ev.Target.Case = hdr.Selection.Case
	ev.Details = audit.Details{Parts: []string{"BODY[]"}, Bytes: total, Count: hdr.Counts.Messages, Note: "download of export " + id}
	// Recorded before a byte is sent: no audit, no read.
	if err := c.record(ctx, ev); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="cairn-export-`+id+`.tar"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	for _, p := range files {
		if err := addFile(tw, dir, id, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, dir, id, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: id + "/" + filepath.ToSlash(rel), Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime().UTC().Truncate(time.Second), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
