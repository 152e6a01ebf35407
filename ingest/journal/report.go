package journal

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cairn-archive/cairn/ingest"
)

// ErrMalformed is wrapped by every error ParseReport returns.
var ErrMalformed = errors.New("journal: malformed report")

// MalformedError names what makes a journal report impossible to unwrap.
type MalformedError struct {
	// Problem is a short phrase, stored as Meta["journal_malformed"].
	Problem string
}

func (e *MalformedError) Error() string { return "journal: malformed report: " + e.Problem }

// Is makes errors.Is(err, ErrMalformed) true.
func (e *MalformedError) Is(target error) bool { return target == ErrMalformed }

func malformed(format string, args ...any) error {
	return &MalformedError{Problem: fmt.Sprintf(format, args...)}
}

// Report is one parsed Exchange envelope journal report.
type Report struct {
	// Sender is the envelope sender of the original (the Sender: line);
	// empty for the null reverse-path.
	Sender string
	// OnBehalfOf is the On-Behalf-Of: line, if any ([MS-XJRNL] §2.1).
	OnBehalfOf string
	// Subject and MessageID are as the report states them. The subject is
	// decoded from the report's charset where that is UTF-8, US-ASCII or
	// ISO-8859-1; otherwise invalid UTF-8 is replaced.
	Subject   string
	MessageID string
	// Recipients lists every To:, Cc:, Bcc: and Recipient: line in order,
	// with ExpandedFrom / ForwardedFrom from the redirection suffix.
	Recipients []ingest.Recipient
	// Mailbox, Label, SentUTC and ReceivedUTC are the optional [MS-XJRNL]
	// fields, verbatim.
	Mailbox, Label, SentUTC, ReceivedUTC string
	// Unknown lists the names of fields this parser does not know, in order;
	// they are kept in the Evidence, not interpreted.
	Unknown []string

	// Original is the attached message. It is a sub-slice of the input when
	// TransferEncoding is empty; otherwise it is the decoded body.
	Original []byte
	// TransferEncoding is the attachment's Content-Transfer-Encoding when it
	// was not an identity encoding ("base64", "quoted-printable").
	TransferEncoding string
	// Evidence is the received report with the attachment's body removed
	// (its part header is kept). It is a new slice.
	Evidence []byte
}

// IsReport reports whether raw's header marks it as an Exchange journal
// report: X-MS-Journal-Report, as Exchange 2007+ and Exchange Online send it
// outside the organisation, or X-MS-Exchange-Organization-Journal-Report, as
// it is named inside one.
func IsReport(raw []byte) bool {
	header, _ := splitHeader(raw)
	fields := parseFields(header)
	_, a := get(fields, "X-MS-Journal-Report")
	_, b := get(fields, "X-MS-Exchange-Organization-Journal-Report")
	return a || b
}

// ParseReport unwraps an envelope journal report. Every error wraps
// ErrMalformed and is a *MalformedError. It does not check IsReport.
func ParseReport(raw []byte) (*Report, error) {
	top := parseEntity(raw, 0, len(raw))
	mt, params, err := top.mediaType()
	if err != nil {
		return nil, malformed("report Content-Type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return nil, malformed("report is %s, not multipart", mt)
	}
	var text, orig *entity
	if err := walk(raw, top, params["boundary"], 0, &text, &orig); err != nil {
		return nil, err
	}
	if text == nil {
		return nil, malformed("no text/plain report part")
	}
	if orig == nil {
		return nil, malformed("no message/rfc822 attachment")
	}

	body, _, err := decodeBody(raw, *text)
	if err != nil {
		return nil, malformed("report text: %v", err)
	}
	_, textParams, _ := text.mediaType()
	r, err := parseEnvelopePart(toUTF8(body, textParams["charset"]))
	if err != nil {
		return nil, err
	}

	original, cte, err := decodeBody(raw, *orig)
	if err != nil {
		return nil, malformed("attachment: %v", err)
	}
	if len(bytes.TrimSpace(original)) == 0 {
		return nil, malformed("empty message/rfc822 attachment")
	}
	r.Original = original
	r.TransferEncoding = cte
	r.Evidence = make([]byte, 0, len(raw)-(orig.end-orig.bodyStart))
	r.Evidence = append(r.Evidence, raw[:orig.bodyStart]...)
	r.Evidence = append(r.Evidence, raw[orig.end:]...)
	return r, nil
}

// walk finds, depth first, the first text/plain part (the report) and the
// first message/rfc822 part (the original) of a multipart entity. It does not
// descend into the attached message.
func walk(raw []byte, e entity, boundary string, depth int, text, orig **entity) error {
	if depth >= maxDepth {
		return malformed("multipart nested deeper than %d", maxDepth)
	}
	parts, err := splitMultipart(raw, e, boundary)
	if err != nil && !errors.Is(err, errNoCloseDelim) {
		return malformed("%v", err)
	}
	if err != nil && len(parts) > 0 {
		// Without a close-delimiter the last part runs to the end of the
		// input; that is how a truncated report looks, and the attachment
		// would be cut short. Refuse to guess.
		return malformed("%v (truncated?)", err)
	}
	for i := range parts {
		p := parts[i]
		mt, params, err := p.mediaType()
		if err != nil {
			return malformed("part %d Content-Type: %v", i+1, err)
		}
		switch {
		case mt == "text/plain" && *text == nil && *orig == nil:
			*text = &p
		case (mt == "message/rfc822" || mt == "message/global") && *orig == nil:
			// RFC 6532 §3.5: message/global carries an SMTPUTF8 original.
			*orig = &p
		case strings.HasPrefix(mt, "multipart/"):
			if err := walk(raw, p, params["boundary"], depth+1, text, orig); err != nil {
				return err
			}
		}
		if *text != nil && *orig != nil {
			return nil
		}
	}
	return nil
}

// parseEnvelopePart parses the report text, [MS-XJRNL] §2.1:
//
//	Envelope-Part = sender CRLF [sent-on-behalf CRLF]
//	                (subject CRLF message-id CRLF) / (message-id CRLF subject CRLF)
//	                [label CRLF] [mailbox-owner CRLF] [sent-time CRLF] [received-time CRLF]
//	                1*recipient-specification
//	recipient-specification = recipient-p2-type ":" SP forward-path
//	                          ["," SP redirection-type ":" SP original-forward-path] CRLF
//	recipient-p2-type = "Bcc" / "To" / "Cc" / "Recipient"
//	redirection-type  = "Expanded" / "Forwarded"
//
// Lines may end in CRLF or LF; field order is not enforced; empty lines are
// skipped. A line that is not "Name: value" is garbled, and so is a report
// with no Sender: line, two of them, or no recipient.
func parseEnvelopePart(text string) (*Report, error) {
	r := &Report{}
	var seenSender bool
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 || !isFieldName(line[:colon]) {
			return nil, malformed("garbled line %d: %.40q", n+1, line)
		}
		name, value := line[:colon], strings.TrimSpace(line[colon+1:])
		switch strings.ToLower(name) {
		case "sender":
			if seenSender {
				return nil, malformed("two Sender lines")
			}
			seenSender = true
			addr, ok := cleanAddress(unspecified(value))
			if !ok {
				return nil, malformed("line %d: bad Sender address %.40q", n+1, value)
			}
			r.Sender = addr
		case "on-behalf-of":
			addr, ok := cleanAddress(unspecified(value))
			if !ok {
				return nil, malformed("line %d: bad On-Behalf-Of address %.40q", n+1, value)
			}
			r.OnBehalfOf = addr
		case "subject":
			r.Subject = value
		case "message-id":
			r.MessageID = value
		case "label":
			r.Label = value
		case "mailbox":
			addr, ok := cleanAddress(value)
			if !ok || addr == "" {
				return nil, malformed("line %d: bad Mailbox address %.40q", n+1, value)
			}
			r.Mailbox = addr
		case "sentutc":
			r.SentUTC = value
		case "receivedutc":
			r.ReceivedUTC = value
		case "to", "cc", "bcc", "recipient":
			rcpt, err := parseRecipient(ingest.RecipientKind(strings.ToLower(name)), value)
			if err != nil {
				return nil, malformed("line %d: %v", n+1, err)
			}
			r.Recipients = append(r.Recipients, rcpt)
		default:
			r.Unknown = append(r.Unknown, name)
		}
	}
	if !seenSender {
		return nil, malformed("no Sender line")
	}
	if len(r.Recipients) == 0 {
		return nil, malformed("no recipient lines")
	}
	return r, nil
}

// parseRecipient parses forward-path [", " redirection-type ": " path].
func parseRecipient(kind ingest.RecipientKind, value string) (ingest.Recipient, error) {
	rcpt := ingest.Recipient{Kind: kind}
	addrPart, redirect := value, ""
	lower := strings.ToLower(value)
	for _, marker := range []string{", expanded:", ", forwarded:"} {
		if i := strings.LastIndex(lower, marker); i >= 0 {
			addrPart, redirect = value[:i], value[i+2:]
			break
		}
	}
	addr, ok := cleanAddress(addrPart)
	if !ok || addr == "" {
		return rcpt, fmt.Errorf("bad recipient address %.40q", addrPart)
	}
	rcpt.Address = addr
	if redirect != "" {
		colon := strings.IndexByte(redirect, ':')
		typ, src := strings.ToLower(redirect[:colon]), redirect[colon+1:]
		from, ok := cleanAddress(src)
		if !ok || from == "" {
			return rcpt, fmt.Errorf("bad %s address %.40q", typ, src)
		}
		if typ == "expanded" {
			rcpt.ExpandedFrom = from
		} else {
			rcpt.ForwardedFrom = from
		}
	}
	return rcpt, nil
}

// unspecified maps the text Exchange writes for a missing sender address
// ("Unspecified Address") to the null path.
func unspecified(v string) string {
	if strings.EqualFold(v, "Unspecified Address") {
		return ""
	}
	return v
}

func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

// cleanAddress turns a report's address into a bare addr-spec: it accepts
// "addr", "<addr>", "Display Name <addr>" and an "SMTP:" prefix. The null
// path ("" or "<>") is returned as "" and ok. It refuses white space or
// control characters outside a quoted local part, invalid UTF-8 (RFC 6531
// allows UTF-8 in both parts) and anything without a local part and a
// domain.
func cleanAddress(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		s = strings.TrimSpace(s[i+1 : len(s)-1])
	}
	if len(s) >= 5 && strings.EqualFold(s[:5], "smtp:") {
		s = s[5:]
	}
	if s == "" {
		return "", true
	}
	if !utf8.ValidString(s) {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", false
	}
	local, domain := s[:at], s[at+1:]
	quoted := len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"'
	for _, c := range domain {
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' || c == '@' {
			return "", false
		}
	}
	if !quoted {
		for _, c := range local {
			if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == ',' {
				return "", false
			}
		}
	} else {
		for _, c := range local {
			if c < ' ' || c == 0x7f {
				return "", false
			}
		}
	}
	return s, true
}

// toUTF8 converts the report text to UTF-8. Exchange writes the report in
// UTF-8 or US-ASCII; ISO-8859-1 is converted; anything else keeps its bytes
// with invalid sequences replaced, since only the Subject can be affected.
func toUTF8(b []byte, charset string) string {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "iso_8859-1", "l1":
		var sb strings.Builder
		sb.Grow(len(b))
		for _, c := range b {
			sb.WriteRune(rune(c))
		}
		return sb.String()
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
