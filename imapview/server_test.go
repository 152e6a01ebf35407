package imapview

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/cairn-archive/cairn/audit"
)

func imapCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestLoginListSelect(t *testing.T) {
	f := newFixture(t, fixtureOpts{corpus: true, generated: 6})
	// A wrong password and an unknown user get the same answer.
	for _, u := range []string{"auditor", "nobody"} {
		c, err := imapclient.DialInsecure(f.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Login(u, "wrong password").Wait()
		if imapCode(err) != imap.ResponseCodeAuthenticationFailed {
			t.Errorf("%s: %v, want AUTHENTICATIONFAILED", u, err)
		}
		c.Close()
	}
	if n := len(f.a.Audit.Events(audit.ActionLoginFailure)); n != 2 {
		t.Errorf("%d auth.failure events, want 2", n)
	}
	c := f.auditor()
	if n := len(f.a.Audit.Events(audit.ActionLogin)); n != 1 {
		t.Errorf("%d auth.login events, want 1", n)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Mailbox)
	}
	for _, want := range []string{"INBOX", "Custodians", "Custodians/" + custA, "Custodians/" + custB, "Dates", "Dates/2024", "Dates/2024/03", "Dates/2024/04", "Dates/2024/05", "Cases"} {
		if !slices.Contains(names, want) {
			t.Errorf("LIST lacks %s: %v", want, names)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if int(sel.NumMessages) != len(f.msgs) {
		t.Fatalf("INBOX has %d messages, want %d", sel.NumMessages, len(f.msgs))
	}
	if sel.UIDValidity != f.srv.UIDValidity() || sel.UIDValidity == 0 {
		t.Fatalf("UIDVALIDITY %d", sel.UIDValidity)
	}
	var maxSeq uint64
	for s := range f.msgs {
		maxSeq = max(maxSeq, s)
	}
	if uint64(sel.UIDNext) != maxSeq+2 {
		t.Fatalf("UIDNEXT %d, want %d", sel.UIDNext, maxSeq+2)
	}
	st, err := c.Status("Custodians/"+custB, &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true, Size: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	wantB := 0
	for i := range corpus(t) {
		if i%3 == 0 {
			wantB++
		}
	}
	if int(*st.NumMessages) != wantB || int(*st.NumUnseen) != wantB || *st.Size <= 0 {
		t.Fatalf("STATUS %+v, want %d messages", st, wantB)
	}
	if _, err := c.Select("Custodians", nil).Wait(); imapCode(err) != imap.ResponseCodeCannot {
		t.Errorf("SELECT Custodians: %v", err)
	}
	if _, err := c.Select("Trash", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("SELECT Trash: %v", err)
	}
	if _, err := c.Select("Custodians/nobody@example.com", nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
		t.Errorf("SELECT unknown custodian: %v", err)
	}
	if n := len(f.a.Audit.Events(audit.ActionSelect)); n != 1 {
		t.Errorf("%d mailbox.select events, want 1", n)
	}
}

// TestFetchBodies: every message comes back byte for byte, and every
// section form agrees with go-imap's own reference extraction (which
// parses the message again) for well-formed mail.
func TestFetchBodies(t *testing.T) {
	f := newFixture(t, fixtureOpts{corpus: true, generated: 10})
	c := f.auditor()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	all, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, Flags: true, InternalDate: true, RFC822Size: true, Envelope: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(f.msgs) {
		t.Fatalf("fetched %d, want %d", len(all), len(f.msgs))
	}
	for i, m := range all {
		want := f.msgs[seqOfUID(m.UID)]
		got := m.FindBodySection(&imap.FetchItemBodySection{})
		if !bytes.Equal(got, want) {
			t.Errorf("UID %d: body differs (%d bytes, want %d)", m.UID, len(got), len(want))
		}
		if m.RFC822Size != int64(len(want)) {
			t.Errorf("UID %d: RFC822.SIZE %d, want %d", m.UID, m.RFC822Size, len(want))
		}
		if m.SeqNum != uint32(i+1) {
			t.Errorf("UID %d: seq %d, want %d", m.UID, m.SeqNum, i+1)
		}
		if m.Envelope == nil || m.BodyStructure == nil || m.InternalDate.IsZero() {
			t.Errorf("UID %d: missing envelope, structure or date", m.UID)
		}
	}
	// Sections of the generated (well-formed) messages against go-imap's
	// reference implementation.
	sections := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader, Peek: true},
		{Specifier: imap.PartSpecifierText, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject", "FROM", "x-nothing"}, Peek: true},
		{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Received", "DKIM-Signature"}, Peek: true},
		{Part: []int{1}, Peek: true},
		{Part: []int{1, 1}, Peek: true},
		{Part: []int{1, 2}, Peek: true},
		{Part: []int{2}, Peek: true},
		{Part: []int{1}, Specifier: imap.PartSpecifierMIME, Peek: true},
		{Part: []int{2}, Specifier: imap.PartSpecifierMIME, Peek: true},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: 100}},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 1000, Size: 500}},
		{Peek: true, Partial: &imap.SectionPartial{Offset: 1 << 30, Size: 10}},
		{Part: []int{1}, Peek: true, Partial: &imap.SectionPartial{Offset: 10, Size: 20}},
		{Part: []int{9, 9}, Peek: true},
	}
	for i, seq := range f.genSeqs {
		res, err := c.Fetch(imap.UIDSetNum(imap.UID(seq+1)), &imap.FetchOptions{BodySection: sections}).Collect()
		if err != nil || len(res) != 1 {
			t.Fatalf("message %d: %v", i, err)
		}
		for _, sec := range sections {
			want := imapserver.ExtractBodySection(bytes.NewReader(f.msgs[seq]), sec)
			got := res[0].FindBodySection(sec)
			if len(got) == 0 && len(sec.Part) == 2 {
				// go-imap's reference reads part n.1 of a leaf part n as the
				// part itself; RFC 9051 §6.4.5 gives a leaf no subparts, and
				// the view (like Dovecot) answers the empty string.
				parent := &imap.FetchItemBodySection{Part: sec.Part[:1], Specifier: sec.Specifier}
				if bytes.Equal(want, imapserver.ExtractBodySection(bytes.NewReader(f.msgs[seq]), parent)) {
					continue
				}
			}
			if !bytes.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("message %d %s: got %d bytes %.60q, want %d bytes %.60q", i, sectionName(sec), len(got), got, len(want), want)
			}
		}
	}
	// BINARY of an attachment: the decoded bytes.
	for i, seq := range f.genSeqs {
		if f.gen[i].Attachments == 0 {
			continue
		}
		sec := &imap.FetchItemBinarySection{Part: []int{2}, Peek: true}
		res, err := c.Fetch(imap.UIDSetNum(imap.UID(seq+1)), &imap.FetchOptions{BinarySection: []*imap.FetchItemBinarySection{sec},
			BinarySectionSize: []*imap.FetchItemBinarySectionSize{{Part: []int{2}}}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		want := imapserver.ExtractBinarySection(bytes.NewReader(f.msgs[seq]), sec)
		got := res[0].FindBinarySection(sec)
		if !bytes.Equal(got, want) || len(want) == 0 {
			t.Errorf("BINARY[2] of message %d: %d bytes, want %d", i, len(got), len(want))
		}
		if sz, ok := res[0].FindBinarySectionSize([]int{2}); !ok || int(sz) != len(want) {
			t.Errorf("BINARY.SIZE[2] of message %d: %d, want %d", i, sz, len(want))
		}
	}
	// EXAMINE: nothing set \Seen.
	res, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res {
		if len(m.Flags) != 0 {
			t.Fatalf("under EXAMINE, FETCH BODY[] set flags %v", m.Flags)
		}
	}
	if ev := f.a.Audit.Events(audit.ActionFetch); len(ev) == 0 || ev[0].Target.Folder != "INBOX" || ev[0].Target.UIDs == "" || len(ev[0].Details.Parts) == 0 {
		t.Fatalf("fetch audit events: %+v", ev)
	}
	if n := len(f.a.Audit.Events(audit.ActionFlag)); n != 0 {
		t.Fatalf("%d flag events under EXAMINE", n)
	}
}

// TestSeqNumbers: FETCH by sequence number, with * and ranges, in every
// folder, agrees with UID order.
func TestSeqNumbers(t *testing.T) {
	f := newFixture(t, fixtureOpts{corpus: true, generated: 4})
	c := f.auditor()
	for _, folder := range []string{"INBOX", "Custodians/" + custA, "Custodians/" + custB, "Dates/2024/03"} {
		sel, err := c.Select(folder, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		all, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != int(sel.NumMessages) || len(all) == 0 {
			t.Fatalf("%s: %d of %d", folder, len(all), sel.NumMessages)
		}
		for i := 1; i < len(all); i++ {
			if all[i].UID <= all[i-1].UID || all[i].SeqNum != uint32(i+1) {
				t.Fatalf("%s: order broken at %d", folder, i)
			}
		}
		n := uint32(len(all))
		mid := n/2 + 1
		some, err := c.Fetch(imap.SeqSet{{Start: mid, Stop: mid}, {Start: 0, Stop: 0}, {Start: 1, Stop: 2}}, &imap.FetchOptions{UID: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range some {
			if m.UID != all[m.SeqNum-1].UID {
				t.Fatalf("%s: seq %d is UID %d, want %d", folder, m.SeqNum, m.UID, all[m.SeqNum-1].UID)
			}
		}
		// UID n:* past the end is the last message (RFC 9051 §6.4.8);
		// go-imap's client drops that answer, so ask on a raw connection.
		r := f.raw()
		r.login("auditor", f.password)
		r.send(fmt.Sprintf("S SELECT %q\r\nF UID FETCH %d:* (FLAGS)\r\n", folder, all[n-1].UID+1000))
		r.until("S OK")
		got := r.until("F ")
		if want := fmt.Sprintf("* %d FETCH (UID %d FLAGS ())", n, all[n-1].UID); !strings.Contains(got, want) || !containsLine(got, "F OK") {
			t.Fatalf("%s: UID FETCH n:*: %q, want %q", folder, got, want)
		}
	}
}

func TestStreamedBodyIsExact(t *testing.T) {
	// A large message spans several payload frames; partials across frame
	// boundaries must be exact.
	f := newFixture(t, fixtureOpts{})
	var b bytes.Buffer
	b.WriteString("From: a@example.com\r\nTo: b@example.com\r\nSubject: big\r\n\r\n")
	for i := 0; b.Len() < 700<<10; i++ {
		b.WriteString(strings.Repeat(string(rune('a'+i%26)), 77) + "\r\n")
	}
	seq := f.a.Add(t, b.Bytes(), zeroTime, custA)
	c := f.auditor()
	c.Select("INBOX", nil).Wait()
	for _, p := range []*imap.SectionPartial{nil, {Offset: 262144 - 10, Size: 20}, {Offset: 262140, Size: 300000}, {Offset: 1, Size: 1 << 40}} {
		sec := &imap.FetchItemBodySection{Peek: true, Partial: p}
		res, err := c.Fetch(imap.UIDSetNum(imap.UID(seq+1)), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		want := imapserver.ExtractBodySection(bytes.NewReader(b.Bytes()), sec)
		if got := res[0].FindBodySection(sec); !bytes.Equal(got, want) {
			t.Fatalf("partial %+v: %d bytes, want %d", p, len(got), len(want))
		}
	}
	_ = io.EOF
}
