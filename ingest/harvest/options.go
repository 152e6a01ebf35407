package harvest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

// TLSMode is how a source's connection is protected.
type TLSMode string

// TLS modes.
const (
	TLSImplicit TLSMode = "implicit" // TLS from the first byte (IMAPS, port 993; RFC 8314 §3.3)
	TLSStartTLS TLSMode = "starttls" // STARTTLS on the plain port (RFC 9051 §6.2.1); refused if not offered
	TLSNone     TLSMode = "none"     // no TLS: for a server on loopback only
)

// AuthMethod is how a source logs in.
type AuthMethod string

// Authentication methods.
const (
	AuthPassword    AuthMethod = "password"    // LOGIN (RFC 9051 §6.2.3)
	AuthXOAUTH2     AuthMethod = "xoauth2"     // Google's and Microsoft's SASL XOAUTH2
	AuthOAuthBearer AuthMethod = "oauthbearer" // SASL OAUTHBEARER (RFC 7628)
)

// JournalMode says what happens to a message in the source once it is
// archived.
type JournalMode string

// Journal modes.
const (
	// JournalOff leaves the source untouched: folders are opened read-only
	// (EXAMINE) and bodies fetched with BODY.PEEK[], so not even \Seen
	// changes.
	JournalOff JournalMode = ""
	// JournalExpunge removes each message once its receipt is in hand:
	// UID STORE +FLAGS.SILENT (\Deleted), then UID EXPUNGE of exactly those
	// UIDs (RFC 4315 §2.1). Needs UIDPLUS: a plain EXPUNGE would also remove
	// mail that someone else marked \Deleted, so without UIDPLUS nothing is
	// removed and the folder reports why.
	JournalExpunge JournalMode = "expunge"
	// JournalMove moves each archived message to Source.MoveTo: UID MOVE
	// (RFC 6851) where offered, else UID COPY, UID STORE \Deleted and UID
	// EXPUNGE (UIDPLUS).
	JournalMove JournalMode = "move"
)

// Source is one IMAP account to harvest.
type Source struct {
	// Name identifies the source in the state database, the status and
	// `cairn harvest run --source`. Letters, digits, '.', '_', '-'.
	Name string
	// Host and Port of the server. Port 0 means 993 for TLSImplicit, else 143.
	Host string
	Port int
	// TLS is the connection's protection; default TLSImplicit.
	TLS TLSMode
	// TLSSkipVerify turns certificate verification off. Verification is on
	// by default; prefer CAFile for a private CA.
	TLSSkipVerify bool
	// CAFile is a PEM file of CA certificates to trust instead of the
	// system's.
	CAFile string
	// TLSServerName overrides the name the certificate must carry; default Host.
	TLSServerName string

	// User is the login name.
	User string
	// Auth selects the method; default AuthPassword.
	Auth AuthMethod
	// PasswordFile or PasswordEnv (the name of an environment variable)
	// holds the password for AuthPassword. A file's trailing line ending is
	// not part of the password.
	PasswordFile string
	PasswordEnv  string
	// TokenCommand (run with /bin/sh -c; its first output line is the
	// token) or TokenFile holds the OAuth2 access token for AuthXOAUTH2 and
	// AuthOAuthBearer. It is read again for every connection, so a token
	// refresher can rewrite the file or the command can mint a fresh one.
	TokenCommand string
	TokenFile    string

	// Include and Exclude select the folders (see ParsePattern). No Include
	// means every folder.
	Include []string
	Exclude []string

	// Custodian is the mailbox the harvested mail belongs to (retention,
	// holds and the IMAP view's custodian folders are keyed on it). Default:
	// User, when User is an e-mail address.
	Custodian string

	// PollInterval is the time between two passes over every folder;
	// default 5 minutes.
	PollInterval time.Duration
	// IDLE makes the harvester wait in IDLE (RFC 2177, RFC 9051 §6.3.13) on
	// IdleFolder between passes, where the server offers it, so that new
	// mail there is archived at once. Default on (see NoIdle).
	NoIdle bool
	// IdleFolder is the folder watched with IDLE; default INBOX.
	IdleFolder string

	// Journal selects journal-mailbox mode; MoveTo is the destination
	// folder of JournalMove (never harvested itself).
	Journal JournalMode
	MoveTo  string

	// Disabled sources are kept in the status but not harvested.
	Disabled bool
}

// Defaults.
const (
	DefaultPollInterval   = 5 * time.Minute
	DefaultWorkers        = 128
	DefaultBatchSize      = 500
	DefaultMaxMessageSize = 50 << 20
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute
	DefaultMaxAttempts    = 3
	DefaultMemoryBudget   = 64 << 20
	DefaultTimeout        = 60 * time.Second
)

func (s *Source) port() int {
	if s.Port != 0 {
		return s.Port
	}
	if s.tls() == TLSImplicit {
		return 993
	}
	return 143
}

func (s *Source) tls() TLSMode {
	if s.TLS == "" {
		return TLSImplicit
	}
	return s.TLS
}

func (s *Source) auth() AuthMethod {
	if s.Auth == "" {
		return AuthPassword
	}
	return s.Auth
}

func (s *Source) pollInterval() time.Duration {
	if s.PollInterval == 0 {
		return DefaultPollInterval
	}
	return s.PollInterval
}

func (s *Source) idleFolder() string {
	if s.IdleFolder == "" {
		return "INBOX"
	}
	return s.IdleFolder
}

func (s *Source) custodian() string {
	if s.Custodian != "" {
		return strings.ToLower(strings.TrimSpace(s.Custodian))
	}
	if a, err := mail.ParseAddress(s.User); err == nil && a.Name == "" {
		return strings.ToLower(a.Address)
	}
	return ""
}

func (s *Source) addr() string {
	return net.JoinHostPort(s.Host, fmt.Sprint(s.port()))
}

// ValidName reports whether name may name a source.
func ValidName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// Validate reports the first problem that makes s unusable. It does not
// read the password or token.
func (s *Source) Validate() error {
	if !ValidName(s.Name) {
		return fmt.Errorf("harvest: source name %q: want letters, digits, '.', '_' or '-'", s.Name)
	}
	where := "harvest: source " + s.Name
	if s.Host == "" {
		return fmt.Errorf("%s: host is empty", where)
	}
	if s.Port < 0 || s.Port > 65535 {
		return fmt.Errorf("%s: port %d is out of range", where, s.Port)
	}
	switch s.tls() {
	case TLSImplicit, TLSStartTLS, TLSNone:
	default:
		return fmt.Errorf("%s: tls %q: want implicit, starttls or none", where, s.TLS)
	}
	if s.User == "" {
		return fmt.Errorf("%s: user is empty", where)
	}
	switch s.auth() {
	case AuthPassword:
		if (s.PasswordFile == "") == (s.PasswordEnv == "") {
			return fmt.Errorf("%s: set exactly one of password_file and password_env", where)
		}
		if s.TokenCommand != "" || s.TokenFile != "" {
			return fmt.Errorf("%s: token_command and token_file need auth xoauth2 or oauthbearer", where)
		}
	case AuthXOAUTH2, AuthOAuthBearer:
		if (s.TokenCommand == "") == (s.TokenFile == "") {
			return fmt.Errorf("%s: auth %s: set exactly one of token_command and token_file", where, s.Auth)
		}
		if s.PasswordFile != "" || s.PasswordEnv != "" {
			return fmt.Errorf("%s: auth %s takes a token, not a password", where, s.Auth)
		}
	default:
		return fmt.Errorf("%s: auth %q: want password, xoauth2 or oauthbearer", where, s.Auth)
	}
	if _, err := NewSelector(s.Include, s.Exclude); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if s.custodian() == "" {
		return fmt.Errorf("%s: custodian is empty and user %q is not an e-mail address; set custodian", where, s.User)
	}
	if a, err := mail.ParseAddress(s.custodian()); err != nil || a.Name != "" {
		return fmt.Errorf("%s: custodian %q is not an e-mail address", where, s.Custodian)
	}
	if s.PollInterval < 0 || s.PollInterval > 0 && s.PollInterval < time.Second {
		return fmt.Errorf("%s: poll_interval %v: must be at least 1s", where, s.PollInterval)
	}
	switch s.Journal {
	case JournalOff, JournalExpunge:
		if s.MoveTo != "" {
			return fmt.Errorf("%s: move_to needs journal: move", where)
		}
	case JournalMove:
		if s.MoveTo == "" {
			return fmt.Errorf("%s: journal: move needs move_to", where)
		}
	default:
		return fmt.Errorf("%s: journal %q: want expunge, move or empty", where, s.Journal)
	}
	return nil
}

// Options configure a Harvester.
type Options struct {
	// Archiver receives every harvested message (archive.Store).
	Archiver ingest.Archiver
	// StatePath is the SQLite file of cursors and status, e.g.
	// <data_dir>/harvest.db.
	StatePath string
	// Sources to harvest.
	Sources []Source
	// Workers is the number of messages archived at once, over all
	// sources; default DefaultWorkers. The archive's durable writes and
	// group commits scale with it: on the reference machine, harvesting
	// Dovecot into the filesystem store ran at ~470 msgs/s with 16, ~740
	// with 64 and ~1,000 with 128 (bench/harvest).
	Workers int
	// BatchSize is the number of UIDs in one UID FETCH; default
	// DefaultBatchSize. The cursor advances once per batch.
	BatchSize int
	// MaxMessageSize: larger messages are not read into memory; they are
	// reported and skipped (the archive would refuse them). Default
	// DefaultMaxMessageSize.
	MaxMessageSize int64
	// MemoryBudget bounds the message bytes held at once, over all
	// sources (fetched and not yet archived); default DefaultMemoryBudget,
	// and at least MaxMessageSize.
	MemoryBudget int64
	// MinBackoff and MaxBackoff bound the wait before reconnecting after a
	// failure; it doubles from MinBackoff on each consecutive failure.
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts is how often a message that cannot be fetched is tried
	// (over several passes) before it is skipped and reported; default
	// DefaultMaxAttempts.
	MaxAttempts int
	// Timeout bounds connecting and logging in, and how long the server may
	// stay silent while a command is pending before the connection is
	// dropped and retried; default DefaultTimeout.
	Timeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	if o.MemoryBudget < o.MaxMessageSize {
		o.MemoryBudget = o.MaxMessageSize
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate checks the options and every source.
func (o *Options) Validate() error {
	if o.Archiver == nil {
		return errors.New("harvest: no archiver")
	}
	if o.StatePath == "" {
		return errors.New("harvest: no state path")
	}
	seen := map[string]bool{}
	for i := range o.Sources {
		s := &o.Sources[i]
		if err := s.Validate(); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("harvest: two sources are named %q", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}
