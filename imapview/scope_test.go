package imapview

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
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

// A hold that brings older messages into a case gives them UIDs below the
// folder's UIDNEXT: the folder's UIDVALIDITY must then grow (RFC 9051
// §2.3.1.1), or a client that synced the folder before never fetches them.
// A session that has the folder selected keeps its picture.
func TestCaseUIDValidityGrowsWithHolds(t *testing.T) {
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
		sel, err := c.Select(folder, nil).Wait()
		if err != nil {
			t.Fatalf("select %s: %v", folder, err)
		}
		st, err := c.Status(folder, &imap.StatusOptions{UIDValidity: true, UIDNext: true}).Wait()
		if err != nil || st.UIDValidity != sel.UIDValidity || st.UIDNext != sel.UIDNext {
			t.Fatalf("status %s: %+v %v, select said %+v", folder, st, err, sel)
		}
		return seen{sel.UIDValidity, sel.UIDNext, sel.NumMessages}
	}
	auditor := f.client("auditor", f.password)
	scoped := f.client("case-only", pw)
	before := look(auditor, "Cases/C-1")
	beforeInbox := look(scoped, "INBOX")
	if before.n != 10 || beforeInbox.n != 10 {
		t.Fatalf("first hold: Cases/C-1 %+v, scoped INBOX %+v; want 10 messages", before, beforeInbox)
	}
	if before.uv == f.srv.UIDValidity() {
		t.Errorf("Cases/C-1 has the archive's UIDVALIDITY %d", before.uv)
	}
	if in := look(auditor, "INBOX"); in.uv != f.srv.UIDValidity() {
		t.Errorf("the auditor's INBOX UIDVALIDITY %d, want the archive's %d", in.uv, f.srv.UIDValidity())
	}
	// A third session keeps Cases/C-1 selected across the change.
	held := f.client("auditor", f.password)
	if _, err := held.Select("Cases/C-1", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	g.mu.Lock()
	g.from, g.epoch = 0, 2
	g.mu.Unlock()

	after := look(auditor, "Cases/C-1")
	afterInbox := look(scoped, "INBOX")
	if after.n != 20 || afterInbox.n != 20 {
		t.Fatalf("second hold: Cases/C-1 %+v, scoped INBOX %+v; want 20 messages", after, afterInbox)
	}
	if after.uv <= before.uv || afterInbox.uv <= beforeInbox.uv {
		t.Errorf("UIDVALIDITY did not grow with a hold that brought in UIDs below UIDNEXT: Cases/C-1 %d -> %d, scoped INBOX %d -> %d",
			before.uv, after.uv, beforeInbox.uv, afterInbox.uv)
	}
	if after.next != before.next {
		t.Errorf("UIDNEXT %d -> %d although no message was archived", before.next, after.next)
	}
	// The session that kept the folder selected sees its picture: the ten
	// messages it knew (the older ones would break UID order there).
	sd, err := held.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
	if err != nil || len(sd.AllUIDs()) != 10 {
		t.Errorf("the session selected across the change: SEARCH ALL %v %v, want its 10 messages", sd, err)
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
