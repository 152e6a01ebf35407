package httpapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
)

// The admin's endpoints: accounts, as `cairn user add|list|disable|enable`.
// Every change is recorded (user.change) before it is made; a change that
// then fails is recorded as a failure.

// userView is an account as the API shows it.
type userView struct {
	Name     string    `json:"name"`
	Role     auth.Role `json:"role"`
	Scope    string    `json:"scope"`
	Disabled bool      `json:"disabled"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

func viewOf(u *auth.User) userView {
	return userView{Name: u.Name, Role: u.Role, Scope: u.Scope.String(), Disabled: u.Disabled, Created: u.Created, Updated: u.Updated}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	users, err := s.opts.Accounts.List(r.Context())
	if err != nil {
		return err
	}
	if err := c.note(r, c.event(audit.OutcomeSuccess), "%d accounts", len(users)); err != nil {
		return err
	}
	out := []userView{}
	for _, u := range users {
		out = append(out, viewOf(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
	return nil
}

type addUserRequest struct {
	Name  string   `json:"name"`
	Role  string   `json:"role"`
	Scope []string `json:"scope,omitempty"` // default all
	// Password, if empty, is generated and returned once.
	Password string `json:"password,omitempty"`
}

type addUserResult struct {
	User     userView `json:"user"`
	Password string   `json:"password,omitempty"` // generated: shown once
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var req addUserRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	scope := auth.ScopeAll
	if len(req.Scope) > 0 {
		if scope, err = auth.ParseScope(req.Scope...); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
		if scope.Empty() {
			return errorf(http.StatusBadRequest, "scope selects nothing")
		}
	}
	name, err := auth.NormalizeName(req.Name)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	pw, generated := req.Password, false
	if pw == "" {
		pw, generated = auth.GeneratePassword(), true
	}
	if err := auth.CheckPasswordPolicy(pw); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	u, err := s.change(r, c, name, fmt.Sprintf("add role=%s scope=%s", role, scope), func() (*auth.User, error) {
		return s.opts.Accounts.Add(r.Context(), name, role, scope, pw)
	})
	if err != nil {
		return err
	}
	res := addUserResult{User: viewOf(u)}
	if generated {
		res.Password = pw
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request, c *call, disable bool) error {
	name, err := auth.NormalizeName(r.PathValue("name"))
	if err != nil {
		return errorf(http.StatusNotFound, "%v", err)
	}
	verb := map[bool]string{true: "disable", false: "enable"}[disable]
	u, err := s.change(r, c, name, verb, func() (*auth.User, error) {
		if err := s.opts.Accounts.SetDisabled(r.Context(), name, disable); err != nil {
			return nil, err
		}
		return s.opts.Accounts.Get(r.Context(), name)
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewOf(u)})
	return nil
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.setDisabled(w, r, c, true)
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.setDisabled(w, r, c, false)
}

// change records a user.change event, then makes the change; a change that
// fails is recorded again as a failure.
func (s *Server) change(r *http.Request, c *call, name, note string, fn func() (*auth.User, error)) (*auth.User, error) {
	ev := c.event(audit.OutcomeSuccess)
	ev.Target.User = name
	ev.Details.Note = note
	if err := c.record(r.Context(), ev); err != nil {
		return nil, err
	}
	u, err := fn()
	if err != nil {
		ev.Outcome, ev.Reason = audit.OutcomeFailure, err.Error()
		if aerr := c.record(r.Context(), ev); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	return u, nil
}
