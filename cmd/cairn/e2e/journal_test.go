//go:build integration

package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

func journalVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "ingest", "journal", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rcpt(kind ingest.RecipientKind, addr string) ingest.Recipient {
	return ingest.Recipient{Address: addr, Kind: kind}
}

// delivery is one row of the deliveries table with its envelope decoded.
type delivery struct {
	seq, message int
	source       string
	sender       string
	env          ingest.Envelope
	recipients   []string // "kind addr" from the recipients table, in insertion order
	evidence     string   // the ledger entry's evidence object key
}

func readDelivery(t *testing.T, in *instance, seq int) delivery {
	t.Helper()
	db := in.db()
	d := delivery{seq: seq}
	var envJSON []byte
	var evidence *string
	err := db.QueryRow(`SELECT d.message, d.source, d.sender, d.envelope, json_extract(e.line, '$.delivery.evidence')
		FROM deliveries d JOIN entries e ON e.seq = d.seq WHERE d.seq = ?`, seq).Scan(&d.message, &d.source, &d.sender, &envJSON, &evidence)
	if err != nil {
		t.Fatalf("delivery %d: %v", seq, err)
	}
	if err := json.Unmarshal(envJSON, &d.env); err != nil {
		t.Fatalf("delivery %d envelope %s: %v", seq, envJSON, err)
	}
	if evidence != nil {
		d.evidence = *evidence
	}
	rows, err := db.Query(`SELECT kind, addr FROM recipients WHERE delivery = ? ORDER BY rowid`, seq)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, a string
		rows.Scan(&k, &a)
		d.recipients = append(d.recipients, k+" "+a)
	}
	return d
}

// Issue 3, check 2: Exchange journal reports sent to the real `cairn serve`
// over SMTP. The archive holds the original, byte for byte, not the report;
// each report is a delivery carrying the report's envelope (every To, Cc,
// Bcc and Recipient line, with Expanded/Forwarded provenance); the report
// itself is kept as a sealed evidence object; two reports of one message
// (Exchange bifurcation) are one message with several deliveries; a
// malformed report is archived as received and flagged.
func TestJournalReports(t *testing.T) {
	in := newInstance(t, config{
		"smtp.accept_recipients":         []string{"journal@archive.example"},
		"smtp.journal.archive_addresses": []string{"journal@archive.example"},
		"smtp.journal.local_domains":     []string{"contoso.com"},
	})
	in.start()

	original := journalVector(t, "exchange-online-report.original.eml")
	for _, n := range []string{"bifurcated-1.original.eml", "bifurcated-2.original.eml"} {
		if !bytes.Equal(journalVector(t, n), original) {
			t.Fatalf("%s differs from exchange-online-report.original.eml; this test assumes the three reports carry one message", n)
		}
	}
	sum := sha256.Sum256(original)
	sha := hex.EncodeToString(sum[:])
	const exchange = "MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com"

	// The full report, then the two halves of a bifurcated one, then a
	// report without its attachment. Exchange sends from its own address.
	seqs := map[string]int{}
	for _, name := range []string{"exchange-online-report", "bifurcated-1", "bifurcated-2", "malformed-no-attachment"} {
		r := deliverOne(t, in.smtpAddr, exchange, []string{"journal@archive.example"}, journalVector(t, name+".eml"))
		seq, ok := smtptest.ParseSeq(r)
		if !strings.HasPrefix(r, "250 2.0.0 ") || !ok {
			t.Fatalf("%s: reply %q", name, r)
		}
		seqs[name] = int(seq)
	}
	// The malformed report came last: once the index lists it, it lists all.
	db := in.waitIndexed(t, uint64(seqs["malformed-no-attachment"]))

	// cat returns the original, not the wrapper, by SHA-256 and by the
	// sequence number of each delivery.
	for _, id := range []string{sha, fmt.Sprint(seqs["exchange-online-report"]), fmt.Sprint(seqs["bifurcated-1"]), fmt.Sprint(seqs["bifurcated-2"])} {
		if got := in.cat(id); !bytes.Equal(got, original) {
			t.Errorf("cairn cat %s: %d bytes, not the %d-byte original:\n%.300q", id, len(got), len(original), got)
		}
	}
	// A malformed report is archived as received, never dropped.
	malformed := journalVector(t, "malformed-no-attachment.eml")
	if got := in.cat(fmt.Sprint(seqs["malformed-no-attachment"])); !bytes.Equal(got, malformed) {
		t.Errorf("malformed report: cat returned %d bytes, want the %d received", len(got), len(malformed))
	}

	if n := queryInt(t, db, `SELECT COUNT(*) FROM messages`); n != 2 {
		t.Errorf("%d messages in the index, want 2 (the original once, the malformed report)", n)
	}
	if n := queryInt(t, db, `SELECT COUNT(*) FROM messages WHERE sha256 = ?`, sum[:]); n != 1 {
		t.Errorf("the original is %d times in messages, want once", n)
	}

	full := []ingest.Recipient{
		rcpt(ingest.KindTo, "bob@contoso.com"),
		rcpt(ingest.KindCc, "carol@fabrikam.example"),
		rcpt(ingest.KindBcc, "dave@contoso.com"),
		{Address: "erin@contoso.com", Kind: ingest.KindTo, ExpandedFrom: "sales@contoso.com"},
		{Address: "fwd@contoso.com", Kind: ingest.KindCc, ForwardedFrom: "frank@contoso.com"},
		{Address: "henry@contoso.com", Kind: ingest.KindBcc, ExpandedFrom: "board@contoso.com"},
		rcpt(ingest.KindRecipient, "ivan@contoso.com"),
		{Address: "judy@contoso.com", Kind: ingest.KindRecipient, ForwardedFrom: "kim@contoso.com"},
	}
	want := map[string][]ingest.Recipient{
		"exchange-online-report": full,
		"bifurcated-1":           {rcpt(ingest.KindTo, "bob@contoso.com"), rcpt(ingest.KindBcc, "dave@contoso.com")},
		"bifurcated-2":           {{Address: "erin@contoso.com", Kind: ingest.KindTo, ExpandedFrom: "sales@contoso.com"}, rcpt(ingest.KindCc, "carol@fabrikam.example")},
	}
	first := seqs["exchange-online-report"]
	evidence := map[string]bool{}
	for name, rcpts := range want {
		d := readDelivery(t, in, seqs[name])
		if d.message != first {
			t.Errorf("%s: delivery of message %d, want %d (one message, several deliveries)", name, d.message, first)
		}
		if d.source != ingest.SourceJournal || d.sender != "alice@contoso.com" || d.env.Sender != "alice@contoso.com" {
			t.Errorf("%s: source %q sender %q / %q, want journal from alice@contoso.com", name, d.source, d.sender, d.env.Sender)
		}
		if !reflect.DeepEqual(d.env.Recipients, rcpts) {
			t.Errorf("%s: envelope recipients\n got %+v\nwant %+v", name, d.env.Recipients, rcpts)
		}
		var rows []string
		for _, r := range rcpts {
			rows = append(rows, string(r.Kind)+" "+r.Address)
		}
		if !reflect.DeepEqual(d.recipients, rows) {
			t.Errorf("%s: recipients table %q, want %q", name, d.recipients, rows)
		}
		if d.env.Meta["smtp_mail_from"] != exchange || d.env.Meta["journal_message_id"] != "<CAF1234.5678@contoso.com>" {
			t.Errorf("%s: envelope meta %v", name, d.env.Meta)
		}
		// The report is kept: a sealed evidence object per delivery,
		// referenced from its ledger entry, present in the store (verify
		// --full below checks its SHA-256 against the entry).
		if d.evidence == "" || evidence[d.evidence] {
			t.Errorf("%s: evidence object %q (want one of its own)", name, d.evidence)
		} else if !objectExists(t, filepath.Join(in.data, "objects"), d.evidence) {
			t.Errorf("%s: evidence object %s is not in the store", name, d.evidence)
		}
		evidence[d.evidence] = true
	}
	// Bcc recipients are kept in the index, so the message is found under
	// their custodian folders too.
	for _, a := range []string{"dave@contoso.com", "henry@contoso.com", "frank@contoso.com"} {
		if n := queryInt(t, db, `SELECT COUNT(*) FROM custodians WHERE addr = ? AND message = ?`, a, first); n != 1 {
			t.Errorf("custodian %s: %d rows for message %d, want 1", a, n, first)
		}
	}
	for _, a := range []string{"sales@contoso.com", "carol@fabrikam.example", "journal@archive.example"} {
		if n := queryInt(t, db, `SELECT COUNT(*) FROM custodians WHERE addr = ? AND message = ?`, a, first); n != 0 {
			t.Errorf("%s is a custodian (an expanded list, an outside domain or the archive's own address must not be)", a)
		}
	}

	m := readDelivery(t, in, seqs["malformed-no-attachment"])
	if m.source != ingest.SourceJournal || m.env.Meta["journal_malformed"] == "" || m.evidence != "" {
		t.Errorf("malformed report: source %q meta %v evidence %q; want journal, flagged journal_malformed, no separate evidence", m.source, m.env.Meta, m.evidence)
	}

	in.stop()
	summary := in.verify()
	if !strings.Contains(summary, "2 messages, 4 deliveries") {
		t.Errorf("verify: %s", summary)
	}
	t.Log(summary)
}
