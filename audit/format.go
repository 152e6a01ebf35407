package audit

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format is a rendering of entries for files, syslog and the CLI.
type Format string

// Formats.
const (
	// FormatJSONL is Entry.Line: the stored bytes with the hash appended.
	// Exact: ParseLine gives back the stored entry.
	FormatJSONL Format = "jsonl"
	// FormatCEF is an ArcSight Common Event Format line (CEF:0). Its msg
	// extension carries the JSONL line, so it is exact too.
	FormatCEF Format = "cef"
	// FormatLEEF is an IBM QRadar LEEF 2.0 line, tab-delimited, with the
	// JSONL line in its raw attribute.
	FormatLEEF Format = "leef"
	// FormatSyslog is an RFC 5424 message (without transport framing) whose
	// structured data carries the event fields and whose MSG is the JSONL
	// line (or CEF/LEEF, see RenderOptions.Message).
	FormatSyslog Format = "syslog"
)

// ParseFormat accepts "jsonl" (or "json"), "cef", "leef", "syslog".
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatJSONL, FormatCEF, FormatLEEF, FormatSyslog:
		return f, nil
	case "json":
		return FormatJSONL, nil
	}
	return "", fmt.Errorf("audit: unknown format %q (want jsonl, cef, leef or syslog)", s)
}

// RenderOptions tune the CEF, LEEF and syslog renderings. Zero values take
// the defaults named.
type RenderOptions struct {
	// Vendor, Product, Version fill the CEF and LEEF headers (defaults
	// "Cairn", "Cairn Archive", "1").
	Vendor  string `yaml:"vendor" mapstructure:"vendor"`
	Product string `yaml:"product" mapstructure:"product"`
	Version string `yaml:"version" mapstructure:"version"`
	// Hostname is the syslog HOSTNAME (default: os.Hostname(), else "-").
	Hostname string `yaml:"hostname" mapstructure:"hostname"`
	// AppName is the syslog APP-NAME (default "cairn").
	AppName string `yaml:"app_name" mapstructure:"app_name"`
	// Facility is the syslog facility number 0-23 (default 13, "log audit",
	// RFC 5424 §6.2.1). 0 (kernel) is never meant, so 0 takes the default.
	Facility int `yaml:"facility" mapstructure:"facility"`
	// SDID is the structured-data id (default "cairn@32473"; 32473 is the
	// documentation enterprise number of RFC 5612: use your own PEN).
	SDID string `yaml:"sd_id" mapstructure:"sd_id"`
	// Message is what a syslog message carries as MSG: jsonl (default),
	// cef or leef.
	Message Format `yaml:"message" mapstructure:"message"`
}

func (o *RenderOptions) defaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&o.Vendor, "Cairn")
	set(&o.Product, "Cairn Archive")
	set(&o.Version, "1")
	if o.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			o.Hostname = h
		} else {
			o.Hostname = "-"
		}
	}
	set(&o.AppName, "cairn")
	if o.Facility == 0 {
		o.Facility = 13
	}
	set(&o.SDID, "cairn@32473")
	if o.Message == "" {
		o.Message = FormatJSONL
	}
}

// Validate checks the options and fills defaults.
func (o *RenderOptions) Validate() error {
	o.defaults()
	for _, s := range []string{o.Vendor, o.Product, o.Version} {
		if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
			return fmt.Errorf("audit: render: header value %q has control characters", s)
		}
	}
	if o.Facility < 0 || o.Facility > 23 {
		return fmt.Errorf("audit: render: facility %d not in 0-23", o.Facility)
	}
	// RFC 5424 §6: HOSTNAME 1*255, APP-NAME 1*48 PRINTUSASCII.
	if !printASCII(o.Hostname, 255) || !printASCII(o.AppName, 48) {
		return errors.New("audit: render: hostname and app_name must be printable ASCII (RFC 5424 §6)")
	}
	// RFC 5424 §6.3.2: SD-NAME is 1*32 PRINTUSASCII except '=', SP, ']', '"'.
	if !sdName(o.SDID) {
		return fmt.Errorf("audit: render: sd_id %q is not an RFC 5424 SD-ID", o.SDID)
	}
	switch o.Message {
	case FormatJSONL, FormatCEF, FormatLEEF:
	default:
		return fmt.Errorf("audit: render: syslog message format %q (want jsonl, cef or leef)", o.Message)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func printASCII(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

func sdName(s string) bool {
	return printASCII(s, 32) && !strings.ContainsAny(s, `= ]"`)
}

// Renderer renders entries in one Format. Create it with NewRenderer.
type Renderer struct {
	format Format
	o      RenderOptions
}

// NewRenderer validates o and returns a renderer for f.
func NewRenderer(f Format, o RenderOptions) (*Renderer, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Renderer{format: f, o: o}, nil
}

// Format returns the renderer's format.
func (r *Renderer) Format() Format { return r.format }

// Append appends e rendered as one record, without a trailing newline.
// Every format contains no raw CR or LF, so records are line-safe.
func (r *Renderer) Append(dst []byte, e *Entry) []byte {
	switch r.format {
	case FormatCEF:
		return r.appendCEF(dst, e)
	case FormatLEEF:
		return r.appendLEEF(dst, e)
	case FormatSyslog:
		return r.appendSyslog(dst, e)
	default:
		return AppendLine(dst, e.Bytes, e.Hash)
	}
}

// field is one key/value of an event projected for CEF, LEEF and syslog SD.
type field struct{ cef, leef, sd, v string }

// ocsfClass is the OCSF class of an action (see docs/AUDIT.md).
func ocsfClass(a Action) (uid int, name string) {
	switch a {
	case ActionLogin, ActionLoginFailure:
		return 3002, "Authentication"
	case ActionSelect, ActionFetch, ActionSearch, ActionFlag, ActionExport:
		return 6005, "Datastore Activity"
	case ActionUserChange:
		return 3001, "Account Change"
	default:
		return 6003, "API Activity"
	}
}

// severity maps an event to a 0-10 severity (CEF and LEEF sev).
func severity(e *Event) int {
	switch {
	case e.Action == ActionLoginFailure:
		return 7
	case e.Outcome == OutcomeFailure:
		return 6
	case e.Action == ActionErase || e.Action == ActionDispose || e.Action == ActionKeyRotate ||
		e.Action == ActionConfigChange || e.Action == ActionUserChange || e.Action == ActionHoldRelease:
		return 5
	default:
		return 3
	}
}

// fields projects e onto the named keys of each format. Empty values are
// left out by the renderers.
func fields(e *Entry) []field {
	ev := &e.Event
	ip4, ip6 := "", ""
	if a, err := netip.ParseAddr(ev.Source.IP); err == nil {
		if a.Unmap().Is4() {
			ip4 = a.Unmap().String()
		} else {
			ip6 = a.String()
		}
	}
	num := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	tlsn := ""
	if ev.Source.TLS {
		tlsn = "1"
	}
	_, class := ocsfClass(ev.Action)
	// CEF keys are the standard dictionary names (ArcSight CEF rev. 25)
	// where one exists, else labelled custom fields; LEEF keys are the
	// predefined LEEF attributes where one exists.
	return []field{
		{"cn1", "seq", "seq", strconv.FormatUint(uint64(e.Seq), 10)},
		{"flexString1", "hash", "hash", e.Hash.String()},
		{"flexString2", "prev", "prev", e.Prev.String()},
		{"externalId", "eventId", "id", ev.ID},
		{"act", "action", "action", string(ev.Action)},
		{"cat", "cat", "class", class},
		{"outcome", "outcome", "outcome", string(ev.Outcome)},
		{"reason", "reason", "reason", ev.Reason},
		{"suser", "usrName", "user", ev.Actor.User},
		{"spriv", "role", "role", ev.Actor.Role},
		{"cs1", "sessionId", "session", ev.Actor.Session},
		{"cs2", "authMech", "authMech", ev.Actor.AuthMech},
		{"src", "src", "ip", ip4},
		{"c6a2", "srcIPv6", "ip6", ip6},
		{"spt", "srcPort", "port", num(int64(ev.Source.Port))},
		{"app", "proto", "service", ev.Source.Service},
		{"flexNumber1", "tls", "tls", tlsn},
		{"cs3", "folder", "folder", ev.Target.Folder},
		{"cs4", "uids", "uids", ev.Target.UIDs},
		{"cs5", "ledger", "ledger", ev.Target.Ledger},
		{"cs6", "case", "case", ev.Target.Case},
		{"", "hold", "hold", ev.Target.Hold},
		{"", "policy", "policy", ev.Target.Policy},
		{"duser", "targetUser", "targetUser", ev.Target.User},
		{"cn2", "bytes", "bytes", num(ev.Details.Bytes)},
		{"cn3", "count", "count", num(ev.Details.Count)},
		{"request", "query", "query", ev.Details.Query},
		{"fileHash", "queryHmac", "queryHmac", ev.Details.QueryHMAC},
	}
}

// cefLabels names the custom CEF fields (their *Label extensions).
var cefLabels = map[string]string{
	"cn1": "seq", "flexString1": "hash", "flexString2": "prev",
	"cs1": "session", "cs2": "authMech", "cs3": "folder", "cs4": "uids",
	"cs5": "ledger", "cs6": "case", "c6a2": "sourceIPv6", "cn2": "bytes", "cn3": "count",
	"flexNumber1": "tls",
}
