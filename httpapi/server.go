package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/export"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
	"github.com/cairn-archive/cairn/imapview/search"
	"github.com/cairn-archive/cairn/retention"
)

// Options configure a Server.
type Options struct {
	// Archive answers searches and reads. Required.
	Archive *archive.Store
	// Accounts authenticates tokens and holds the accounts the users
	// endpoints manage. Required.
	Accounts *auth.DB
	// Audit records every call (fail closed). Required.
	Audit audit.Recorder
	// SearchKey is the archive's search key (BODY and TEXT searches).
	SearchKey []byte
	// Retention returns the retention manager (holds, erasure, explain),
	// or nil while it is not running: those calls then answer 503.
	Retention func() *retention.Manager
	// Export runs an eDiscovery export into a new folder under ExportDir;
	// either unset answers 501.
	Export    ExportFunc
	ExportDir string
	// Metrics, if set, is served at /metrics (see NewMetrics).
	Metrics *Metrics
	// MetricsPublic serves /metrics without a token (for a scraper that
	// cannot send one). By default it needs a token of role metrics or
	// admin.
	MetricsPublic bool
	// Ready are the readiness checks of /readyz, all of which must pass.
	Ready []Check
	// ConfirmLimit: a BODY or TEXT search with at most this many word
	// matches checks each for the exact phrase (default 200, as the IMAP
	// view).
	ConfirmLimit int
	// MaxResults caps the matches one search returns (default 10,000).
	MaxResults int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP API. Create it with New; serve Handler; Close it.
type Server struct {
	opts   Options
	lg     *slog.Logger
	db     *sql.DB // the index, read only (searches)
	routes []*Route
	mux    *http.ServeMux

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	authFail *prometheus.CounterVec
}

// New prepares the server: it opens a read-only view of the index.
func New(opts Options) (*Server, error) {
	if opts.Archive == nil || opts.Accounts == nil || opts.Audit == nil {
		return nil, errors.New("httpapi: Archive, Accounts and Audit are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ConfirmLimit == 0 {
		opts.ConfirmLimit = 200
	}
	if opts.MaxResults <= 0 {
		opts.MaxResults = 10000
	}
	if opts.Retention == nil {
		opts.Retention = func() *retention.Manager { return nil }
	}
	db, err := search.OpenReader(opts.Archive.Index().Path(), "", 4)
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &Server{opts: opts, lg: opts.Logger.With("service", "http"), db: db, mux: http.NewServeMux()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_http_requests_total", Help: "HTTP API requests by route and status code.",
	}, []string{"route", "code"})
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cairn_http_request_duration_seconds", Help: "HTTP API request duration by route.",
		Buckets: []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60},
	}, []string{"route"})
	s.authFail = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_http_auth_failures_total", Help: "Refused HTTP API calls by reason (no_token, bad_token, throttled, forbidden).",
	}, []string{"reason"})
	if opts.Metrics != nil {
		opts.Metrics.reg.MustRegister(s.requests, s.duration, s.authFail)
	}
	s.routes = s.table()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	return s, nil
}

// Close releases the index view.
func (s *Server) Close() error { return s.db.Close() }

// Handler is the API's http.Handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Routes returns the route table (for the OpenAPI test and the docs).
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, r := range s.routes {
		out[i] = *r
	}
	return out
}

// Route is one endpoint: its method and path (net/http pattern syntax),
// the roles allowed (none: public) and the audit action of its calls.
type Route struct {
	Method string
	Path   string
	Roles  []auth.Role
	// Action is the audit action recorded for each call ("" for public
	// routes). auth.login marks calls that read without an action of
	// their own (listings, explanations).
	Action audit.Action
	// Library: the operation records its own success event (retention's
	// holds and erasure); the API records only the calls it refuses or
	// that fail.
	Library bool
	h       handler
}

// Public reports whether the route needs no token.
func (r *Route) Public() bool { return len(r.Roles) == 0 }

type handler func(w http.ResponseWriter, r *http.Request, c *call) error

var (
	readers  = []auth.Role{auth.RoleAuditor, auth.RoleLegal, auth.RoleAdmin}
	legal    = []auth.Role{auth.RoleLegal, auth.RoleAdmin}
	admins   = []auth.Role{auth.RoleAdmin}
	everyone = []auth.Role{auth.RoleMetrics, auth.RoleAuditor, auth.RoleLegal, auth.RoleAdmin}
	scrapers = []auth.Role{auth.RoleMetrics, auth.RoleAdmin}
)

// table is every route. Keep openapi.yaml in step (TestOpenAPIInSync).
func (s *Server) table() []*Route {
	metricsRoles := scrapers
	if s.opts.MetricsPublic {
		metricsRoles = nil
	}
	return []*Route{
		{Method: "GET", Path: "/healthz", h: s.healthz},
		{Method: "GET", Path: "/readyz", h: s.readyz},
		{Method: "GET", Path: "/openapi.json", h: serveOpenAPI},
		{Method: "GET", Path: "/metrics", Roles: metricsRoles, Action: audit.ActionLogin, h: s.metrics},
		{Method: "GET", Path: "/api/v1/whoami", Roles: everyone, Action: audit.ActionLogin, h: s.whoami},
		{Method: "POST", Path: "/api/v1/search", Roles: readers, Action: audit.ActionSearch, h: s.search},
		{Method: "GET", Path: "/api/v1/messages/{id}", Roles: readers, Action: audit.ActionFetch, h: s.message},
		{Method: "GET", Path: "/api/v1/holds", Roles: legal, Action: audit.ActionLogin, h: s.listHolds},
		{Method: "POST", Path: "/api/v1/holds", Roles: legal, Action: audit.ActionHoldPlace, Library: true, h: s.placeHold},
		{Method: "GET", Path: "/api/v1/holds/{id}", Roles: legal, Action: audit.ActionLogin, h: s.showHold},
		{Method: "POST", Path: "/api/v1/holds/{id}/release", Roles: legal, Action: audit.ActionHoldRelease, Library: true, h: s.releaseHold},
		{Method: "POST", Path: "/api/v1/erasures", Roles: legal, Action: audit.ActionErase, Library: true, h: s.erase},
		{Method: "GET", Path: "/api/v1/retention/explain/{id}", Roles: legal, Action: audit.ActionLogin, h: s.explain},
		{Method: "POST", Path: "/api/v1/retention/run", Roles: legal, Action: audit.ActionDispose, h: s.retentionRun},
		{Method: "POST", Path: "/api/v1/exports", Roles: legal, Action: audit.ActionExport, Library: true, h: s.export},
		{Method: "GET", Path: "/api/v1/exports/{id}", Roles: legal, Action: audit.ActionFetch, h: s.downloadExport},
		{Method: "GET", Path: "/api/v1/users", Roles: admins, Action: audit.ActionLogin, h: s.listUsers},
		{Method: "POST", Path: "/api/v1/users", Roles: admins, Action: audit.ActionUserChange, h: s.addUser},
		{Method: "POST", Path: "/api/v1/users/{name}/disable", Roles: admins, Action: audit.ActionUserChange, h: s.disableUser},
		{Method: "POST", Path: "/api/v1/users/{name}/enable", Roles: admins, Action: audit.ActionUserChange, h: s.enableUser},
	}
}

// call is one authenticated request: who makes it, and its audit state.
type call struct {
	s      *Server
	route  *Route
	p      *auth.Principal // nil on public routes
	actor  audit.Actor
	source audit.Source
	// recorded is set once an event for this call is in the audit log
	// (by the handler, or by the library it called).
	recorded bool
}

// event returns an event of the route's action by the caller.
func (c *call) event(outcome audit.Outcome) audit.Event {
	return audit.Event{Action: c.route.Action, Outcome: outcome, Actor: c.actor, Source: c.source}
}

// record records ev; an error means the call must fail (fail closed).
func (c *call) record(ctx context.Context, ev audit.Event) error {
	if _, err := c.s.opts.Audit.Record(ctx, ev); err != nil {
		c.s.lg.Error("audit log refused an event; the call fails", "action", ev.Action, "err", err)
		return errAudit
	}
	c.recorded = true
	return nil
}

// note records the call as its route's action (or auth.login) with a note
// naming the request: for calls that read without an action of their own.
func (c *call) note(r *http.Request, ev audit.Event, format string, a ...any) error {
	ev.Details.Note = r.Method + " " + r.URL.Path
	if format != "" {
		ev.Details.Note += ": " + fmt.Sprintf(format, a...)
	}
	return c.record(r.Context(), ev)
}

// caller is the retention package's view of who calls.
func (c *call) caller() retention.Caller { return retention.Caller{Actor: c.actor, Source: c.source} }

// apiError is an error with an HTTP status; its message is shown to the
// client.
type apiError struct {
	status int
	msg    string
	header map[string]string
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, a ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, a...)}
}

// errAudit: the audit log refused the call's event.
var errAudit = &apiError{status: http.StatusServiceUnavailable, msg: "audit log unavailable: every call is audited, so none is served"}

type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, e *apiError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	writeJSON(w, e.status, errorBody{Error: e.msg, Status: e.status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// maxBody bounds a JSON request body.
const maxBody = 1 << 20

// decode reads a JSON body strictly: unknown fields and trailing data are
// refused.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errorf(http.StatusUnsupportedMediaType, "send application/json, not %s", ct)
	}
	d := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "empty request body: send a JSON object")
		}
		return errorf(http.StatusBadRequest, "request body: %v", err)
	}
	if d.More() {
		return errorf(http.StatusBadRequest, "request body: one JSON object only")
	}
	return nil
}

// statusWriter remembers the status for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientAddr is the peer's address (no forwarding header is trusted).
func clientAddr(r *http.Request) (netip.Addr, int) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, 0
	}
	return ap.Addr().Unmap(), int(ap.Port())
}

// bearer extracts the token of an Authorization: Bearer header (RFC 6750
// §2.1; the scheme is case-insensitive, RFC 9110 §11.1).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// tokenID is the public part of a well-formed token, for the audit event
// of a refused one (never the secret).
func tokenID(tok string) string {
	rest, ok := strings.CutPrefix(tok, "cairn_")
	if !ok || len(rest) < 14 || rest[13] != '_' {
		return ""
	}
	id := rest[:13]
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return ""
		}
	}
	return id
}

// wrap authenticates, authorises and audits a route's calls.
func (s *Server) wrap(rt *Route) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		t0 := time.Now()
		w := &statusWriter{ResponseWriter: rw}
		defer func() {
			code := w.status
			if code == 0 {
				code = http.StatusOK
			}
			s.requests.WithLabelValues(rt.Path, strconv.Itoa(code)).Inc()
			s.duration.WithLabelValues(rt.Path).Observe(time.Since(t0).Seconds())
		}()
		if rt.Public() {
			if err := rt.h(w, r, &call{s: s, route: rt}); err != nil {
				s.fail(w, r, nil, err)
			}
			return
		}
		ip, port := clientAddr(r)
		c := &call{s: s, route: rt, source: audit.Source{Port: port, TLS: r.TLS != nil, Service: "http"}}
		if ip.IsValid() {
			c.source.IP = ip.String()
		}
		c.actor.AuthMech = "bearer"
		tok, ok := bearer(r)
		if !ok {
			s.authFail.WithLabelValues("no_token").Inc()
			s.refuse(w, r, c, audit.ActionLoginFailure, &apiError{status: http.StatusUnauthorized,
				msg:    "authentication required: send Authorization: Bearer <token> (cairn user token create)",
				header: map[string]string{"WWW-Authenticate": `Bearer realm="cairn"`}}, "no bearer token")
			return
		}
		if id := tokenID(tok); id != "" {
			c.actor.Session = "token:" + id
		}
		p, err := s.opts.Accounts.AuthenticateToken(r.Context(), tok, ip)
		var te *auth.ThrottledError
		switch {
		case errors.As(err, &te):
			s.authFail.WithLabelValues("throttled").Inc()
			secs := int(te.Wait.Round(time.Second) / time.Second)
			s.refuse(w, r, c, audit.ActionLoginFailure, &apiError{status: http.StatusTooManyRequests,
				msg:    fmt.Sprintf("too many failed authentications from your address; retry in %ds", secs),
				header: map[string]string{"Retry-After": strconv.Itoa(secs)}}, "throttled after failed attempts")
			return
		case errors.Is(err, auth.ErrAuthFailed):
			s.authFail.WithLabelValues("bad_token").Inc()
			s.refuse(w, r, c, audit.ActionLoginFailure, &apiError{status: http.StatusUnauthorized,
				msg:    "invalid, expired or revoked token",
				header: map[string]string{"WWW-Authenticate": `Bearer realm="cairn", error="invalid_token"`}}, "invalid, expired or revoked token")
			return
		case err != nil:
			s.lg.Error("token check failed", "err", err)
			s.refuse(w, r, c, audit.ActionLoginFailure, errorf(http.StatusServiceUnavailable, "accounts database unavailable"), "accounts database: "+err.Error())
			return
		}
		c.p = p
		c.actor = audit.Actor{User: p.User.Name, Role: string(p.Role), Session: "token:" + p.Token.ID, AuthMech: "bearer"}
		if !slices.Contains(rt.Roles, p.Role) {
			s.authFail.WithLabelValues("forbidden").Inc()
			action := rt.Action
			if action == audit.ActionLogin {
				action = audit.ActionLoginFailure
			}
			s.refuse(w, r, c, action, errorf(http.StatusForbidden, "role %s may not %s %s (allowed: %s)", p.Role, r.Method, rt.Path, roleList(rt.Roles)),
				fmt.Sprintf("forbidden: role %s may not %s %s", p.Role, r.Method, rt.Path))
			return
		}
		if err := rt.h(w, r, c); err != nil {
			s.fail(w, r, c, err)
		}
	})
}

func roleList(rs []auth.Role) string {
	var out []string
	for _, r := range rs {
		out = append(out, string(r))
	}
	return strings.Join(out, ", ")
}

// refuse records a refused call, then answers it (503 instead when the
// event cannot be recorded).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, c *call, action audit.Action, e *apiError, reason string) {
	ev := audit.Event{Action: action, Outcome: audit.OutcomeFailure, Reason: reason, Actor: c.actor, Source: c.source,
		Details: audit.Details{Note: r.Method + " " + r.URL.Path}}
	if err := c.record(r.Context(), ev); err != nil {
		writeError(w, errAudit)
		return
	}
	writeError(w, e)
}

// fail answers a handler's error; for an authenticated call it records
// the failure first unless the handler recorded one.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, c *call, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		e = s.classify(err)
	}
	if w.(*statusWriter).status != 0 {
		// The answer has begun (a stream broke): nothing more to say.
		s.lg.Warn("call failed after its answer began", "path", r.URL.Path, "err", err)
		return
	}
	if c != nil && c.p != nil && e != errAudit && !c.recorded {
		ev := c.event(audit.OutcomeFailure)
		ev.Reason = err.Error()
		ev.Details.Note = r.Method + " " + r.URL.Path
		if _, aerr := s.opts.Audit.Record(context.WithoutCancel(r.Context()), ev); aerr != nil {
			s.lg.Error("audit log refused a failure event", "err", aerr)
			e = errAudit
		}
	}
	writeError(w, e)
}

// classify maps the libraries' errors to statuses.
func (s *Server) classify(err error) *apiError {
	switch {
	case errors.Is(err, retention.ErrNoHold), errors.Is(err, retention.ErrNoMessage), errors.Is(err, archive.ErrNotFound),
		errors.Is(err, auth.ErrNotFound):
		return errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, export.ErrNoActiveHold):
		return errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, auth.ErrExists):
		return errorf(http.StatusConflict, "%v", err)
	case errors.Is(err, retention.ErrNoArchive):
		return errorf(http.StatusServiceUnavailable, "%v", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, "%v", err)
	}
	s.lg.Error("call failed", "err", err)
	return errorf(http.StatusInternalServerError, "%v", err)
}

// retention returns the manager, or the 503 error.
func (s *Server) retention() (*retention.Manager, error) {
	m := s.opts.Retention()
	if m == nil {
		return nil, errorf(http.StatusServiceUnavailable, "retention is not running yet; retry")
	}
	return m, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, c *call) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
	return nil
}

type whoami struct {
	User    string    `json:"user"`
	Role    auth.Role `json:"role"`
	Account auth.Role `json:"account_role"`
	Scope   string    `json:"scope"`
	Token   string    `json:"token"`
	Label   string    `json:"token_label,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := c.note(r, c.event(audit.OutcomeSuccess), ""); err != nil {
		return err
	}
	p := c.p
	writeJSON(w, http.StatusOK, whoami{User: p.User.Name, Role: p.Role, Account: p.User.Role, Scope: p.User.Scope.String(),
		Token: p.Token.ID, Label: p.Token.Label, Expires: p.Token.Expires})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.opts.Metrics == nil {
		return errorf(http.StatusNotFound, "metrics are not enabled")
	}
	if c.p != nil {
		if err := c.note(r, c.event(audit.OutcomeSuccess), ""); err != nil {
			return err
		}
	}
	s.opts.Metrics.handler.ServeHTTP(w, r)
	return nil
}
