package retention

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// setHeader replaces the first field named name in a generated message.
func setHeader(raw []byte, name, value string) []byte {
	re := regexp.MustCompile(`(?mi)^` + name + `:.*\n([ \t].*\n)*`)
	loc := re.FindIndex(raw)
	if loc == nil {
		return append([]byte(name+": "+value+"\n"), raw...)
	}
	return append(append(append([]byte{}, raw[:loc[0]]...), []byte(name+": "+value+"\n")...), raw[loc[1]:]...)
}

func erasePolicy() Policy {
	return Policy{
		Rules: []Rule{
			{Name: "newsletters", Keep: mustPeriod("2y"), From: FromDate, Erasable: true, Match: Match{Domains: []string{"news.example"}}},
		},
		Default: Rule{Name: "records-7y", Keep: mustPeriod("7y"), From: FromDate, Basis: "SEC 17a-4"},
	}
}

// TestErasure: a subject's mail is erased except what a hold or a running
// obligation keeps; kept mail is erased by a later run once nothing keeps
// it; afterwards nothing in the data folder or the store can produce an
// erased message or confirm its hash.
func TestErasure(t *testing.T) {
	h := newHarness(t, erasePolicy(), nil)
	ctx := context.Background()
	g := gen.New(77)
	const subject = "bob.jones@ext.example"
	old, recent := "Thu, 01 Jan 2015 10:00:00 +0000", "Mon, 01 Sep 2025 10:00:00 +0000"
	type m struct {
		gen.Message
		seq uint64
	}
	mk := func(date string, edit func([]byte) []byte, env *ingest.Envelope) m {
		x := g.Next(5000)
		x.Raw = setHeader(x.Raw, "Date", date)
		x.Subject = "Unique subject " + x.Token[:10] + "zz"
		x.Raw = setHeader(x.Raw, "Subject", x.Subject)
		if edit != nil {
			x.Raw = edit(x.Raw)
		}
		return m{x, h.archive(x.Raw, env)}
	}
	fromBob := func(b []byte) []byte { return setHeader(b, "From", "Bob Jones <Bob.Jones@ext.example>") }
	toBob := func(b []byte) []byte { return setHeader(b, "To", "bob.jones@ext.example, amy@corp.example") }
	plain := func(custodian string) *ingest.Envelope {
		return envelope("", "someone@corp.example", []string{custodian})
	}
	m1 := mk(old, fromBob, plain("amy@corp.example"))                                        // expired: erased
	m2 := mk(recent, toBob, plain("amy@corp.example"))                                       // obligation: kept
	m3 := mk(recent, nil, envelope("", "digest@news.example", []string{"list@corp.example"}, // erasable rule, Bcc: erased
		ingest.Recipient{Address: "list@corp.example", Kind: ingest.KindTo}, ingest.Recipient{Address: subject, Kind: ingest.KindBcc}))
	m4 := mk("Fri, 02 Jan 2015 10:00:00 +0000", nil, plain(subject))                                                        // held: kept
	m5 := mk(old, nil, plain("carol@corp.example"))                                                                         // not the subject's
	m6 := mk(old, nil, envelope("", "Bob.Jones@ext.example", []string{"amy@corp.example"}))                                 // envelope sender: erased
	m7 := mk(old, func(b []byte) []byte { return setHeader(b, "To", "xbob.jones@ext.example") }, plain("amy@corp.example")) // another address
	// The words are in the full-text index before the erasure (it fills
	// in the background): erasure must take them out of it, from every
	// FTS4 segment.
	if err := h.st.FlushSearch(ctx); err != nil {
		t.Fatal(err)
	}
	// The search below does find a live message's traces, its blind
	// search tokens included.
	found := false
	walkFiles(h.dir, func(p string, b []byte) {
		found = found || bytes.Contains(b, []byte(archive.BlindToken(h.ring.SearchKey(), strings.ToLower(m1.Token))))
	})
	if !found {
		t.Fatal("a live message's blind token is nowhere: the trace search below would prove nothing")
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{subject}}); err != nil {
		t.Fatal(err)
	}
	// m4 is also held through C-1 only because bob is its custodian.
	h.clock.set(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))

	if _, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: subject, Reason: "erasure for bob.jones@ext.example"}); err == nil {
		t.Fatal("a reason holding the address was accepted")
	}
	dry, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: "Bob.Jones@ext.example", Reason: "GDPR request 2026-113", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	erasedSeqs := func(es []Erased) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	keptSeqs := func(ks []Kept) []uint64 {
		var out []uint64
		for _, k := range ks {
			out = append(out, k.Seq)
		}
		return out
	}
	// m1 and m6 are from bob; m4 (bob is its custodian) is held by C-1,
	// which holds m1 and m6 too: bob is their sender.
	if !equalSeqs(erasedSeqs(dry.Erased), []uint64{m3.seq}) || !equalSeqs(keptSeqs(dry.Kept), []uint64{m1.seq, m2.seq, m4.seq, m6.seq}) {
		t.Fatalf("dry run: erased %v kept %v", erasedSeqs(dry.Erased), keptSeqs(dry.Kept))
	}
	for _, k := range dry.Kept {
		switch k.Seq {
		case m2.seq:
			if !strings.Contains(k.Why, "Art. 17(3)(b)") || k.Rule != "records-7y" || !strings.Contains(k.Why, "SEC 17a-4") {
				t.Errorf("m2 kept because %q", k.Why)
			}
		default:
			if !strings.Contains(k.Why, "Art. 17(3)(e)") || k.Hold != "C-1" {
				t.Errorf("%d kept because %q", k.Seq, k.Why)
			}
		}
	}
	if h.state(m3.seq) != "active" {
		t.Fatal("a dry run erased")
	}
	// Narrow the hold to what the case needs: only m4 stays held.
	if _, err := h.m.ReleaseHold(ctx, tester, "C-1", "narrowed"); err != nil {
		t.Fatal(err)
	}
	jan2 := time.Date(2015, 1, 2, 0, 0, 0, 0, time.UTC)
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-2", Reason: "r", From: jan2, To: jan2}); err != nil {
		t.Fatal(err)
	}
	dry, _ = h.m.Erase(ctx, tester, ErasureRequest{Subject: subject, Reason: "GDPR request 2026-113", DryRun: true})
	rep, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: subject, Reason: "GDPR request 2026-113"})
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{m1.seq, m3.seq, m6.seq}
	if !equalSeqs(erasedSeqs(rep.Erased), want) || !equalSeqs(erasedSeqs(dry.Erased), want) || !equalSeqs(keptSeqs(rep.Kept), []uint64{m2.seq, m4.seq}) || len(rep.Failed) != 0 {
		t.Fatalf("erase: erased %v (dry %v) kept %v failed %v", erasedSeqs(rep.Erased), erasedSeqs(dry.Erased), keptSeqs(rep.Kept), rep.Failed)
	}
	for _, e := range rep.Erased {
		if e.Tombstone == 0 || e.How != "key object destroyed, message object deleted" || e.Subject == "" {
			t.Errorf("erased %+v", e)
		}
	}
	for seq, st := range map[uint64]string{m1.seq: "erased", m2.seq: "active", m3.seq: "erased", m4.seq: "active", m5.seq: "active", m6.seq: "erased", m7.seq: "active"} {
		if got := h.state(seq); got != st {
			t.Errorf("message %d %s, want %s", seq, got, st)
		}
	}
	if _, err := h.st.OpenMessage(ctx, m1.seq); !errors.Is(err, archive.ErrUnreadable) {
		t.Fatalf("an erased message opens: %v", err)
	}

	// The hold ends: the next run erases m4 for the request (not m2,
	// whose obligation runs to 2032).
	if _, err := h.m.ReleaseHold(ctx, tester, "C-2", "case closed"); err != nil {
		t.Fatal(err)
	}
	run, err := h.m.Run(ctx, SystemCaller, false)
	if err != nil {
		t.Fatal(err)
	}
	if !equalSeqs(erasedSeqs(run.Erased), []uint64{m4.seq}) || h.state(m4.seq) != "erased" || h.state(m2.seq) != "active" {
		t.Fatalf("deferred erasure: %v", erasedSeqs(run.Erased))
	}
	// m5 and m7 expired too (2015 + 7y) and nothing holds them: disposed.
	if !equalSeqs(seqsOf(run.Disposed), []uint64{m5.seq, m7.seq}) {
		t.Fatalf("disposed %v", seqsOf(run.Disposed))
	}
	// m2's obligation ends in 2032: erased then, as the request asked.
	h.clock.set(time.Date(2032, 9, 2, 0, 0, 0, 0, time.UTC))
	run, err = h.m.Run(ctx, SystemCaller, false)
	if err != nil || !equalSeqs(erasedSeqs(run.Erased), []uint64{m2.seq}) || len(run.Disposed) != 0 {
		t.Fatalf("after the obligation: %+v %v", run, err)
	}

	vrep, err := h.st.Verify(ctx, archive.VerifyOptions{Full: true})
	if err != nil || !vrep.OK() || len(vrep.Disposed) != 7 {
		t.Fatalf("verify --full: %v %+v", err, vrep)
	}
	for _, d := range vrep.Disposed {
		if !strings.Contains(d.Detail, "erased (GDPR request 2026-113)") && !strings.Contains(d.Detail, "disposed (records-7y)") {
			t.Errorf("verify: %s", d)
		}
	}
	// The address is in no message, envelope or custodian row. (It stays
	// in the record of hold C-1, which named bob as a custodian: a legal
	// record kept under Art. 17(3)(e).)
	var n int
	h.st.Index().DB().QueryRow(`SELECT (SELECT COUNT(*) FROM recipients WHERE addr = ?1) + (SELECT COUNT(*) FROM custodians WHERE addr = ?1)
		+ (SELECT COUNT(*) FROM deliveries WHERE lower(sender) = ?1 OR instr(lower(envelope), ?1) > 0)
		+ (SELECT COUNT(*) FROM messages WHERE instr(lower(from_addr || to_addrs || cc_addrs || CAST(header AS TEXT)), ?1) > 0)`, subject).Scan(&n)
	if n != 0 {
		t.Fatalf("the index still holds the address in %d rows", n)
	}
	// Nothing anywhere under the data folder or in the store (h.dir holds
	// both) produces an erased message or confirms its hash.
	h.close()
	erased := []m{m1, m2, m3, m4, m5, m6, m7} // m5 and m7 disposed
	walkFiles(h.dir, func(p string, b []byte) {
		lb := bytes.ToLower(b)
		for _, x := range erased {
			sum := sha256.Sum256(x.Raw)
			for _, needle := range [][]byte{[]byte(strings.ToLower(x.Token)), []byte(strings.ToLower(x.Subject)), []byte(strings.ToLower(x.MessageID)),
				[]byte(hex.EncodeToString(sum[:])), sum[:], []byte(archive.BlindToken(h.ring.SearchKey(), strings.ToLower(x.Token)))} {
				if bytes.Contains(lb, bytes.ToLower(needle)) {
					t.Errorf("%s holds a trace of erased message %d (%q)", p, x.seq, needle)
				}
			}
		}
	})
}
