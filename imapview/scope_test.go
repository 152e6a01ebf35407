package imapview

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// TestScopes: an account scoped to a custodian or a domain sees only those
// messages, in INBOX and in the folders it can list and select.
func TestScopes(t *testing.T) {
	f := newFixture(t, fixtureOpts{corpus: true, generated: 4})
	pwA := f.a.User(t, "scoped-a", "auditor", "custodian:"+custA)
	pwB := f.a.User(t, "scoped-b", "legal", "@example.org")
	pwC := f.a.User(t, "scoped-case", "legal", "case:NONE-1")
	inCust := map[string]int{}
	for _, cust := range []string{custA, custB} {
		c := f.auditor()
		sel, err := c.Select("Custodians/"+cust, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		inCust[cust] = int(sel.NumMessages)
	}
	for _, tt := range []struct {
		user, pw string
		see      string
		hidden   string
	}{{"scoped-a", pwA, custA, custB}, {"scoped-b", pwB, custB, custA}} {
		c := f.client(tt.user, tt.pw)
		list, _ := c.List("", "*", nil).Collect()
		var names []string
		for _, l := range list {
			names = append(names, l.Mailbox)
		}
		if !slices.Contains(names, "Custodians/"+tt.see) || slices.Contains(names, "Custodians/"+tt.hidden) {
			t.Fatalf("%s lists %v", tt.user, names)
		}
		if _, err := c.Select("Custodians/"+tt.hidden, nil).Wait(); imapCode(err) != imap.ResponseCodeNonExistent {
			t.Fatalf("%s selects Custodians/%s: %v", tt.user, tt.hidden, err)
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if int(sel.NumMessages) != inCust[tt.see] {
			t.Fatalf("%s: INBOX has %d, want %d", tt.user, sel.NumMessages, inCust[tt.see])
		}
		all, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil || len(all) != inCust[tt.see] {
			t.Fatalf("%s: fetched %d, %v", tt.user, len(all), err)
		}
		for _, m := range all {
			if string(m.FindBodySection(&imap.FetchItemBodySection{Peek: true})) != string(f.msgs[seqOfUID(m.UID)]) {
				// In a scoped INBOX the UID is the first delivery in scope:
				// here the message's own.
				t.Fatalf("%s: UID %d is not the message it names", tt.user, m.UID)
			}
		}
		sd, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil || len(sd.AllUIDs()) != inCust[tt.see] {
			t.Fatalf("%s: SEARCH ALL: %v %v", tt.user, sd, err)
		}
	}
	// A case-scoped account without a case source sees nothing.
	c := f.client("scoped-case", pwC)
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 0 {
		t.Fatalf("case scope: %+v %v", sel, err)
	}
}

// fakeCases holds case "C-1": every message whose subject contains
// "Re" (any generated reply), numbered by the message itself.
type fakeCases struct{}

func (fakeCases) Cases(context.Context) ([]string, error) { return []string{"C-1"}, nil }
func (fakeCases) Members(_ context.Context, id string) (string, []any, error) {
	return `SELECT seq AS k, seq AS msg FROM messages WHERE subject LIKE ?`, []any{"%Re%"}, nil
}
func (fakeCases) Epoch(context.Context, string) (uint32, error) { return 1, nil }

// growingCase is case "C-1" whose holds change: at first it holds the
// messages from seq from on; a second hold brings in all of them.
type growingCase struct {
	mu    sync.Mutex
	from  uint64
	epoch uint32
}

func (g *growingCase) Cases(context.Context) ([]string, error) { return []string{"C-1"}, nil }
func (g *growingCase) Members(context.Context, string) (string, []any, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return `SELECT seq AS k, seq AS msg FROM messages WHERE seq >= ?`, []any{g.from}, nil
}
func (g *growingCase) Epoch(context.Context, string) (uint32, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.epoch, nil
}

// A case folder's members change with its holds: a hold placed later brings
// in older messages, a release takes some out. Its UIDVALIDITY never
// changes (RFC 9051 §2.3.1.1): newcomers get UIDs above every earlier one,
// whatever their ledger seq, so a client that synced the folder fetches them
// like new mail; leavers are expunged from a session that has the folder
// selected; a UID is never given again, also when a message comes back. The
// same holds for the INBOX of an account scoped to the case.
func TestCaseFolderNumbering(t *testing.T) {
	g := &growingCase{epoch: 1}
	f := newFixture(t, fixtureOpts{generated: 20, opts: func(o *Options) { o.Cases = g }})
	g.from = f.genSeqs[10]
	pw := f.a.User(t, "case-only", "legal", "case:C-1")
	type seen struct {
		uv   uint32
		next imap.UID
		n    uint32
	}
	look := func(c *imapclient.Client, folder string) seen {
		t.Helper()
		st, err := c.Status(folder, &imap.StatusOptions{UIDValidity: true, UIDNext: true, NumMessages: true}).Wait()
		if err != nil {
			t.Fatalf("status %s: %v", folder, err)
		}
		return seen{st.UIDValidity, st.UIDNext, *st.NumMessages}
	}
	// uidsOf maps each UID of the folder to the message's generated index.
	uidsOf := func(c *imapclient.Client, folder string) map[imap.UID]int {
		t.Helper()
		if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Envelope: true}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		out := map[imap.UID]int{}
		for _, m := range msgs {
			i := slices.IndexFunc(f.gen, func(g gen.Message) bool { return m.Envelope.MessageID == g.MessageID })
			if i < 0 {
				t.Fatalf("%s UID %d: Message-ID %q is no generated message", folder, m.UID, m.Envelope.MessageID)
			}
			out[m.UID] = i
		}
		return out
	}
	// A session that keeps Cases/C-1 selected across the changes.
	held := f.client("auditor", f.password)
	if _, err := held.Select("Cases/C-1", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// heldSees checks what the session that keeps Cases/C-1 selected was
	// told when it polled: EXISTS for newcomers, EXPUNGE for leavers.
	heldSees := func(want []imap.UID) {
		t.Helper()
		if err := held.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		sd, err := held.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if got := sd.AllUIDs(); !slices.Equal(got, want) || held.Mailbox().NumMessages != uint32(len(want)) {
			t.Fatalf("the session with Cases/C-1 selected: UID SEARCH ALL %v, %d messages; want %v", got, held.Mailbox().NumMessages, want)
		}
	}
	uidRange := func(lo, hi imap.UID) []imap.UID {
		var out []imap.UID
		for u := lo; u <= hi; u++ {
			out = append(out, u)
		}
		return out
	}
	setHolds := func(from uint64) {
		g.mu.Lock()
		g.from = from
		g.epoch++
		g.mu.Unlock()
	}
	auditor := f.client("auditor", f.password)
	scoped := f.client("case-only", pw)
	// Its Dates/ folders are listed before its INBOX was ever numbered.
	if ls, err := scoped.List("", "Dates/*/*", nil).Collect(); err != nil || len(ls) == 0 {
		t.Fatalf("the case-scoped account's first LIST Dates/*/*: %v %v, want its months", ls, err)
	}
	for _, folder := range []struct {
		c    *imapclient.Client
		name string
	}{{auditor, "Cases/C-1"}, {scoped, "INBOX"}} {
		before := look(folder.c, folder.name)
		if before.n != 10 || before.next != 11 {
			t.Fatalf("%s, first hold: %+v; want 10 messages, UIDNEXT 11", folder.name, before)
		}
		if before.uv == f.srv.UIDValidity() {
			t.Errorf("%s has the archive's UIDVALIDITY %d", folder.name, before.uv)
		}
		first := uidsOf(folder.c, folder.name)
		for uid, i := range first {
			if uid < 1 || uid > 10 || i < 10 {
				t.Fatalf("%s, first hold: UID %d is generated message %d", folder.name, uid, i)
			}
		}

		// A second hold brings in the ten older messages: UIDs 11-20.
		setHolds(0)
		after := look(folder.c, folder.name)
		if after.uv != before.uv || after.n != 20 || after.next != 21 {
			t.Fatalf("%s, second hold: %+v, before %+v; want the same UIDVALIDITY, 20 messages, UIDNEXT 21", folder.name, after, before)
		}
		both := uidsOf(folder.c, folder.name)
		for uid, i := range first {
			if both[uid] != i {
				t.Fatalf("%s: UID %d was message %d, is %d", folder.name, uid, i, both[uid])
			}
		}
		for uid := imap.UID(11); uid <= 20; uid++ {
			if i, ok := both[uid]; !ok || i >= 10 {
				t.Fatalf("%s, second hold: UID %d is message %d (%v), want an older one", folder.name, uid, i, ok)
			}
		}
		if folder.name == "Cases/C-1" {
			heldSees(uidRange(1, 20))
		}

		// The second hold is released: the older ones leave.
		setHolds(f.genSeqs[10])
		if st := look(folder.c, folder.name); st.uv != before.uv || st.n != 10 || st.next != 21 {
			t.Fatalf("%s, after the release: %+v; want the same UIDVALIDITY, 10 messages, UIDNEXT 21", folder.name, st)
		}
		if folder.name == "Cases/C-1" {
			heldSees(uidRange(1, 10))
		}
		// And come back: with new UIDs, never the ones they had.
		setHolds(0)
		again := uidsOf(folder.c, folder.name)
		if st := look(folder.c, folder.name); st.uv != before.uv || st.n != 20 || st.next != 31 {
			t.Fatalf("%s, back again: %+v; want the same UIDVALIDITY, 20 messages, UIDNEXT 31", folder.name, st)
		}
		for uid := imap.UID(11); uid <= 20; uid++ {
			if _, ok := again[uid]; ok {
				t.Fatalf("%s: UID %d given again", folder.name, uid)
			}
		}
		if folder.name == "Cases/C-1" {
			heldSees(append(uidRange(1, 10), uidRange(21, 30)...))
		}
		// Back to the first hold for the next folder.
		setHolds(f.genSeqs[10])
		if folder.name == "Cases/C-1" {
			heldSees(uidRange(1, 10))
		}
	}
}

func TestCases(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 20, opts: func(o *Options) { o.Cases = fakeCases{} }})
	want := 0
	for _, m := range f.gen {
		if strings.Contains(strings.ToLower(m.Subject), "re") { // LIKE is case-insensitive
			want++
		}
	}
	pw := f.a.User(t, "case-only", "legal", "case:C-1")
	for _, u := range []struct{ name, pw, folder string }{{"auditor", f.password, "Cases/C-1"}, {"case-only", pw, "INBOX"}, {"case-only", pw, "Cases/C-1"}} {
		c := f.client(u.name, u.pw)
		sel, err := c.Select(u.folder, nil).Wait()
		if err != nil || int(sel.NumMessages) != want {
			t.Fatalf("%s %s: %+v %v, want %d", u.name, u.folder, sel, err, want)
		}
	}
}
