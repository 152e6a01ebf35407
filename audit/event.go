package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// SchemaVersion is the version of the Event JSON schema, stored in every
// entry as "v". It changes only when a field changes meaning or is removed;
// added optional fields keep the version.
const SchemaVersion = 1

// Action names what happened. The set is fixed (issue 5); ValidAction
// reports whether a string is one of them.
type Action string

// The actions. The OCSF class of each is in docs/AUDIT.md.
const (
	ActionLogin             Action = "auth.login"         // successful authentication
	ActionLoginFailure      Action = "auth.failure"       // refused authentication
	ActionSelect            Action = "mailbox.select"     // SELECT or EXAMINE
	ActionFetch             Action = "message.fetch"      // FETCH, cairn cat
	ActionSearch            Action = "message.search"     // SEARCH, cairn search
	ActionFlag              Action = "message.flag"       // STORE of an auditor's own flags
	ActionExport            Action = "export.create"      // eDiscovery export
	ActionHoldPlace         Action = "hold.place"         // litigation hold placed
	ActionHoldRelease       Action = "hold.release"       // litigation hold released
	ActionDispose           Action = "retention.dispose"  // disposal under a policy
	ActionErase             Action = "erasure.execute"    // GDPR erasure
	ActionUserChange        Action = "user.change"        // user added, disabled, password or role changed
	ActionKeyRotate         Action = "key.rotate"         // archive key rotation
	ActionConfigChange      Action = "config.change"      // configuration changed
	ActionCheckpointPublish Action = "checkpoint.publish" // a message-ledger checkpoint, copied to every SIEM
)

var actions = []Action{
	ActionLogin, ActionLoginFailure, ActionSelect, ActionFetch, ActionSearch,
	ActionFlag, ActionExport, ActionHoldPlace, ActionHoldRelease, ActionDispose,
	ActionErase, ActionUserChange, ActionKeyRotate, ActionConfigChange,
	ActionCheckpointPublish,
}

// Actions returns every defined action, in a stable order.
func Actions() []Action { return append([]Action(nil), actions...) }

// ValidAction reports whether a is one of the defined actions.
func ValidAction(a Action) bool {
	for _, x := range actions {
		if a == x {
			return true
		}
	}
	return false
}

// Outcome is the result of the action, with ECS event.outcome's values.
type Outcome string

// Outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure" // failed or refused (auth failure, access denied, error)
	OutcomeUnknown Outcome = "unknown"
)

// Event is the canonical audit event. Fields are documented, with their OCSF
// and ECS names, in docs/AUDIT.md. Record fills ID and Time when empty and
// replaces Details.Query by Details.QueryHMAC unless the Log keeps queries.
type Event struct {
	ID      string    `json:"id"`   // UUIDv7 (RFC 9562 §5.7)
	Time    time.Time `json:"time"` // when it happened, stored in UTC with nanoseconds
	Action  Action    `json:"action"`
	Outcome Outcome   `json:"outcome"`
	Reason  string    `json:"reason,omitempty"` // why it failed, for humans
	Actor   Actor     `json:"actor,omitzero"`
	Source  Source    `json:"source,omitzero"`
	Target  Target    `json:"target,omitzero"`
	Details Details   `json:"details,omitzero"`
}

// Actor is who acted.
type Actor struct {
	User     string `json:"user,omitempty"`      // login name; the attempted name for auth.failure
	Role     string `json:"role,omitempty"`      // auditor | legal | admin | system
	Session  string `json:"session,omitempty"`   // session id, shared by all events of one connection
	AuthMech string `json:"auth_mech,omitempty"` // PLAIN, LOGIN, SCRAM-SHA-256, cli, ...
}

// Source is where the actor connected from.
type Source struct {
	IP      string `json:"ip,omitempty"` // textual IP address (netip syntax)
	Port    int    `json:"port,omitempty"`
	TLS     bool   `json:"tls,omitempty"`     // the connection was TLS-protected
	Service string `json:"service,omitempty"` // imap | http | cli | smtp | retention | ...
}

// Target is what was acted upon. UIDs and Ledger are sets in IMAP
// sequence-set syntax (RFC 9051 §9, "1:5,9"), which keeps FETCH 1:* of a
// large folder one short string; build them with FormatSet.
type Target struct {
	Folder      string `json:"folder,omitempty"`
	UIDValidity uint32 `json:"uid_validity,omitempty"`
	UIDs        string `json:"uids,omitempty"`
	Ledger      string `json:"ledger,omitempty"` // message-ledger sequence numbers
	Case        string `json:"case,omitempty"`   // legal matter / case id
	Hold        string `json:"hold,omitempty"`   // hold id
	Policy      string `json:"policy,omitempty"` // retention policy name
	User        string `json:"user,omitempty"`   // the user changed by user.change
}

// Details carries action-specific facts.
type Details struct {
	Parts []string `json:"parts,omitempty"` // FETCH items, e.g. "BODY[HEADER]", "BODY[]"
	Bytes int64    `json:"bytes,omitempty"` // bytes returned or exported
	Count int64    `json:"count,omitempty"` // messages affected (fetched, matched, disposed, ...)
	// Query is the search query in plain text. Record keeps it only when the
	// Log's KeepQueries option is set; otherwise it stores QueryHMAC instead
	// and clears Query, because queries may carry personal data.
	Query     string   `json:"query,omitempty"`
	QueryHMAC string   `json:"query_hmac,omitempty"` // hex HMAC-SHA256(QueryKey, query)
	Flags     []string `json:"flags,omitempty"`      // flags set or cleared by message.flag ("+$Privileged")
	Format    string   `json:"format,omitempty"`     // export format
	Note      string   `json:"note,omitempty"`       // free text: the config key changed, the user change made, ...
	// Checkpoint is the full text of a published message-ledger checkpoint
	// (checkpoint.publish), signature lines included.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// ErrInvalidEvent is wrapped by Validate's errors.
var ErrInvalidEvent = errors.New("audit: invalid event")

// Validate checks an event as Record will store it: a defined action and
// outcome, a UUIDv7 id (if set), a parsable source IP (if set), valid UTF-8.
func (e *Event) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, a...))
	}
	if !ValidAction(e.Action) {
		return bad("unknown action %q", e.Action)
	}
	switch e.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeUnknown:
	default:
		return bad("unknown outcome %q", e.Outcome)
	}
	if e.ID != "" {
		u, err := uuid.Parse(e.ID)
		if err != nil || u.Version() != 7 || u.String() != e.ID {
			return bad("id %q is not a lowercase UUIDv7", e.ID)
		}
	}
	if e.Source.IP != "" {
		if _, err := netip.ParseAddr(e.Source.IP); err != nil {
			return bad("source ip %q: %v", e.Source.IP, err)
		}
	}
	if e.Source.Port < 0 || e.Source.Port > 65535 {
		return bad("source port %d", e.Source.Port)
	}
	if err := checkSet(e.Target.UIDs); err != nil {
		return bad("target uids: %v", err)
	}
	if err := checkLedgerSet(e.Target.Ledger); err != nil {
		return bad("target ledger: %v", err)
	}
	for _, s := range e.strings() {
		if !utf8.ValidString(s) {
			return bad("invalid UTF-8 in %q", s)
		}
	}
	return nil
}

func (e *Event) strings() []string {
	s := []string{e.Reason, e.Actor.User, e.Actor.Role, e.Actor.Session, e.Actor.AuthMech,
		e.Source.Service, e.Target.Folder, e.Target.Case, e.Target.Hold, e.Target.Policy,
		e.Target.User, e.Details.Query, e.Details.Format, e.Details.Note, e.Details.Checkpoint}
	s = append(s, e.Details.Parts...)
	return append(s, e.Details.Flags...)
}

// QueryHMAC returns the keyed hash stored instead of a search query:
// hex(HMAC-SHA256(key, query)). With the same key, equal queries give equal
// hashes, so an investigator holding the key can test a suspected query.
func QueryHMAC(key []byte, query string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(query))
	return hex.EncodeToString(m.Sum(nil))
}

// marshalEvent encodes e in its canonical form: encoding/json field order,
// no HTML escaping, time in UTC RFC 3339 with nanoseconds.
func marshalEvent(e *Event) ([]byte, error) {
	c := *e
	c.Time = c.Time.UTC()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// FormatSet renders numbers as an IMAP sequence set (RFC 9051 §9
// sequence-set), merging runs: [1 2 3 5] gives "1:3,5". The input need not
// be sorted; duplicates are dropped.
func FormatSet(nums []uint64) string {
	if len(nums) == 0 {
		return ""
	}
	s := append([]uint64(nil), nums...)
	slices.Sort(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && (s[j+1] == s[j] || s[j+1] == s[j]+1) {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(s[i], 10))
		if s[j] != s[i] {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(s[j], 10))
		}
		i = j + 1
	}
	return b.String()
}

// checkSet accepts "" or an RFC 9051 sequence-set of numbers and ranges
// ("*" included, for a FETCH 1:* as the client sent it).
func checkSet(s string) error { return checkSetFrom(s, 1) }

// checkLedgerSet checks a set of ledger sequence numbers, which start at 0
// (docs/FORMAT.md), unlike IMAP's.
func checkLedgerSet(s string) error { return checkSetFrom(s, 0) }

func checkSetFrom(s string, least uint64) error {
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, ":")
		for _, n := range []string{lo, hi} {
			if !ok && n == hi {
				continue
			}
			if n == "*" {
				continue
			}
			if v, err := strconv.ParseUint(n, 10, 64); err != nil || v < least {
				return fmt.Errorf("bad set member %q", part)
			}
		}
	}
	return nil
}
