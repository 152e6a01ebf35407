package imapview

import (
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/archive/message"
)

// envelope converts the stored envelope (RFC 9051 §7.5.2 ENVELOPE). Fields
// stay as written: RFC 2047 words are sent encoded, as servers do.
func envelope(e *message.Envelope) *imap.Envelope {
	if e == nil {
		return &imap.Envelope{}
	}
	out := &imap.Envelope{
		Date:      e.Time(),
		Subject:   e.Subject,
		From:      addresses(e.From),
		Sender:    addresses(e.IMAPSender()),
		ReplyTo:   addresses(e.IMAPReplyTo()),
		To:        addresses(e.To),
		Cc:        addresses(e.Cc),
		Bcc:       addresses(e.Bcc),
		MessageID: strings.Trim(strings.TrimSpace(e.MessageID), "<>"),
		InReplyTo: msgIDs(e.InReplyTo),
	}
	return out
}

func addresses(as []message.Address) []imap.Address {
	if len(as) == 0 {
		return nil
	}
	out := make([]imap.Address, len(as))
	for i, a := range as {
		// Group markers map as IMAP has them: start (NIL NIL name NIL),
		// end all NIL.
		out[i] = imap.Address{Name: a.Name, Mailbox: a.Mailbox, Host: a.Host}
	}
	return out
}

// msgIDs splits "<a@b> <c@d>" into ["a@b", "c@d"]; go-imap adds the angle
// brackets back.
func msgIDs(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
		if f = strings.Trim(f, "<>"); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func params(ps []message.Param) map[string]string {
	if len(ps) == 0 {
		return nil
	}
	m := make(map[string]string, len(ps))
	for _, p := range ps {
		if _, dup := m[p.Name]; !dup {
			m[p.Name] = p.Value
		}
	}
	return m
}

// bodyStructure converts the stored MIME structure (RFC 9051 §7.5.2
// BODYSTRUCTURE), never parsing the message again.
func bodyStructure(p *message.Part, extended bool) imap.BodyStructure {
	var disp *imap.BodyStructureDisposition
	if p.Disposition != "" {
		disp = &imap.BodyStructureDisposition{Value: p.Disposition, Params: params(p.DispositionParams)}
	}
	if len(p.Parts) > 0 {
		mp := &imap.BodyStructureMultiPart{Subtype: p.MediaSubtype}
		for i := range p.Parts {
			mp.Children = append(mp.Children, bodyStructure(&p.Parts[i], extended))
		}
		if extended {
			mp.Extended = &imap.BodyStructureMultiPartExt{Params: params(p.Params), Disposition: disp,
				Language: p.Language, Location: p.Location}
		}
		return mp
	}
	sp := &imap.BodyStructureSinglePart{
		Type:        p.MediaType,
		Subtype:     p.MediaSubtype,
		Params:      params(p.Params),
		ID:          p.ID,
		Description: p.Description,
		Encoding:    p.Encoding,
		Size:        uint32(min(p.Size(), 1<<32-1)),
	}
	switch {
	case p.Message != nil:
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{Envelope: envelope(p.Message.Envelope),
			BodyStructure: bodyStructure(p.Message, extended), NumLines: p.Lines}
	case p.MediaType == "text":
		sp.Text = &imap.BodyStructureText{NumLines: p.Lines}
	}
	if extended {
		sp.Extended = &imap.BodyStructureSinglePartExt{Disposition: disp, Language: p.Language, Location: p.Location}
	}
	return sp
}
