package imapview

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/audit"
)

// snapshot is every file of the archive's object store with its hash, and
// the index's rows: what "nothing changed" is checked against.
func (f *fixture) snapshot() map[string][32]byte {
	f.t.Helper()
	out := map[string][32]byte{}
	filepath.Walk(filepath.Join(f.a.Dir, "objects"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(f.a.Dir, "index.db")+"?mode=ro")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	for _, table := range []string{"entries", "messages", "deliveries", "custodians", "recipients"} {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			f.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		h := sha256.New()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			fmt.Fprintf(h, "%v\n", vals)
		}
		rows.Close()
		var sum [32]byte
		copy(sum[:], h.Sum(nil))
		out["index:"+table] = sum
	}
	return out
}

// TestWritesRefused: every command that would change the archive is
// refused with NO [NOPERM] (never TRYCREATE), on every folder, selected
// and examined; CLOSE removes nothing; afterwards the archive is as it
// was and verify --full passes.
func TestWritesRefused(t *testing.T) {
	f := newFixture(t, fixtureOpts{corpus: true, generated: 4})
	before := f.snapshot()
	c := f.auditor()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, l := range list {
		folders = append(folders, l.Mailbox)
	}
	folders = append(folders, "Trash", "Sent")
	r := f.raw()
	r.login("auditor", f.password)
	noperm := func(what string, err error) {
		t.Helper()
		if imapCode(err) != imap.ResponseCodeNoPerm {
			t.Errorf("%s: %v, want NO [NOPERM]", what, err)
		}
	}
	for _, folder := range folders {
		noperm("CREATE "+folder, c.Create(folder, nil).Wait())
		noperm("CREATE "+folder+"/x", c.Create(folder+"/x", nil).Wait())
		noperm("DELETE "+folder, c.Delete(folder).Wait())
		noperm("RENAME "+folder, c.Rename(folder, folder+"2", nil).Wait())
		// APPEND: refused before the continuation, never with TRYCREATE.
		r.send(fmt.Sprintf("A APPEND %q (\\Seen) {20}\r\n", folder))
		if got := r.until("A "); !strings.HasPrefix(got, "A NO [NOPERM]") {
			t.Errorf("APPEND %s: %q", folder, got)
		}
	}
	for _, folder := range folders {
		for _, readOnly := range []bool{false, true} {
			sel, err := c.Select(folder, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
			if err != nil {
				continue // containers and nonexistent folders
			}
			if sel.NumMessages == 0 {
				continue
			}
			all := imap.SeqSet{{Start: 1, Stop: 0}}
			for _, dest := range []string{"INBOX", "Trash", folder} {
				_, err := c.Copy(all, dest).Wait()
				noperm("COPY to "+dest, err)
				_, err = c.Move(all, dest).Wait()
				noperm("MOVE to "+dest, err)
			}
			_, err = c.Expunge().Collect()
			noperm("EXPUNGE in "+folder, err)
			_, err = c.UIDExpunge(imap.UIDSet{{Start: 1, Stop: 0}}).Collect()
			noperm("UID EXPUNGE in "+folder, err)
			_, err = c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect()
			noperm("STORE +FLAGS \\Deleted in "+folder, err)
			_, err = c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted}}, nil).Collect()
			noperm("STORE FLAGS (\\Seen \\Deleted) in "+folder, err)
			if readOnly {
				_, err = c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect()
				noperm("STORE under EXAMINE", err)
			}
			// CLOSE succeeds and removes nothing.
			if err := c.UnselectAndExpunge().Wait(); err != nil {
				t.Errorf("CLOSE %s: %v", folder, err)
			}
			again, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
			if err != nil || again.NumMessages != sel.NumMessages {
				t.Errorf("%s after CLOSE: %v %v, want %d messages", folder, again, err, sel.NumMessages)
			}
			if err := c.Unselect().Wait(); err != nil {
				t.Errorf("UNSELECT: %v", err)
			}
		}
	}
	// Subscriptions: existing folders are subscribed; Trash cannot be.
	if err := c.Subscribe("INBOX").Wait(); err != nil {
		t.Errorf("SUBSCRIBE INBOX: %v", err)
	}
	noperm("SUBSCRIBE Trash", c.Subscribe("Trash").Wait())
	noperm("UNSUBSCRIBE INBOX", c.Unsubscribe("INBOX").Wait())
	after := f.snapshot()
	if len(after) != len(before) {
		t.Fatalf("%d files and tables before, %d after", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}
	rep, err := f.a.Store.Verify(context.Background(), archiveVerifyFull())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify --full: %+v", rep)
	}
}

// TestFlagsAreAnnotations: flags set under SELECT are the account's own,
// audited, and visible to nobody else.
func TestFlagsAreAnnotations(t *testing.T) {
	f := newFixture(t, fixtureOpts{corpus: true})
	pw2 := f.a.User(t, "second", "auditor")
	before := f.snapshot()
	c := f.auditor()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Store(imap.SeqSet{{Start: 1, Stop: 3}}, &imap.StoreFlags{Op: imap.StoreFlagsAdd,
		Flags: []imap.Flag{"$Privileged", imap.FlagFlagged, "$Reviewed"}}, nil).Collect()
	if err != nil || len(res) != 3 {
		t.Fatalf("STORE: %v %v", res, err)
	}
	for _, m := range res {
		if len(m.Flags) != 3 {
			t.Fatalf("STORE answered flags %v", m.Flags)
		}
	}
	if _, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{"$reviewed"}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	// FETCH BODY[] under SELECT sets \Seen and reports it.
	got, err := c.Fetch(imap.SeqSetNum(4), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil || len(got) != 1 || !hasFlag(got[0].Flags, imap.FlagSeen) {
		t.Fatalf("FETCH BODY[]: %+v %v", got, err)
	}
	flags, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 4}}, &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]imap.Flag{{"$Privileged", "$Reviewed", imap.FlagFlagged}, {"$Privileged", imap.FlagFlagged}, {"$Privileged", "$Reviewed", imap.FlagFlagged}, {imap.FlagSeen}}
	for i, m := range flags {
		if fmt.Sprint(sortFlags(m.Flags)) != fmt.Sprint(sortFlags(want[i])) {
			t.Errorf("message %d flags %v, want %v", i+1, m.Flags, want[i])
		}
	}
	// Searching by flag sees them.
	sd, err := c.Search(&imap.SearchCriteria{Flag: []imap.Flag{"$Privileged"}, NotFlag: []imap.Flag{"$Reviewed"}}, nil).Wait()
	if err != nil || fmt.Sprint(sd.AllSeqNums()) != "[2]" {
		t.Fatalf("SEARCH KEYWORD: %v %v", sd, err)
	}
	st, _ := c.Status("Dates/2024/03", &imap.StatusOptions{NumUnseen: true, NumMessages: true}).Wait()
	if st == nil || *st.NumUnseen != *st.NumMessages-1 {
		t.Fatalf("STATUS UNSEEN: %+v", st)
	}
	// Another account sees none of them.
	c2 := f.client("second", pw2)
	c2.Select("INBOX", nil).Wait()
	other, err := c2.Fetch(imap.SeqSet{{Start: 1, Stop: 4}}, &imap.FetchOptions{Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range other {
		if len(m.Flags) != 0 {
			t.Fatalf("another account sees flags %v", m.Flags)
		}
	}
	if ev := f.a.Audit.Events(audit.ActionFlag); len(ev) != 3 || ev[0].Details.Flags[0] != "+$Privileged" {
		t.Fatalf("flag events: %+v", ev)
	}
	after := f.snapshot()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed", k)
		}
	}
}

func hasFlag(fs []imap.Flag, f imap.Flag) bool {
	for _, x := range fs {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}

func sortFlags(fs []imap.Flag) []imap.Flag {
	out := append([]imap.Flag(nil), fs...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestLoginDisabledBeforeTLS: a client that is not on loopback sees
// LOGINDISABLED and cannot log in until STARTTLS; IMAPS works at once.
func TestLoginDisabledBeforeTLS(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 1, remote: true})
	c, err := imapclient.DialInsecure(f.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Fatalf("capabilities before TLS: %v", caps)
	}
	if err := c.Login("auditor", f.password).Wait(); imapCode(err) != imap.ResponseCodePrivacyRequired {
		t.Fatalf("LOGIN before TLS: %v", err)
	}
	tlsCfg := &tls.Config{RootCAs: f.roots, ServerName: "localhost"}
	st, err := imapclient.DialStartTLS(f.addr, &imapclient.Options{TLSConfig: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Login("auditor", f.password).Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
	tc, err := imapclient.DialTLS(f.tlsAddr, &imapclient.Options{TLSConfig: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := tc.Login("auditor", f.password).Wait(); err != nil {
		t.Fatalf("LOGIN over IMAPS: %v", err)
	}
	ev := f.a.Audit.Events(audit.ActionLogin)
	if len(ev) != 2 || !ev[0].Source.TLS || !ev[1].Source.TLS {
		t.Fatalf("login events: %+v", ev)
	}
}

// TestAuditFailClosed: when the audit log cannot record, access is refused.
func TestAuditFailClosed(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 2})
	c := f.auditor()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	f.a.Audit.SetFail(true)
	if _, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect(); imapCode(err) != imap.ResponseCodeUnavailable {
		t.Fatalf("FETCH with the audit log down: %v", err)
	}
	if _, err := c.Search(&imap.SearchCriteria{Body: []string{"x"}}, nil).Wait(); imapCode(err) != imap.ResponseCodeUnavailable {
		t.Fatalf("SEARCH with the audit log down: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); imapCode(err) != imap.ResponseCodeUnavailable {
		t.Fatalf("SELECT with the audit log down: %v", err)
	}
	c2, _ := imapclient.DialInsecure(f.addr, nil)
	defer c2.Close()
	if err := c2.Login("auditor", f.password).Wait(); imapCode(err) != imap.ResponseCodeUnavailable {
		t.Fatalf("LOGIN with the audit log down: %v", err)
	}
	f.a.Audit.SetFail(false)
	c.Select("INBOX", nil).Wait()
	got, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(got) != 1 || !bytes.Contains(got[0].FindBodySection(&imap.FetchItemBodySection{Peek: true}), []byte("Message-ID")) {
		t.Fatalf("FETCH after recovery: %v", err)
	}
}
