package journal

import (
	"bytes"
	"encoding/base64"
	"mime/quotedprintable"
	"strings"
)

// A sample report is written the way Exchange writes one: a
// multipart/mixed with the envelope text (the [MS-XJRNL] Envelope-Part)
// first and the original as message/rfc822 second.
type sample struct {
	eol         string // "\r\n" or "\n"
	boundary    string
	lines       []string // Envelope-Part lines, without line endings
	textCharset string   // "" means us-ascii
	textCTE     string   // "", "7bit", "quoted-printable", "base64"
	origType    string   // "" means message/rfc822
	origCTE     string   // "", "7bit", "8bit", "binary", "base64", "quoted-printable"
	original    string   // written with eol line endings by the test itself
	omitOrig    bool
	noClose     bool
	pad         string // transport padding after each delimiter (RFC 2046 §5.1.1)
	preamble    string // text before the first delimiter
}

const originalCRLF = "Received: from mail.contoso.com (10.0.0.5) by EX01.contoso.com\r\n" +
	" (10.0.0.6) with Microsoft SMTP Server id 15.2.1118.7; Tue, 3 Mar 2026\r\n" +
	" 10:15:01 +0000\r\n" +
	"From: Alice Example <alice@contoso.com>\r\n" +
	"To: Bob <bob@contoso.com>, sales@contoso.com\r\n" +
	"Cc: carol@fabrikam.example\r\n" +
	"Subject: Quarterly numbers\r\n" +
	"Date: Tue, 3 Mar 2026 10:15:00 +0000\r\n" +
	"Message-ID: <CAF1234.5678@contoso.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=\"utf-8\"\r\n" +
	"Content-Transfer-Encoding: 8bit\r\n" +
	"\r\n" +
	"Numbers attached. Grüße, Alice\r\n" +
	"--\r\n" +
	".leading dot line\r\n" +
	"trailing space \r\n"

func (s sample) build() []byte {
	eol := s.eol
	if eol == "" {
		eol = "\r\n"
	}
	b := s.boundary
	if b == "" {
		b = "_000_a5b4c3d2e1f0AM6PR01MB1234eurprd01prod_"
	}
	var w strings.Builder
	hdr := []string{
		"Received: from AM6PR01MB1234.eurprd01.prod.exchangelabs.com by mx.archive.example",
		"From: Microsoft Exchange Online <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>",
		"To: journal@archive.example",
		"Date: Tue, 3 Mar 2026 10:15:02 +0000",
		"Subject: Quarterly numbers",
		"Message-ID: <a5b4c3d2e1f0@AM6PR01MB1234.eurprd01.prod.exchangelabs.com>",
		"Content-Type: multipart/mixed;",
		"\tboundary=\"" + b + "\"",
		"MIME-Version: 1.0",
		"X-MS-Journal-Report:",
		"X-MS-Exchange-Organization-SCL: -1",
	}
	for _, h := range hdr {
		w.WriteString(h + eol)
	}
	w.WriteString(eol)
	if s.preamble != "" {
		w.WriteString(s.preamble + eol)
	}
	w.WriteString("--" + b + s.pad + eol)
	charset := s.textCharset
	if charset == "" {
		charset = "us-ascii"
	}
	w.WriteString("Content-Type: text/plain; charset=\"" + charset + "\"" + eol)
	text := strings.Join(s.lines, "\r\n") + "\r\n"
	switch s.textCTE {
	case "base64":
		w.WriteString("Content-Transfer-Encoding: base64" + eol + eol)
		w.WriteString(wrap76(base64.StdEncoding.EncodeToString([]byte(text)), eol))
	case "quoted-printable":
		w.WriteString("Content-Transfer-Encoding: quoted-printable" + eol + eol)
		var qb bytes.Buffer
		qw := quotedprintable.NewWriter(&qb)
		qw.Write([]byte(text))
		qw.Close()
		w.WriteString(strings.ReplaceAll(qb.String(), "\r\n", eol))
	default:
		if s.textCTE != "" {
			w.WriteString("Content-Transfer-Encoding: " + s.textCTE + eol)
		}
		w.WriteString(eol)
		w.WriteString(strings.ReplaceAll(text, "\r\n", eol))
	}
	w.WriteString(eol)
	if !s.omitOrig {
		w.WriteString("--" + b + s.pad + eol)
		ot := s.origType
		if ot == "" {
			ot = "message/rfc822"
		}
		w.WriteString("Content-Type: " + ot + eol)
		w.WriteString("Content-Disposition: attachment" + eol)
		switch s.origCTE {
		case "base64":
			w.WriteString("Content-Transfer-Encoding: base64" + eol + eol)
			w.WriteString(wrap76(base64.StdEncoding.EncodeToString([]byte(s.original)), eol))
		case "quoted-printable":
			w.WriteString("Content-Transfer-Encoding: quoted-printable" + eol + eol)
			var qb bytes.Buffer
			qw := quotedprintable.NewWriter(&qb)
			qw.Write([]byte(s.original))
			qw.Close()
			w.WriteString(strings.ReplaceAll(qb.String(), "\r\n", eol))
		default:
			if s.origCTE != "" {
				w.WriteString("Content-Transfer-Encoding: " + s.origCTE + eol)
			}
			w.WriteString(eol)
			w.WriteString(s.original)
		}
		w.WriteString(eol)
	}
	if !s.noClose {
		w.WriteString("--" + b + "--" + s.pad + eol + "epilogue" + eol)
	}
	return []byte(w.String())
}

func wrap76(s, eol string) string {
	var w strings.Builder
	for len(s) > 76 {
		w.WriteString(s[:76] + eol)
		s = s[76:]
	}
	w.WriteString(s + eol)
	return w.String()
}

// basicLines is a report with every recipient form of the ABNF.
var basicLines = []string{
	"Sender: alice@contoso.com",
	"Subject: Quarterly numbers",
	"Message-Id: <CAF1234.5678@contoso.com>",
	"To: bob@contoso.com",
	"Cc: carol@fabrikam.example",
	"Bcc: dave@contoso.com",
	"To: erin@contoso.com, Expanded: sales@contoso.com",
	"Cc: fwd@contoso.com, Forwarded: frank@contoso.com",
	"Bcc: henry@contoso.com, Expanded: board@contoso.com",
	"Recipient: ivan@contoso.com",
	"Recipient: judy@contoso.com, Forwarded: kim@contoso.com",
}
