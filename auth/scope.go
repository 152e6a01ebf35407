package auth

import (
	"fmt"
	"slices"
	"strings"
)

// Scope limits what an account sees of the archive. The zero Scope sees
// nothing; All sees every message. Otherwise an account sees a message
// when one of its custodians (the mailboxes it was delivered to) is in
// Custodians or under one of Domains, or when it is held for one of Cases
// (a litigation hold's case id, resolved by the retention package).
type Scope struct {
	All        bool
	Custodians []string // lower-case addresses
	Domains    []string // lower-case domains, without "@"
	Cases      []string // case ids
}

// ScopeAll sees everything.
var ScopeAll = Scope{All: true}

// ParseScope reads scope terms, as `cairn user add --scope` takes them,
// each possibly a comma-separated list:
//
//	all                     every message
//	custodian:ADDR | ADDR   messages of one custodian (ADDR contains "@")
//	domain:DOMAIN | @DOMAIN messages of every custodian under DOMAIN
//	case:ID                 messages held for case ID
//
// "all" with anything else is all.
func ParseScope(terms ...string) (Scope, error) {
	var s Scope
	for _, term := range terms {
		for _, t := range strings.Split(term, ",") {
			t = strings.TrimSpace(t)
			if t == "" {
				continue
			}
			kind, val, ok := strings.Cut(t, ":")
			if !ok {
				switch {
				case strings.EqualFold(t, "all"):
					s.All = true
					continue
				case strings.HasPrefix(t, "@"):
					kind, val = "domain", t[1:]
				case strings.Contains(t, "@"):
					kind, val = "custodian", t
				default:
					return Scope{}, fmt.Errorf("auth: scope %q: want all, custodian:ADDR, domain:DOMAIN or case:ID", t)
				}
			}
			val = strings.TrimSpace(val)
			switch strings.ToLower(kind) {
			case "custodian":
				a := strings.ToLower(val)
				if i := strings.LastIndexByte(a, '@'); i <= 0 || i == len(a)-1 || strings.ContainsAny(a, " ,\t") {
					return Scope{}, fmt.Errorf("auth: scope %q: %q is not a mail address", t, val)
				}
				s.Custodians = append(s.Custodians, a)
			case "domain":
				d := strings.ToLower(strings.TrimPrefix(val, "@"))
				if !validDomain(d) {
					return Scope{}, fmt.Errorf("auth: scope %q: %q is not a domain", t, val)
				}
				s.Domains = append(s.Domains, d)
			case "case":
				if !validCaseID(val) {
					return Scope{}, fmt.Errorf("auth: scope %q: a case id has 1-64 letters, digits, '.', '_' or '-'", t)
				}
				s.Cases = append(s.Cases, val)
			default:
				return Scope{}, fmt.Errorf("auth: scope %q: unknown kind %q (custodian, domain, case)", t, kind)
			}
		}
	}
	s.normalize()
	return s, nil
}

func (s *Scope) normalize() {
	if s.All {
		*s = ScopeAll
		return
	}
	for _, l := range []*[]string{&s.Custodians, &s.Domains, &s.Cases} {
		slices.Sort(*l)
		*l = slices.Compact(*l)
		if len(*l) == 0 {
			*l = nil
		}
	}
}

// String is the canonical form ParseScope reads back: "all", or the terms
// sorted and comma-separated ("custodian:a@x.com,domain:y.org,case:C-1");
// "" for the empty scope.
func (s Scope) String() string {
	if s.All {
		return "all"
	}
	var out []string
	for _, c := range s.Custodians {
		out = append(out, "custodian:"+c)
	}
	for _, d := range s.Domains {
		out = append(out, "domain:"+d)
	}
	for _, c := range s.Cases {
		out = append(out, "case:"+c)
	}
	return strings.Join(out, ",")
}

// Empty reports whether the scope sees nothing.
func (s Scope) Empty() bool {
	return !s.All && len(s.Custodians) == 0 && len(s.Domains) == 0 && len(s.Cases) == 0
}

// CoversCustodian reports whether a custodian address is in the scope by
// itself (through All, Custodians or Domains; Cases are about messages).
func (s Scope) CoversCustodian(addr string) bool {
	if s.All {
		return true
	}
	addr = strings.ToLower(addr)
	if slices.Contains(s.Custodians, addr) {
		return true
	}
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return slices.Contains(s.Domains, addr[i+1:])
	}
	return false
}

// CoversCase reports whether case id is in the scope.
func (s Scope) CoversCase(id string) bool {
	return s.All || slices.Contains(s.Cases, id)
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c > 127) {
			return false
		}
	}
	return true
}

func validCaseID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
