package smtp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/ingest/journal"
)

// Options configures the receiver. The zero value of a field means its
// default (DefaultOptions); cmd/cairn decodes it from the config file.
type Options struct {
	// Listen is the address of the SMTP listener; STARTTLS is offered on
	// it when a certificate is configured. Default "127.0.0.1:2525".
	Listen string `yaml:"listen" mapstructure:"listen"`
	// TLSListen is the address of an optional implicit-TLS listener
	// (RFC 8314 §3.3). Empty: none.
	TLSListen string `yaml:"tls_listen" mapstructure:"tls_listen"`
	// Hostname is the name in the greeting and the EHLO reply. Default: the
	// machine's host name.
	Hostname string `yaml:"hostname" mapstructure:"hostname"`
	// TLSCert is the PEM certificate chain for STARTTLS and TLSListen. With
	// neither it nor a certificate from the caller (the embedded default's
	// self-signed one), STARTTLS is not offered and TLSListen cannot be used.
	TLSCert string `yaml:"tls_cert" mapstructure:"tls_cert"`
	// TLSKey is the PEM private key of TLSCert; set both or neither.
	TLSKey string `yaml:"tls_key" mapstructure:"tls_key"`
	// AuthRequired refuses MAIL with 530 5.7.0 until the client has
	// authenticated. AUTH PLAIN and LOGIN are offered only over TLS, and
	// only when the caller supplies an Authenticator.
	AuthRequired bool `yaml:"auth_required" mapstructure:"auth_required"`
	// AllowedNetworks lists the client networks (CIDR, or a bare address)
	// that may connect; any other client gets 554 5.7.1 instead of the
	// greeting. Default: loopback only.
	AllowedNetworks []string `yaml:"allowed_networks" mapstructure:"allowed_networks"`
	// AcceptRecipients lists the recipients accepted in RCPT TO: addresses
	// ("archive@example.com", which also accepts "archive+tag@example.com")
	// and domains ("example.com" or "@example.com"). Any other recipient gets
	// 550 5.1.1. Empty: every recipient.
	AcceptRecipients []string `yaml:"accept_recipients" mapstructure:"accept_recipients"`
	// MaxMessageBytes is the largest message accepted, advertised with SIZE
	// (RFC 1870); larger ones get 552 5.3.4. A journal report is larger
	// than the message it carries. Default 64 MiB.
	MaxMessageBytes int64 `yaml:"max_message_bytes" mapstructure:"max_message_bytes"`
	// MaxBufferedBytes bounds the memory that all sessions together hold for
	// messages being received and archived; past it a message gets 452
	// 4.3.1 and the client retries later. At least MaxMessageBytes. Default
	// 4 × MaxMessageBytes.
	MaxBufferedBytes int64 `yaml:"max_buffered_bytes" mapstructure:"max_buffered_bytes"`
	// MaxSessions bounds the open sessions; past it a new connection gets
	// 421 4.4.5. Default 200.
	MaxSessions int `yaml:"max_sessions" mapstructure:"max_sessions"`
	// MaxSessionsPerIP bounds the open sessions from one client (an IPv4
	// address or an IPv6 /64); past it a new connection gets 421 4.7.0.
	// Default 50.
	MaxSessionsPerIP int `yaml:"max_sessions_per_ip" mapstructure:"max_sessions_per_ip"`
	// MaxRecipients bounds RCPT TO per message (452 4.5.3 past it,
	// advertised as LIMITS RCPTMAX). Default 1000.
	MaxRecipients int `yaml:"max_recipients" mapstructure:"max_recipients"`
	// MaxLineLength bounds a command line and a line of message data, in
	// bytes. RFC 5321 §4.5.3.1.6 says 1000, but originals attached to journal
	// reports carry longer lines, and refusing one would bounce a journal
	// report. Default 65536.
	MaxLineLength int `yaml:"max_line_length" mapstructure:"max_line_length"`
	// CommandTimeout is how long the server waits for a command line or the
	// client to read a reply (RFC 5321 §4.5.3.2.7 says at least 5 minutes).
	// Default 5m.
	CommandTimeout time.Duration `yaml:"command_timeout" mapstructure:"command_timeout"`
	// DataTimeout is how long the server waits for each read of message
	// data (RFC 5321 §4.5.3.2.5 says 3 minutes per data block). Default 3m.
	DataTimeout time.Duration `yaml:"data_timeout" mapstructure:"data_timeout"`
	// ArchiveTimeout bounds one Archive call; past it the message gets
	// 451 4.3.0. It stays below the 10 minutes a client waits for the reply
	// to the end of data (RFC 5321 §4.5.3.2.6). Default 5m.
	ArchiveTimeout time.Duration `yaml:"archive_timeout" mapstructure:"archive_timeout"`
	// AckIndexed answers 250 only once the index lists the message too.
	// By default the 250 goes out once the message is durable and its
	// ledger entry committed (invariant 1), and under load the index lists
	// it a few milliseconds later, in one transaction with the messages
	// around it (ingest.AckWhenDurable): about a sixth more messages a
	// second and less than half the disk writes. Set it when something
	// queries the index the instant a 250 arrives.
	AckIndexed bool `yaml:"ack_indexed" mapstructure:"ack_indexed"`
	// Journal says which addresses are the archive's own and which domains
	// are the organisation's, for classifying journal reports and bcc copies.
	Journal journal.Options `yaml:"journal" mapstructure:"journal"`
}

// DefaultOptions returns the embedded default: loopback only, every
// recipient accepted, no TLS and no AUTH.
func DefaultOptions() Options {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return Options{
		Listen:           "127.0.0.1:2525",
		Hostname:         host,
		AllowedNetworks:  []string{"127.0.0.0/8", "::1/128"},
		MaxMessageBytes:  64 << 20,
		MaxBufferedBytes: 4 * (64 << 20),
		MaxSessions:      200,
		MaxSessionsPerIP: 50,
		MaxRecipients:    1000,
		MaxLineLength:    65536,
		CommandTimeout:   5 * time.Minute,
		DataTimeout:      3 * time.Minute,
		ArchiveTimeout:   5 * time.Minute,
	}
}

// withDefaults fills every zero field from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Listen == "" {
		o.Listen = d.Listen
	}
	if o.Hostname == "" {
		o.Hostname = d.Hostname
	}
	if len(o.AllowedNetworks) == 0 {
		o.AllowedNetworks = d.AllowedNetworks
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = d.MaxMessageBytes
	}
	if o.MaxBufferedBytes == 0 {
		o.MaxBufferedBytes = 4 * o.MaxMessageBytes
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = d.MaxSessions
	}
	if o.MaxSessionsPerIP == 0 {
		o.MaxSessionsPerIP = min(d.MaxSessionsPerIP, o.MaxSessions)
	}
	if o.MaxRecipients == 0 {
		o.MaxRecipients = d.MaxRecipients
	}
	if o.MaxLineLength == 0 {
		o.MaxLineLength = d.MaxLineLength
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = d.CommandTimeout
	}
	if o.DataTimeout == 0 {
		o.DataTimeout = d.DataTimeout
	}
	if o.ArchiveTimeout == 0 {
		o.ArchiveTimeout = d.ArchiveTimeout
	}
	return o
}

// Validate reports every problem in o, joined. Zero values are valid (they
// mean the default).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("smtp: "+format, args...)) }
	for _, a := range []struct{ name, addr string }{{"listen", o.Listen}, {"tls_listen", o.TLSListen}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad("%s %q: %v", a.name, a.addr, err)
		}
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		bad("tls_cert and tls_key must be set together")
	}
	if _, err := parseNetworks(o.AllowedNetworks); err != nil {
		bad("allowed_networks: %v", err)
	}
	if _, err := parseAcceptList(o.AcceptRecipients); err != nil {
		bad("accept_recipients: %v", err)
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"max_message_bytes", o.MaxMessageBytes}, {"max_buffered_bytes", o.MaxBufferedBytes},
		{"max_sessions", int64(o.MaxSessions)}, {"max_sessions_per_ip", int64(o.MaxSessionsPerIP)},
		{"max_recipients", int64(o.MaxRecipients)}, {"max_line_length", int64(o.MaxLineLength)},
		{"command_timeout", int64(o.CommandTimeout)}, {"data_timeout", int64(o.DataTimeout)},
		{"archive_timeout", int64(o.ArchiveTimeout)},
	} {
		if n.v < 0 {
			bad("%s must not be negative", n.name)
		}
	}
	if o.MaxBufferedBytes > 0 && o.MaxBufferedBytes < o.MaxMessageBytes {
		bad("max_buffered_bytes (%d) must be at least max_message_bytes (%d)", o.MaxBufferedBytes, o.MaxMessageBytes)
	}
	if o.MaxMessageBytes > 0 && o.MaxMessageBytes > 1<<32-1 {
		bad("max_message_bytes must fit SIZE's 32-bit range") // go-smtp parses SIZE= as uint32
	}
	if o.MaxLineLength > 0 && o.MaxLineLength < 1000 {
		bad("max_line_length must be at least 1000 (RFC 5321 §4.5.3.1.6)")
	}
	if o.MaxSessions > 0 && o.MaxSessionsPerIP > o.MaxSessions {
		bad("max_sessions_per_ip must not exceed max_sessions")
	}
	if o.CommandTimeout > 0 && o.CommandTimeout < time.Second || o.DataTimeout > 0 && o.DataTimeout < time.Second {
		bad("timeouts below one second would cut off honest clients")
	}
	if err := o.Journal.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func parseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR network or an address", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %v", s, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// acceptList holds the accepted recipients, lower-cased.
type acceptList struct {
	all       bool
	addresses map[string]bool // local@domain
	domains   map[string]bool
}

func parseAcceptList(list []string) (*acceptList, error) {
	a := &acceptList{all: len(list) == 0, addresses: map[string]bool{}, domains: map[string]bool{}}
	for _, s := range list {
		s = strings.ToLower(strings.TrimSpace(s))
		switch at := strings.LastIndexByte(s, '@'); {
		case s == "" || strings.ContainsAny(s, " \t<>,"):
			return nil, fmt.Errorf("%q is not an address or a domain", s)
		case at < 0:
			a.domains[s] = true
		case at == 0:
			a.domains[s[1:]] = true
		case at == len(s)-1:
			return nil, fmt.Errorf("%q has no domain", s)
		default:
			a.addresses[s] = true
		}
	}
	return a, nil
}

// accepts reports whether addr is an accepted recipient; an accepted
// local@domain also accepts local+tag@domain.
func (a *acceptList) accepts(addr string) bool {
	if a.all {
		return true
	}
	addr = strings.ToLower(addr)
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return false // RFC 5321 §4.1.1.3: only "postmaster" may lack a domain; it is not archived
	}
	if a.domains[addr[at+1:]] || a.addresses[addr] {
		return true
	}
	if plus := strings.IndexByte(addr[:at], '+'); plus > 0 {
		return a.addresses[addr[:plus]+addr[at:]]
	}
	return false
}
