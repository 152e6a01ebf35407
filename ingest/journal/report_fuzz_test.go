package journal

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

func addSeeds(f *testing.F) {
	originalLF := strings.ReplaceAll(originalCRLF, "\r\n", "\n")
	for _, s := range []sample{
		{lines: basicLines, original: originalCRLF},
		{eol: "\n", lines: basicLines, original: originalLF},
		{lines: basicLines, original: originalCRLF, origCTE: "base64"},
		{lines: basicLines, original: originalCRLF, origCTE: "quoted-printable", textCTE: "quoted-printable"},
		{lines: basicLines, original: originalCRLF, textCTE: "base64", textCharset: "utf-8", pad: " ", preamble: "preamble"},
		{lines: basicLines[:3], original: originalCRLF},
		{lines: basicLines, omitOrig: true},
		{lines: basicLines, original: originalCRLF, noClose: true},
	} {
		f.Add(s.build())
	}
	f.Add([]byte("X-MS-Journal-Report:\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nSender: a@b\r\nTo: c@d\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nx\r\n--b--\r\n"))
}

// FuzzParseReport checks the parser's promises on any input: it does not
// panic, every error is ErrMalformed, and a success returns a non-empty
// original that is a sub-slice of the input unless it was decoded, with
// evidence that is exactly the rest.
func FuzzParseReport(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := ParseReport(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(r.Original) == 0 || len(r.Recipients) == 0 {
			t.Fatalf("success without an original or recipients: %+v", r)
		}
		if r.TransferEncoding == "" {
			if !within(r.Original, raw) {
				t.Fatal("identity-encoded original is not a sub-slice")
			}
			if len(r.Evidence) != len(raw)-len(r.Original) {
				t.Fatalf("evidence %d + original %d != input %d", len(r.Evidence), len(r.Original), len(raw))
			}
		}
		for _, rc := range r.Recipients {
			if rc.Address == "" {
				t.Fatal("empty recipient address")
			}
		}
	})
}

// FuzzClassify checks that classification never fails and always yields an
// envelope the archive accepts.
func FuzzClassify(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("X-Gm-Original-To: a@b\r\n\r\nx"))
	f.Add([]byte("Delivered-To: a@b\nX-Original-To: <c@d>, e@f\n\nx"))
	cl, err := New(Options{ArchiveAddresses: []string{"archive@cairn.example"}, LocalDomains: []string{"contoso.com"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		msg, env := cl.Classify(raw, SMTPEnvelope{MailFrom: "a@contoso.com", RcptTo: []string{"archive+b=contoso.com@cairn.example"}})
		if env == nil {
			t.Fatal("nil envelope")
		}
		if env.Meta[MetaTransferEncoding] == "" && len(raw) > 0 && !within(msg, raw) {
			t.Fatal("archived bytes are neither the input nor a sub-slice of it")
		}
		if env.Source == ingest.SourceJournal && env.Meta[MetaMalformed] != "" && len(msg) != len(raw) {
			t.Fatal("malformed report not archived whole")
		}
		env.ReceivedAt = time.Now()
		if err := env.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}
