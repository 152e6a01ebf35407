package journal

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/ from the sample builder")

// The files in testdata/ are journal reports written by the ABNF, with the
// original each one carries beside it (NAME.eml, NAME.original.eml). They
// are test vectors for end-to-end checks too: deliver NAME.eml to the SMTP
// receiver and the archive must hold exactly NAME.original.eml.
var vectors = map[string]sample{
	"exchange-online-report": {lines: basicLines, original: originalCRLF},
	"bifurcated-1": {boundary: "_000_bif1_", lines: []string{
		"Sender: alice@contoso.com", "Subject: Quarterly numbers", "Message-Id: <CAF1234.5678@contoso.com>",
		"To: bob@contoso.com", "Bcc: dave@contoso.com",
	}, original: originalCRLF},
	"bifurcated-2": {boundary: "_000_bif2_", origCTE: "base64", lines: []string{
		"Sender: alice@contoso.com", "Subject: Quarterly numbers", "Message-Id: <CAF1234.5678@contoso.com>",
		"To: erin@contoso.com, Expanded: sales@contoso.com", "Cc: carol@fabrikam.example",
	}, original: originalCRLF},
	"malformed-no-attachment": {lines: basicLines, omitOrig: true},
}

func TestVectors(t *testing.T) {
	for name, s := range vectors {
		reportFile := filepath.Join("testdata", name+".eml")
		origFile := filepath.Join("testdata", name+".original.eml")
		if *update {
			os.MkdirAll("testdata", 0o755)
			if err := os.WriteFile(reportFile, s.build(), 0o644); err != nil {
				t.Fatal(err)
			}
			if !s.omitOrig {
				if err := os.WriteFile(origFile, []byte(s.original), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		raw, err := os.ReadFile(reportFile)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseReport(raw)
		if s.omitOrig {
			if err == nil {
				t.Errorf("%s: want ErrMalformed", name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := os.ReadFile(origFile)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Original, want) {
			t.Errorf("%s: original differs from %s", name, origFile)
		}
	}
}
