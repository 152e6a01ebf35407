package imapview

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/archive/message"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// TestSearchKeys checks each RFC 9051 search key against an answer
// computed from the generator's facts about each message.
func TestSearchKeys(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 30})
	c := f.auditor()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	uid := func(i int) imap.UID { return imap.UID(f.genSeqs[i] + 1) }
	where := func(pred func(i int, m gen.Message) bool) []imap.UID {
		var out []imap.UID
		for i, m := range f.gen {
			if pred(i, m) {
				out = append(out, uid(i))
			}
		}
		return out
	}
	received := func(i int) time.Time {
		base := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
		return base.AddDate(0, i%2+1, 0).Add(time.Duration(i) * time.Minute)
	}
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	m3 := f.gen[3]
	subjWord := strings.Fields(m3.Subject)[len(strings.Fields(m3.Subject))-1]
	size := func(i int) int64 { return int64(len(f.gen[i].Raw)) }
	midSize := size(10)
	// Flags for the flag keys.
	if _, err := c.Store(imap.UIDSetNum(uid(1), uid(2)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(uid(2)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Responsive"}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	sentOn := day(f.gen[5].Date.UTC())
	tests := []struct {
		name string
		c    imap.SearchCriteria
		want []imap.UID
	}{
		{"ALL", imap.SearchCriteria{}, where(func(int, gen.Message) bool { return true })},
		{"FROM", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: strings.ToUpper(m3.From)}}},
			where(func(_ int, m gen.Message) bool { return m.From == m3.From })},
		{"TO", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "To", Value: m3.To[0]}}},
			where(func(_ int, m gen.Message) bool { return slices.Contains(m.To, m3.To[0]) })},
		{"SUBJECT", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: subjWord}}},
			where(func(_ int, m gen.Message) bool {
				return strings.Contains(strings.ToLower(m.Subject), strings.ToLower(subjWord))
			})},
		{"HEADER Message-ID", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: m3.MessageID}}}, []imap.UID{uid(3)}},
		{"HEADER Message-ID substring", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "message-id", Value: strings.Trim(m3.MessageID, "<>")[1:]}}}, []imap.UID{uid(3)}},
		{"NOT HEADER Message-ID", imap.SearchCriteria{Not: []imap.SearchCriteria{{Header: []imap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: m3.MessageID}}}}}, where(func(i int, _ gen.Message) bool { return i != 3 })},
		{"HEADER X-Mailer exists", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-Mailer", Value: ""}}}, where(func(int, gen.Message) bool { return true })},
		{"HEADER absent field", imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "X-No-Such-Field", Value: ""}}}, nil},
		{"BODY token", imap.SearchCriteria{Body: []string{f.gen[7].Token}}, []imap.UID{uid(7)}},
		{"BODY two tokens", imap.SearchCriteria{Body: []string{f.gen[7].Token, f.gen[8].Token}}, nil},
		{"TEXT token", imap.SearchCriteria{Text: []string{strings.ToUpper(f.gen[9].Token)}}, []imap.UID{uid(9)}},
		{"TEXT address", imap.SearchCriteria{Text: []string{m3.From}}, where(func(_ int, m gen.Message) bool {
			return m.From == m3.From || slices.Contains(m.To, m3.From) || slices.Contains(m.Cc, m3.From)
		})},
		{"OR BODY", imap.SearchCriteria{Or: [][2]imap.SearchCriteria{{{Body: []string{f.gen[1].Token}}, {Body: []string{f.gen[2].Token}}}}}, []imap.UID{uid(1), uid(2)}},
		{"NOT BODY", imap.SearchCriteria{Not: []imap.SearchCriteria{{Body: []string{f.gen[1].Token}}}}, where(func(i int, _ gen.Message) bool { return i != 1 })},
		{"SINCE", imap.SearchCriteria{Since: day(received(1))}, where(func(i int, _ gen.Message) bool { return !received(i).Before(day(received(1))) })},
		{"BEFORE", imap.SearchCriteria{Before: day(received(1))}, where(func(i int, _ gen.Message) bool { return received(i).Before(day(received(1))) })},
		{"ON", imap.SearchCriteria{Since: day(received(0)), Before: day(received(0)).Add(24 * time.Hour)}, where(func(i int, _ gen.Message) bool { return day(received(i)).Equal(day(received(0))) })},
		{"SENTON", imap.SearchCriteria{SentSince: sentOn, SentBefore: sentOn.Add(24 * time.Hour)}, where(func(_ int, m gen.Message) bool { return day(m.Date.UTC()).Equal(sentOn) })},
		{"SENTSINCE", imap.SearchCriteria{SentSince: sentOn}, where(func(_ int, m gen.Message) bool { return !day(m.Date.UTC()).Before(sentOn) })},
		{"SENTBEFORE", imap.SearchCriteria{SentBefore: sentOn}, where(func(_ int, m gen.Message) bool { return day(m.Date.UTC()).Before(sentOn) })},
		{"LARGER", imap.SearchCriteria{Larger: midSize}, where(func(i int, _ gen.Message) bool { return size(i) > midSize })},
		{"SMALLER", imap.SearchCriteria{Smaller: midSize}, where(func(i int, _ gen.Message) bool { return size(i) < midSize })},
		{"UID", imap.SearchCriteria{UID: []imap.UIDSet{{{Start: uid(4), Stop: uid(6)}}}}, []imap.UID{uid(4), uid(5), uid(6)}},
		{"seq set", imap.SearchCriteria{SeqNum: []imap.SeqSet{{{Start: 2, Stop: 3}, {Start: 0, Stop: 0}}}}, []imap.UID{uid(1), uid(2), uid(29)}},
		{"SEEN", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, []imap.UID{uid(1), uid(2)}},
		{"UNSEEN", imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, where(func(i int, _ gen.Message) bool { return i != 1 && i != 2 })},
		{"KEYWORD", imap.SearchCriteria{Flag: []imap.Flag{"$responsive"}}, []imap.UID{uid(2)}},
		{"DELETED", imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil},
		{"RECENT", imap.SearchCriteria{Flag: []imap.Flag{"\\Recent"}}, nil},
		{"AND of keys", imap.SearchCriteria{Body: []string{f.gen[4].Token}, Header: []imap.SearchCriteriaHeaderField{{Key: "From", Value: f.gen[4].From}}}, []imap.UID{uid(4)}},
	}
	for _, tt := range tests {
		got, err := c.UIDSearch(&tt.c, nil).Wait()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		all, _ := got.All.(imap.UIDSet).Nums()
		if fmt.Sprint(all) != fmt.Sprint(tt.want) && !(len(all) == 0 && len(tt.want) == 0) {
			t.Errorf("%s: %v, want %v", tt.name, all, tt.want)
		}
	}
	// ESEARCH (RFC 4731): MIN, MAX, COUNT.
	es, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, &imap.SearchOptions{ReturnMin: true, ReturnMax: true, ReturnCount: true}).Wait()
	if err != nil || es.Min != uint32(uid(1)) || es.Max != uint32(uid(2)) || es.Count != 2 {
		t.Fatalf("ESEARCH: %+v %v", es, err)
	}
	// Sequence-number SEARCH.
	sd, err := c.Search(&imap.SearchCriteria{Body: []string{f.gen[7].Token}}, nil).Wait()
	if err != nil || fmt.Sprint(sd.AllSeqNums()) != "[8]" {
		t.Fatalf("SEARCH: %v %v", sd, err)
	}
	// A phrase is confirmed against the text: two words of message 7 that
	// stand apart in it do not match as a phrase.
	words := strings.Fields(strings.SplitN(string(textOf(t, f.gen[7].Raw)), f.gen[7].Token, 2)[1])
	if len(words) > 3 {
		phrase := f.gen[7].Token + " " + words[0]
		if got, _ := c.UIDSearch(&imap.SearchCriteria{Body: []string{phrase}}, nil).Wait(); got == nil || fmt.Sprint(got.AllUIDs()) != fmt.Sprint([]imap.UID{uid(7)}) {
			t.Errorf("phrase %q: %v", phrase, got)
		}
		reversed := words[0] + " " + f.gen[7].Token
		if got, _ := c.UIDSearch(&imap.SearchCriteria{Body: []string{reversed}}, nil).Wait(); got == nil || len(got.AllUIDs()) != 0 {
			t.Errorf("reversed phrase %q matched %v", reversed, got)
		}
	}
	ev := f.a.Audit.Events(audit.ActionSearch)
	if len(ev) < len(tests) || ev[0].Details.Query == "" || ev[0].Target.Folder != "INBOX" {
		t.Fatalf("search events: %d, first %+v", len(ev), ev[0])
	}
}

func textOf(t *testing.T, raw []byte) []byte {
	root, _ := message.Parse(raw)
	var b strings.Builder
	message.Text(raw, root, func(s string) error { b.WriteString(s); return nil })
	return []byte(b.String())
}

// TestSearchBadInput: a deeply nested program is refused, not run.
func TestSearchBadInput(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 2})
	r := f.raw()
	r.login("auditor", f.password)
	r.send("S SELECT INBOX\r\n")
	r.until("S OK")
	deep := strings.Repeat("(", 100000) + "ALL" + strings.Repeat(")", 100000)
	r.send("A SEARCH " + deep + "\r\n")
	got := r.until("A ")
	if !strings.HasPrefix(got[strings.LastIndex(got, "A "):], "A BAD") {
		t.Fatalf("100,000 nested parentheses: %q", got)
	}
	// Within the line limit but too deep.
	r2 := f.raw()
	r2.login("auditor", f.password)
	r2.send("S SELECT INBOX\r\nB SEARCH " + strings.Repeat("NOT ", 1000) + "ALL\r\n")
	r2.until("S OK")
	if got := r2.until("B "); !strings.Contains(got, "B BAD [LIMIT]") {
		t.Fatalf("1,000 nested NOT: %q", got)
	}
	r2.send("C SEARCH BODY foo\r\n")
	if got := r2.until("C "); !strings.Contains(got, "C OK") {
		t.Fatalf("after a refused search: %q", got)
	}
}
