package imapview

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// dispose disposes of messages as a retention run does (archive.Store.
// Dispose: a tombstone entry, the index rows wiped, the objects deleted).
func (f *fixture) dispose(seqs ...uint64) {
	f.t.Helper()
	for _, seq := range seqs {
		if _, err := f.a.Store.Dispose(context.Background(), seq, ledger.KindDispose, map[string]string{"policy": "test"}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// TestIdleSeesNewMessage: a message archived while a client idles shows up
// as EXISTS, in INBOX and in its custodian's folder.
func TestIdleSeesNewMessage(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 3})
	for _, folder := range []string{"INBOX", "Custodians/" + custA} {
		exists := make(chan uint32, 10)
		c, err := imapclient.DialInsecure(f.addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Login("auditor", f.password).Wait(); err != nil {
			t.Fatal(err)
		}
		sel, err := c.Select(folder, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		idle, err := c.Idle()
		if err != nil {
			t.Fatal(err)
		}
		m := gen.New(99).Next(3000)
		m.Raw = append([]byte(fmt.Sprintf("X-Test: %s\r\n", folder)), m.Raw...)
		seq := f.a.Add(t, m.Raw, zeroTime, custA)
		select {
		case n := <-exists:
			if n != sel.NumMessages+1 {
				t.Fatalf("%s: EXISTS %d, want %d", folder, n, sel.NumMessages+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no EXISTS within 10 s of archiving", folder)
		}
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatal(err)
		}
		got, err := c.Fetch(imap.UIDSetNum(imap.UID(seq+1)), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil || len(got) != 1 || got[0].SeqNum != sel.NumMessages+1 {
			t.Fatalf("%s: new message: %v %v", folder, got, err)
		}
		if uint64(got[0].UID) < uint64(sel.UIDNext) {
			t.Fatalf("%s: new UID %d below the old UIDNEXT %d", folder, got[0].UID, sel.UIDNext)
		}
	}
}

// TestLateCustodian: the same bytes delivered to a second custodian later
// join that custodian's folder with a UID above its UIDNEXT (so clients
// that sync by UIDNEXT, like mbsync, see it).
func TestLateCustodian(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 3})
	c := f.auditor()
	sel, err := c.Select("Custodians/"+custA, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Message 0 (custodian A) is now delivered to B as well; B's folder
	// exists through another message.
	f.a.Add(t, gen.New(5).Next(3000).Raw, zeroTime, custB)
	selB, err := c.Select("Custodians/"+custB, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	f.a.Add(t, f.gen[0].Raw, zeroTime, custB)
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Fetch(imap.UIDSet{{Start: selB.UIDNext, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(res) != 1 || string(res[0].FindBodySection(&imap.FetchItemBodySection{Peek: true})) != string(f.gen[0].Raw) {
		t.Fatalf("late message in Custodians/%s: %+v %v", custB, res, err)
	}
	// In A's folder it keeps its UID, and A's folder did not grow.
	selA, _ := c.Select("Custodians/"+custA, nil).Wait()
	if selA.NumMessages != sel.NumMessages || selA.UIDNext != sel.UIDNext {
		t.Fatalf("Custodians/%s changed: %+v -> %+v", custA, sel, selA)
	}
}

// TestDisposedExpunged: a disposed message disappears with EXPUNGE, during
// IDLE and at the next command; sequence numbers stay right.
func TestDisposedExpunged(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 8})
	// dial logs in a client that reports the EXPUNGEs it is told of.
	dial := func() (*imapclient.Client, chan uint32) {
		expunged := make(chan uint32, 10)
		c, err := imapclient.DialInsecure(f.addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Expunge: func(seq uint32) { expunged <- seq },
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Login("auditor", f.password).Wait()
		return c, expunged
	}
	c, expunged := dial()
	c2, expunged2 := dial()
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	c2.Select("INBOX", nil).Wait()
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	// Dispose of messages 3 and 6 (sequence numbers 3 and 6).
	f.dispose(f.genSeqs[2], f.genSeqs[5])
	var got []uint32
	for len(got) < 2 {
		select {
		case n := <-expunged:
			got = append(got, n)
		case <-time.After(10 * time.Second):
			t.Fatalf("EXPUNGEs so far: %v", got)
		}
	}
	// The two disposals are two ledger entries: seen in one poll, the
	// highest first (each number is right when it arrives); in two, 3
	// then 5 (message 6 moved up).
	if g := fmt.Sprint(got); g != "[6 3]" && g != "[3 5]" {
		t.Fatalf("EXPUNGE %v, want [6 3] or [3 5]", got)
	}
	idle.Close()
	idle.Wait()
	all, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(all) != int(sel.NumMessages)-2 {
		t.Fatalf("after EXPUNGE: %d messages, %v", len(all), err)
	}
	for _, m := range all {
		if uint64(m.UID)-1 == f.genSeqs[2] || uint64(m.UID)-1 == f.genSeqs[5] {
			t.Fatalf("disposed message %d still listed", m.UID)
		}
	}
	// The second session had not been told: a FETCH (which may not
	// expunge) still numbers as before, a disposed message yields no
	// data, and NOOP then reports the EXPUNGEs.
	res, err := c2.Fetch(imap.SeqSetNum(3, 4), &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(res) != 2 || res[1].UID != imap.UID(f.genSeqs[3]+1) {
		t.Fatalf("FETCH before EXPUNGE: %+v %v", res, err)
	}
	if _, err := c2.Fetch(imap.SeqSetNum(3), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect(); err == nil || !strings.Contains(err.Error(), "EXPUNGEISSUED") {
		t.Fatalf("body of a disposed message: %v", err)
	}
	if err := c2.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if m := c2.Mailbox(); m == nil || m.NumMessages != sel.NumMessages-2 {
		t.Fatalf("second session after NOOP: %+v", m)
	}
	// Told both at once, highest first.
	var got2 []uint32
	for len(got2) < 2 {
		select {
		case n := <-expunged2:
			got2 = append(got2, n)
		case <-time.After(time.Second):
			t.Fatalf("second session's EXPUNGEs: %v", got2)
		}
	}
	if fmt.Sprint(got2) != "[6 3]" {
		t.Fatalf("second session: EXPUNGE %v, want [6 3]", got2)
	}
}
