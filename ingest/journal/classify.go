package journal

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cairn-archive/cairn/ingest"
)

// Options says which addresses belong to the archive and to the
// organisation. Both lists may be empty.
type Options struct {
	// ArchiveAddresses are the archive's own addresses: the journal
	// recipient Exchange sends reports to and the targets of Postfix
	// always_bcc, sender_bcc_maps and recipient_bcc_maps. A message sent to
	// one of them (and not a journal report or Google copy) is a Postfix bcc
	// copy, and they are never custodians. "archive@example.com" also matches
	// "archive+TAG@example.com"; a TAG of the form user=domain names the
	// original recipient user@domain, so a recipient_bcc_maps pcre table
	//   /^(.+)@(.+)$/  archive+$1=$2@example.com
	// keeps every recipient, Bcc included, in the envelope.
	ArchiveAddresses []string `yaml:"archive_addresses" mapstructure:"archive_addresses"`
	// LocalDomains are the organisation's mail domains. When set, only
	// addresses in them become custodians; when empty, every sender and
	// recipient address except the archive's own does.
	LocalDomains []string `yaml:"local_domains" mapstructure:"local_domains"`
}

// Validate reports the first unusable entry.
func (o *Options) Validate() error {
	for _, a := range o.ArchiveAddresses {
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t<>,") {
			return fmt.Errorf("journal: archive address %q is not local@domain", a)
		}
		if strings.Contains(a[:at], "+") {
			return fmt.Errorf("journal: archive address %q must not contain a +tag", a)
		}
	}
	for _, d := range o.LocalDomains {
		d = strings.TrimPrefix(d, "@")
		if d == "" || strings.ContainsAny(d, "@ \t<>,") {
			return fmt.Errorf("journal: local domain %q is not a domain", d)
		}
	}
	return nil
}

// Classifier classifies received messages. It is safe for concurrent use.
type Classifier struct {
	archive map[string]bool // lower-case local@domain
	local   map[string]bool // lower-case domain
}

// New returns a Classifier for o, which must be valid.
func New(o Options) (*Classifier, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &Classifier{archive: map[string]bool{}, local: map[string]bool{}}
	for _, a := range o.ArchiveAddresses {
		c.archive[strings.ToLower(a)] = true
	}
	for _, d := range o.LocalDomains {
		c.local[strings.ToLower(strings.TrimPrefix(d, "@"))] = true
	}
	return c, nil
}

// SMTPEnvelope is the envelope a message arrived with.
type SMTPEnvelope struct {
	MailFrom string   // reverse-path, "" for <>
	RcptTo   []string // forward-paths, in order
}

// Meta keys set by Classify.
const (
	MetaMalformed        = "journal_malformed"          // why a journal report was archived whole
	MetaMessageID        = "journal_message_id"         // the report's Message-ID line
	MetaMessageIDDiffers = "journal_message_id_differs" // the original's own Message-ID, when it differs
	MetaOnBehalfOf       = "journal_on_behalf_of"
	MetaMailbox          = "journal_mailbox"
	MetaLabel            = "journal_label"
	MetaSentUTC          = "journal_sent_utc"
	MetaReceivedUTC      = "journal_received_utc"
	MetaUnknownFields    = "journal_unknown_fields"    // comma-separated field names
	MetaTransferEncoding = "journal_transfer_encoding" // base64 or quoted-printable: the original was decoded
	MetaSMTPFrom         = "smtp_mail_from"            // the SMTP envelope, when the delivery's envelope is another
	MetaSMTPRcpt         = "smtp_rcpt_to"              // comma-separated
	MetaEnvelopeFrom     = "envelope_from_headers"     // for Google and Postfix copies: the header fields used
)

// Classify decides what raw is and returns the bytes to archive and the
// delivery's envelope. It never fails (see the package invariants); the
// returned bytes are raw itself or a sub-slice of it, except for a decoded
// base64 or quoted-printable attachment. The caller sets ReceivedAt,
// DeliveryKey and its own Meta (client_ip, helo, tls).
func (c *Classifier) Classify(raw []byte, env SMTPEnvelope) ([]byte, *ingest.Envelope) {
	header, _ := splitHeader(raw)
	fields := parseFields(header)

	_, j1 := get(fields, "X-MS-Journal-Report")
	_, j2 := get(fields, "X-MS-Exchange-Organization-Journal-Report")
	if j1 || j2 {
		return c.journal(raw, env)
	}
	if gm := all(fields, "X-Gm-Original-To"); len(gm) > 0 {
		e := c.fromHeaders(ingest.SourceGoogle, env, gm, "x-gm-original-to")
		return raw, e
	}
	xot, hasXOT := get(fields, "X-Original-To")
	dt, hasDT := get(fields, "Delivered-To")
	if hasXOT || hasDT || c.anyArchiveRcpt(env.RcptTo) {
		var vals []string
		var used []string
		if hasXOT {
			vals, used = append(vals, xot), append(used, "x-original-to")
		}
		if hasDT {
			vals, used = append(vals, dt), append(used, "delivered-to")
		}
		e := c.fromHeaders(ingest.SourceBcc, env, vals, strings.Join(used, ","))
		return raw, e
	}
	e := &ingest.Envelope{
		Source:     ingest.SourceSMTP,
		Sender:     env.MailFrom,
		Recipients: envelopeRecipients(env.RcptTo),
		Meta:       map[string]string{},
	}
	e.Custodians = c.custodians(e)
	return raw, e
}

func (c *Classifier) journal(raw []byte, env SMTPEnvelope) ([]byte, *ingest.Envelope) {
	meta := map[string]string{
		MetaSMTPFrom: env.MailFrom,
		MetaSMTPRcpt: strings.Join(env.RcptTo, ","),
	}
	r, err := ParseReport(raw)
	if err != nil {
		var me *MalformedError
		problem := err.Error()
		if errors.As(err, &me) {
			problem = me.Problem
		}
		meta[MetaMalformed] = problem
		e := &ingest.Envelope{
			Source:     ingest.SourceJournal,
			Sender:     env.MailFrom,
			Recipients: envelopeRecipients(env.RcptTo),
			Meta:       meta,
		}
		e.Custodians = c.custodians(e)
		return raw, e
	}
	setIf(meta, MetaMessageID, r.MessageID)
	setIf(meta, MetaOnBehalfOf, r.OnBehalfOf)
	setIf(meta, MetaMailbox, r.Mailbox)
	setIf(meta, MetaLabel, r.Label)
	setIf(meta, MetaSentUTC, r.SentUTC)
	setIf(meta, MetaReceivedUTC, r.ReceivedUTC)
	setIf(meta, MetaTransferEncoding, r.TransferEncoding)
	if len(r.Unknown) > 0 {
		meta[MetaUnknownFields] = strings.Join(r.Unknown, ",")
	}
	oh, _ := splitHeader(r.Original)
	if own, ok := get(parseFields(oh), "Message-ID"); ok && r.MessageID != "" && own != r.MessageID {
		meta[MetaMessageIDDiffers] = own
	}
	e := &ingest.Envelope{
		Source:     ingest.SourceJournal,
		Sender:     r.Sender,
		Recipients: r.Recipients,
		Meta:       meta,
		Evidence:   r.Evidence,
	}
	e.Custodians = c.custodians(e, r.OnBehalfOf, r.Mailbox)
	return r.Original, e
}

// fromHeaders builds the envelope of a Google or Postfix copy: the SMTP
// recipients (with recipient_bcc_maps tags decoded) and the addresses in the
// named header fields, each once.
func (c *Classifier) fromHeaders(source string, env SMTPEnvelope, headerAddrs []string, used string) *ingest.Envelope {
	e := &ingest.Envelope{
		Source: source,
		Sender: env.MailFrom,
		Meta: map[string]string{
			MetaSMTPRcpt: strings.Join(env.RcptTo, ","),
		},
	}
	if used != "" {
		e.Meta[MetaEnvelopeFrom] = used
	}
	seen := map[string]bool{}
	add := func(a string) {
		k := strings.ToLower(a)
		if a == "" || seen[k] {
			return
		}
		seen[k] = true
		e.Recipients = append(e.Recipients, ingest.Recipient{Address: a, Kind: ingest.KindRecipient})
	}
	for _, r := range env.RcptTo {
		if orig, ok := c.taggedRecipient(r); ok {
			add(orig)
			continue
		}
		add(r)
	}
	for _, v := range headerAddrs {
		for _, a := range strings.Split(v, ",") {
			if addr, ok := cleanAddress(a); ok {
				add(addr)
			}
		}
	}
	e.Custodians = c.custodians(e)
	return e
}

func envelopeRecipients(rcpts []string) []ingest.Recipient {
	out := make([]ingest.Recipient, 0, len(rcpts))
	for _, r := range rcpts {
		out = append(out, ingest.Recipient{Address: r, Kind: ingest.KindRecipient})
	}
	return out
}

// isArchive reports whether addr is an archive address, with or without a
// +tag.
func (c *Classifier) isArchive(addr string) bool {
	if len(c.archive) == 0 {
		return false
	}
	a := strings.ToLower(addr)
	if c.archive[a] {
		return true
	}
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return false
	}
	if plus := strings.IndexByte(a[:at], '+'); plus > 0 {
		return c.archive[a[:plus]+a[at:]]
	}
	return false
}

func (c *Classifier) anyArchiveRcpt(rcpts []string) bool {
	for _, r := range rcpts {
		if c.isArchive(r) {
			return true
		}
	}
	return false
}

// taggedRecipient decodes archive+user=domain@host into user@domain.
func (c *Classifier) taggedRecipient(addr string) (string, bool) {
	if !c.isArchive(addr) {
		return "", false
	}
	at := strings.LastIndexByte(addr, '@')
	plus := strings.IndexByte(addr[:at], '+')
	if plus < 0 {
		return "", false
	}
	tag := addr[plus+1 : at]
	eq := strings.LastIndexByte(tag, '=')
	if eq <= 0 || eq == len(tag)-1 {
		return "", false
	}
	orig, ok := cleanAddress(tag[:eq] + "@" + tag[eq+1:])
	return orig, ok && orig != ""
}

// custodians lists the mailboxes a delivery belongs to: the sender, every
// recipient, every mailbox a recipient was forwarded from and the extra
// addresses, lower-cased and once each; never an archive address nor a
// distribution list that was expanded; only LocalDomains when set.
func (c *Classifier) custodians(e *ingest.Envelope, extra ...string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(a string) {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "" || seen[a] || c.isArchive(a) {
			return
		}
		if len(c.local) > 0 {
			at := strings.LastIndexByte(a, '@')
			if at < 0 || !c.local[a[at+1:]] {
				return
			}
		}
		seen[a] = true
		out = append(out, a)
	}
	add(e.Sender)
	for _, r := range e.Recipients {
		add(r.Address)
		add(r.ForwardedFrom)
	}
	for _, a := range extra {
		add(a)
	}
	return out
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}
