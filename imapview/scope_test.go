package imapview

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
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
