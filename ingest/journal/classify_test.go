package journal

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

func TestClassifyJournal(t *testing.T) {
	cl, err := New(Options{ArchiveAddresses: []string{"journal@archive.example"}, LocalDomains: []string{"contoso.com"}})
	if err != nil {
		t.Fatal(err)
	}
	raw := sample{lines: append([]string{
		"Sender: alice@contoso.com",
		"On-Behalf-Of: boss@contoso.com",
		"Subject: Quarterly numbers",
		"Message-Id: <other-id@contoso.com>",
		"Mailbox: records@contoso.com",
	}, basicLines[3:]...), original: originalCRLF}.build()
	msg, env := cl.Classify(raw, SMTPEnvelope{MailFrom: "", RcptTo: []string{"journal@archive.example"}})
	if string(msg) != originalCRLF {
		t.Fatalf("message is not the original: %q", msg)
	}
	if env.Source != ingest.SourceJournal || env.Sender != "alice@contoso.com" {
		t.Errorf("Source %q Sender %q", env.Source, env.Sender)
	}
	if !reflect.DeepEqual(env.Recipients, basicRecipients) {
		t.Errorf("Recipients %+v", env.Recipients)
	}
	// Sender, local recipients, forwarded-from mailboxes, the On-Behalf-Of and
	// Mailbox addresses; not carol (another domain), not the expanded lists,
	// not the archive's own address.
	want := []string{"alice@contoso.com", "bob@contoso.com", "dave@contoso.com", "erin@contoso.com",
		"fwd@contoso.com", "frank@contoso.com", "henry@contoso.com", "ivan@contoso.com",
		"judy@contoso.com", "kim@contoso.com", "boss@contoso.com", "records@contoso.com"}
	if !reflect.DeepEqual(env.Custodians, want) {
		t.Errorf("Custodians\n got %q\nwant %q", env.Custodians, want)
	}
	if env.Meta[MetaMessageID] != "<other-id@contoso.com>" || env.Meta[MetaMessageIDDiffers] != "<CAF1234.5678@contoso.com>" {
		t.Errorf("Meta %v", env.Meta)
	}
	if env.Meta[MetaSMTPRcpt] != "journal@archive.example" || env.Meta[MetaOnBehalfOf] != "boss@contoso.com" {
		t.Errorf("Meta %v", env.Meta)
	}
	if len(env.Evidence) == 0 || strings.Contains(string(env.Evidence), "Numbers attached") {
		t.Error("Evidence must be the report without the original")
	}
	env.ReceivedAt = time.Now()
	if err := env.Validate(); err != nil {
		t.Error(err)
	}
}

// Inside an Exchange organisation the header has another name.
func TestClassifyOrganizationHeader(t *testing.T) {
	raw := sample{lines: basicLines, original: originalCRLF}.build()
	raw = []byte(strings.Replace(string(raw), "X-MS-Journal-Report:", "X-MS-Exchange-Organization-Journal-Report: 1", 1))
	cl, _ := New(Options{})
	msg, env := cl.Classify(raw, SMTPEnvelope{RcptTo: []string{"j@archive.example"}})
	if env.Source != ingest.SourceJournal || string(msg) != originalCRLF {
		t.Fatalf("Source %q, msg %d bytes", env.Source, len(msg))
	}
}

func TestClassifyGoogle(t *testing.T) {
	raw := []byte("X-Gm-Original-To: bob@contoso.com\r\n" +
		"X-Gm-Original-To: <carol@contoso.com>\r\n" +
		"From: alice@contoso.com\r\nTo: bob@contoso.com\r\nSubject: hi\r\n\r\nbody\r\n")
	cl, _ := New(Options{ArchiveAddresses: []string{"vault@archive.example"}})
	msg, env := cl.Classify(raw, SMTPEnvelope{MailFrom: "alice@contoso.com", RcptTo: []string{"vault@archive.example"}})
	if &msg[0] != &raw[0] || len(msg) != len(raw) {
		t.Error("a Google copy is archived as received")
	}
	if env.Source != ingest.SourceGoogle {
		t.Fatalf("Source %q", env.Source)
	}
	want := []ingest.Recipient{
		rcpt(ingest.KindRecipient, "vault@archive.example"),
		rcpt(ingest.KindRecipient, "bob@contoso.com"),
		rcpt(ingest.KindRecipient, "carol@contoso.com"),
	}
	if !reflect.DeepEqual(env.Recipients, want) {
		t.Errorf("Recipients %+v", env.Recipients)
	}
	if !reflect.DeepEqual(env.Custodians, []string{"alice@contoso.com", "bob@contoso.com", "carol@contoso.com"}) {
		t.Errorf("Custodians %q", env.Custodians)
	}
	if env.Meta[MetaEnvelopeFrom] != "x-gm-original-to" {
		t.Errorf("Meta %v", env.Meta)
	}
}

func TestClassifyPostfixBcc(t *testing.T) {
	cl, _ := New(Options{ArchiveAddresses: []string{"archive@cairn.example"}, LocalDomains: []string{"example.com", "@example.org"}})
	plain := []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: s\r\n\r\nbody\r\n")
	tests := []struct {
		name       string
		raw        []byte
		env        SMTPEnvelope
		recipients []string
		custodians []string
		used       string
	}{
		{
			name:       "always_bcc: the envelope recipient is the archive",
			raw:        plain,
			env:        SMTPEnvelope{MailFrom: "a@example.com", RcptTo: []string{"archive@cairn.example"}},
			recipients: []string{"archive@cairn.example"},
			custodians: []string{"a@example.com"},
		},
		{
			name: "recipient_bcc_maps with tags keeps every recipient, Bcc too",
			raw:  plain,
			env: SMTPEnvelope{MailFrom: "a@example.com", RcptTo: []string{
				"archive+b=example.com@cairn.example", "ARCHIVE+hidden=example.org@Cairn.Example", "archive+x=gmail.example@cairn.example",
			}},
			recipients: []string{"b@example.com", "hidden@example.org", "x@gmail.example"},
			custodians: []string{"a@example.com", "b@example.com", "hidden@example.org"},
		},
		{
			name:       "Postfix local delivery headers",
			raw:        append([]byte("Delivered-To: b@example.com\r\nX-Original-To: list@example.com\r\n"), plain...),
			env:        SMTPEnvelope{MailFrom: "a@example.com", RcptTo: []string{"someone@cairn.example"}},
			recipients: []string{"someone@cairn.example", "list@example.com", "b@example.com"},
			custodians: []string{"a@example.com", "list@example.com", "b@example.com"},
			used:       "x-original-to,delivered-to",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, env := cl.Classify(tt.raw, tt.env)
			if len(msg) != len(tt.raw) {
				t.Error("a bcc copy is archived as received")
			}
			if env.Source != ingest.SourceBcc {
				t.Fatalf("Source %q", env.Source)
			}
			var got []string
			for _, r := range env.Recipients {
				got = append(got, r.Address)
				if r.Kind != ingest.KindRecipient {
					t.Errorf("kind %q", r.Kind)
				}
			}
			if !reflect.DeepEqual(got, tt.recipients) {
				t.Errorf("Recipients %q, want %q", got, tt.recipients)
			}
			if !reflect.DeepEqual(env.Custodians, tt.custodians) {
				t.Errorf("Custodians %q, want %q", env.Custodians, tt.custodians)
			}
			if env.Meta[MetaEnvelopeFrom] != tt.used {
				t.Errorf("Meta %v", env.Meta)
			}
		})
	}
}

func TestClassifyPlain(t *testing.T) {
	cl, _ := New(Options{ArchiveAddresses: []string{"archive@cairn.example"}})
	raw := []byte("From: a@example.com\nTo: b@example.com\n\nLF only\n")
	msg, env := cl.Classify(raw, SMTPEnvelope{MailFrom: "a@example.com", RcptTo: []string{"b@example.com", "c@example.net"}})
	if len(msg) != len(raw) || env.Source != ingest.SourceSMTP || env.Sender != "a@example.com" {
		t.Fatalf("Source %q Sender %q", env.Source, env.Sender)
	}
	want := []ingest.Recipient{rcpt(ingest.KindRecipient, "b@example.com"), rcpt(ingest.KindRecipient, "c@example.net")}
	if !reflect.DeepEqual(env.Recipients, want) {
		t.Errorf("Recipients %+v", env.Recipients)
	}
	if !reflect.DeepEqual(env.Custodians, []string{"a@example.com", "b@example.com", "c@example.net"}) {
		t.Errorf("Custodians %q", env.Custodians)
	}
	// A header that merely mentions journaling in its value is not a report.
	raw = []byte("Subject: X-MS-Journal-Report:\r\n\r\nbody\r\n")
	if _, env := cl.Classify(raw, SMTPEnvelope{RcptTo: []string{"b@example.com"}}); env.Source != ingest.SourceSMTP {
		t.Errorf("Source %q", env.Source)
	}
	// Nor is one in the body.
	raw = []byte("Subject: x\r\n\r\nX-MS-Journal-Report:\r\n")
	if _, env := cl.Classify(raw, SMTPEnvelope{RcptTo: []string{"b@example.com"}}); env.Source != ingest.SourceSMTP {
		t.Errorf("Source %q", env.Source)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := []Options{
		{},
		{ArchiveAddresses: []string{"archive@cairn.example"}, LocalDomains: []string{"example.com", "@example.org"}},
	}
	for _, o := range good {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	bad := []Options{
		{ArchiveAddresses: []string{"archive"}},
		{ArchiveAddresses: []string{"@cairn.example"}},
		{ArchiveAddresses: []string{"archive+tag@cairn.example"}},
		{ArchiveAddresses: []string{"a b@cairn.example"}},
		{LocalDomains: []string{""}},
		{LocalDomains: []string{"user@example.com"}},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: want an error", o)
		}
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): want an error", o)
		}
	}
}
