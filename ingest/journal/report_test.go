package journal

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/cairn-archive/cairn/ingest"
)

// within reports whether sub shares memory with whole (is a sub-slice).
func within(sub, whole []byte) bool {
	if len(sub) == 0 || len(whole) == 0 {
		return false
	}
	s := uintptr(unsafe.Pointer(unsafe.SliceData(sub)))
	w := uintptr(unsafe.Pointer(unsafe.SliceData(whole)))
	return s >= w && s+uintptr(len(sub)) <= w+uintptr(len(whole))
}

func rcpt(kind ingest.RecipientKind, addr string) ingest.Recipient {
	return ingest.Recipient{Address: addr, Kind: kind}
}

var basicRecipients = []ingest.Recipient{
	rcpt(ingest.KindTo, "bob@contoso.com"),
	rcpt(ingest.KindCc, "carol@fabrikam.example"),
	rcpt(ingest.KindBcc, "dave@contoso.com"),
	{Address: "erin@contoso.com", Kind: ingest.KindTo, ExpandedFrom: "sales@contoso.com"},
	{Address: "fwd@contoso.com", Kind: ingest.KindCc, ForwardedFrom: "frank@contoso.com"},
	{Address: "henry@contoso.com", Kind: ingest.KindBcc, ExpandedFrom: "board@contoso.com"},
	rcpt(ingest.KindRecipient, "ivan@contoso.com"),
	{Address: "judy@contoso.com", Kind: ingest.KindRecipient, ForwardedFrom: "kim@contoso.com"},
}

func TestParseReport(t *testing.T) {
	originalLF := strings.ReplaceAll(originalCRLF, "\r\n", "\n")
	tests := []struct {
		name       string
		s          sample
		sender     string
		subject    string
		messageID  string
		recipients []ingest.Recipient
		cte        string // expected Report.TransferEncoding
		check      func(t *testing.T, r *Report)
	}{
		{
			name:       "every recipient form, CRLF, raw message/rfc822",
			s:          sample{lines: basicLines, original: originalCRLF},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
		},
		{
			name:       "LF line endings (report kept in a Unix mail store)",
			s:          sample{eol: "\n", lines: basicLines, original: originalLF},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
		},
		{
			name:       "7bit and 8bit and binary declared",
			s:          sample{lines: basicLines, original: originalCRLF, origCTE: "8bit", textCTE: "7bit"},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
		},
		{
			name:       "base64-encoded attachment is decoded exactly",
			s:          sample{lines: basicLines, original: originalCRLF, origCTE: "base64"},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
			cte:        "base64",
		},
		{
			name: "quoted-printable attachment is decoded exactly",
			// A conforming encoder encodes the trailing space as =20, so
			// it survives the decoder's removal of transport padding.
			s:          sample{lines: basicLines, original: originalCRLF, origCTE: "quoted-printable"},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
			cte:        "quoted-printable",
		},
		{
			name: "Unicode: UTF-8 report text in base64, EAI addresses, display names, SMTP: prefix",
			s: sample{
				textCharset: "utf-8", textCTE: "base64",
				lines: []string{
					"Sender: José Müller <jose.muller@contoso.com>",
					"Subject: Réunion 東京 — Ünïcödé",
					"Message-ID: <uni@contoso.com>",
					"To: 用户@例子.广告",
					"Cc: SMTP:ärger@bücher.example",
					"Bcc: \"Zoë Saldaña\" <zoe@contoso.com>, Expanded: équipe@contoso.com",
				},
				original: originalCRLF,
			},
			sender:    "jose.muller@contoso.com",
			subject:   "Réunion 東京 — Ünïcödé",
			messageID: "<uni@contoso.com>",
			recipients: []ingest.Recipient{
				rcpt(ingest.KindTo, "用户@例子.广告"),
				rcpt(ingest.KindCc, "ärger@bücher.example"),
				{Address: "zoe@contoso.com", Kind: ingest.KindBcc, ExpandedFrom: "équipe@contoso.com"},
			},
		},
		{
			name: "ISO-8859-1 report text in quoted-printable",
			s: sample{
				textCharset: "iso-8859-1", textCTE: "quoted-printable",
				lines: []string{
					"Sender: alice@contoso.com",
					"Subject: Caf\xe9 cr\xe8me",
					"Message-ID: <latin@contoso.com>",
					"To: bob@contoso.com",
				},
				original: originalCRLF,
			},
			sender: "alice@contoso.com", subject: "Café crème", messageID: "<latin@contoso.com>",
			recipients: []ingest.Recipient{rcpt(ingest.KindTo, "bob@contoso.com")},
		},
		{
			name: "[MS-XJRNL] optional fields, Message-ID before Subject, null sender",
			s: sample{
				lines: []string{
					"Sender: <>",
					"On-Behalf-Of: assistant@contoso.com",
					"Message-ID: <ndr@contoso.com>",
					"Subject: ",
					"Label: Legal hold 2026",
					"Mailbox: ceo@contoso.com",
					"SentUtc: 2026-03-03T10:15:00.000Z",
					"ReceivedUtc: 2026-03-03T10:15:01.000Z",
					"X-Future-Field: whatever",
					"To: ceo@contoso.com",
				},
				original: originalCRLF,
			},
			sender: "", subject: "", messageID: "<ndr@contoso.com>",
			recipients: []ingest.Recipient{rcpt(ingest.KindTo, "ceo@contoso.com")},
			check: func(t *testing.T, r *Report) {
				if r.OnBehalfOf != "assistant@contoso.com" || r.Mailbox != "ceo@contoso.com" ||
					r.Label != "Legal hold 2026" || r.SentUTC != "2026-03-03T10:15:00.000Z" ||
					r.ReceivedUTC != "2026-03-03T10:15:01.000Z" {
					t.Errorf("optional fields: %+v", r)
				}
				if !reflect.DeepEqual(r.Unknown, []string{"X-Future-Field"}) {
					t.Errorf("Unknown = %q", r.Unknown)
				}
			},
		},
		{
			name: "Exchange's placeholders for a missing sender and Message-ID",
			s: sample{lines: []string{
				"Sender: Unspecified Address", "Subject: no sender", "Message-Id: Unknown Message-ID", "Recipient: bob@contoso.com",
			}, original: originalCRLF},
			sender: "", subject: "no sender", messageID: "Unknown Message-ID",
			recipients: []ingest.Recipient{rcpt(ingest.KindRecipient, "bob@contoso.com")},
		},
		{
			name:       "message/global attachment (RFC 6532)",
			s:          sample{lines: basicLines, original: originalCRLF, origType: "message/global"},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
		},
		{
			name: "odd boundary characters, transport padding, preamble and epilogue",
			s: sample{lines: basicLines, original: originalCRLF, boundary: "b'()+_,-./:=?", pad: " \t ",
				preamble: "This is a multi-part message in MIME format."},
			sender:     "alice@contoso.com",
			subject:    "Quarterly numbers",
			messageID:  "<CAF1234.5678@contoso.com>",
			recipients: basicRecipients,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.s.build()
			if !IsReport(raw) {
				t.Fatal("IsReport = false")
			}
			r, err := ParseReport(raw)
			if err != nil {
				t.Fatal(err)
			}
			if r.Sender != tt.sender || r.Subject != tt.subject || r.MessageID != tt.messageID {
				t.Errorf("Sender %q Subject %q Message-ID %q", r.Sender, r.Subject, r.MessageID)
			}
			if !reflect.DeepEqual(r.Recipients, tt.recipients) {
				t.Errorf("Recipients\n got %+v\nwant %+v", r.Recipients, tt.recipients)
			}
			if string(r.Original) != tt.s.original {
				t.Errorf("Original differs:\n got %q\nwant %q", r.Original, tt.s.original)
			}
			if r.TransferEncoding != tt.cte {
				t.Errorf("TransferEncoding %q, want %q", r.TransferEncoding, tt.cte)
			}
			if tt.cte == "" && !within(r.Original, raw) {
				t.Error("Original is not a sub-slice of the input")
			}
			if bytes.Contains(r.Evidence, []byte("Numbers attached")) {
				t.Error("Evidence still holds the original's body")
			}
			if !bytes.Contains(r.Evidence, []byte("X-MS-Journal-Report:")) || !bytes.Contains(r.Evidence, []byte("Content-Disposition: attachment")) {
				t.Error("Evidence lost the report's headers")
			}
			if tt.cte == "" && len(r.Evidence) != len(raw)-len(r.Original) {
				t.Errorf("Evidence is %d bytes, want %d", len(r.Evidence), len(raw)-len(r.Original))
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// Exchange bifurcates: one message, two reports with different recipients,
// boundaries, line endings of the report text and even transfer encodings.
// The archive deduplicates content, so the originals must be identical.
func TestBifurcatedReportsYieldIdenticalOriginals(t *testing.T) {
	a := sample{boundary: "_000_first_", lines: []string{
		"Sender: alice@contoso.com", "Subject: Quarterly numbers", "Message-Id: <CAF1234.5678@contoso.com>",
		"To: bob@contoso.com", "Bcc: dave@contoso.com",
	}, original: originalCRLF}.build()
	b := sample{boundary: "_002_second_", textCTE: "quoted-printable", textCharset: "utf-8", lines: []string{
		"Sender: alice@contoso.com", "Subject: Quarterly numbers", "Message-Id: <CAF1234.5678@contoso.com>",
		"Cc: carol@fabrikam.example",
	}, original: originalCRLF}.build()
	c := sample{boundary: "_003_third_", origCTE: "base64", lines: []string{
		"Sender: alice@contoso.com", "Subject: Quarterly numbers", "Message-Id: <CAF1234.5678@contoso.com>",
		"To: erin@contoso.com, Expanded: sales@contoso.com",
	}, original: originalCRLF}.build()

	cl, _ := New(Options{})
	var sums [][32]byte
	for _, raw := range [][]byte{a, b, c} {
		msg, env := cl.Classify(raw, SMTPEnvelope{MailFrom: "", RcptTo: []string{"journal@archive.example"}})
		if env.Meta[MetaMalformed] != "" {
			t.Fatal(env.Meta[MetaMalformed])
		}
		sums = append(sums, sha256.Sum256(msg))
	}
	if sums[0] != sums[1] || sums[1] != sums[2] {
		t.Fatalf("bifurcated reports gave different originals: %x %x %x", sums[0], sums[1], sums[2])
	}
	if sums[0] != sha256.Sum256([]byte(originalCRLF)) {
		t.Fatal("original is not the attached message")
	}
}

func TestParseReportMalformed(t *testing.T) {
	ok := sample{lines: basicLines, original: originalCRLF}
	mutate := func(f func(s *sample)) []byte {
		s := ok
		f(&s)
		return s.build()
	}
	replace := func(old, new string) []byte {
		return bytes.Replace(ok.build(), []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name    string
		raw     []byte
		problem string
	}{
		{"no attachment", mutate(func(s *sample) { s.omitOrig = true }), "no message/rfc822 attachment"},
		{"garbled line", mutate(func(s *sample) {
			s.lines = append(append([]string{}, basicLines...), "this line has no field name")
		}), "garbled line"},
		{"garbled field name", mutate(func(s *sample) {
			s.lines = append(append([]string{}, basicLines...), "To bob@contoso.com: x")
		}), "garbled line"},
		{"no Sender", mutate(func(s *sample) { s.lines = basicLines[1:] }), "no Sender line"},
		{"two Senders", mutate(func(s *sample) { s.lines = append([]string{"Sender: mallory@contoso.com"}, basicLines...) }), "two Sender lines"},
		{"no recipients", mutate(func(s *sample) { s.lines = basicLines[:3] }), "no recipient lines"},
		{"recipient without address", mutate(func(s *sample) { s.lines = append(basicLines[:3:3], "To: ") }), "bad recipient address"},
		{"recipient with spaces", mutate(func(s *sample) { s.lines = append(basicLines[:3:3], "To: bob smith@contoso.com") }), "bad recipient address"},
		{"bad Expanded address", mutate(func(s *sample) { s.lines = append(basicLines[:3:3], "To: bob@contoso.com, Expanded: not an address") }), "bad expanded address"},
		{"bad sender", mutate(func(s *sample) { s.lines = append([]string{"Sender: alice at contoso"}, basicLines[1:]...) }), "bad Sender address"},
		{"truncated: no close delimiter", mutate(func(s *sample) { s.noClose = true }), "no close-delimiter"},
		{"bad base64", replace("Content-Disposition: attachment\r\n", "Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n"), "attachment: base64"},
		{"unknown transfer encoding", replace("Content-Disposition: attachment\r\n", "Content-Disposition: attachment\r\nContent-Transfer-Encoding: x-uuencode\r\n"), "unknown Content-Transfer-Encoding"},
		{"empty attachment", mutate(func(s *sample) { s.original = "" }), "empty message/rfc822 attachment"},
		{"not multipart", replace("multipart/mixed;", "text/plain;"), "not multipart"},
		{"no boundary", replace("boundary=", "bnd="), "without a boundary"},
		{"boundary never appears", replace("boundary=\"_000_", "boundary=\"_999_"), "no delimiter line"},
		{"broken Content-Type", replace("multipart/mixed;", "multipart/mixed;;=\"\";"), "Content-Type"},
		{"empty input", []byte{}, "not multipart"},
	}
	cl, _ := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReport(tt.raw)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.problem) {
				t.Errorf("err = %v, want it to mention %q", err, tt.problem)
			}
			// Classified, it is archived whole, flagged, with the SMTP envelope.
			raw := tt.raw
			if !IsReport(raw) {
				raw = append([]byte("X-MS-Journal-Report:\r\n"), raw...)
			}
			msg, env := cl.Classify(raw, SMTPEnvelope{MailFrom: "postmaster@contoso.com", RcptTo: []string{"journal@archive.example"}})
			if !bytes.Equal(msg, raw) || (len(raw) > 0 && !within(msg, raw)) {
				t.Error("a malformed report must be archived as received")
			}
			if env.Source != ingest.SourceJournal || env.Meta[MetaMalformed] == "" {
				t.Errorf("Source %q Meta %v", env.Source, env.Meta)
			}
			if env.Sender != "postmaster@contoso.com" || len(env.Recipients) != 1 || env.Recipients[0].Address != "journal@archive.example" {
				t.Errorf("envelope %+v, want the SMTP one", env)
			}
			if env.Evidence != nil {
				t.Error("no separate evidence for a report archived whole")
			}
		})
	}
}
