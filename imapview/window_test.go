package imapview

import (
	"bytes"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// A client fetching one UID per command (mbsync) is answered from a
// window of members read ahead; the window must follow the picture: past
// its end, after an EXPUNGE renumbers, and when new mail arrives.
func TestSingleUIDFetchesFollowThePicture(t *testing.T) {
	n := windowSize + 40 // crosses one window boundary
	f := newFixture(t, fixtureOpts{generated: n})
	c := f.auditor()
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	body := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	fetch := func(uid imap.UID) []*imapclient.FetchMessageBuffer {
		t.Helper()
		res, err := c.Fetch(imap.UIDSetNum(uid), body).Collect()
		if err != nil {
			t.Fatalf("UID FETCH %d: %v", uid, err)
		}
		return res
	}
	check := func(uid imap.UID, seq uint32) {
		t.Helper()
		res := fetch(uid)
		if len(res) != 1 || res[0].UID != uid || res[0].SeqNum != seq {
			t.Fatalf("UID FETCH %d: %+v, want sequence number %d", uid, res, seq)
		}
		if got := res[0].BodySection[0].Bytes; !bytes.Equal(got, f.msgs[seqOfUID(uid)]) {
			t.Fatalf("UID FETCH %d: %d bytes, not the original", uid, len(got))
		}
	}
	uids := make([]imap.UID, n)
	for i, s := range f.genSeqs {
		uids[i] = imap.UID(s + 1)
	}
	for i, uid := range uids {
		check(uid, uint32(i+1))
	}
	// New mail: its UID is fetched singly as soon as the client knows it.
	m := gen.New(123).Next(3000)
	seq := f.a.Add(t, m.Raw, time.Time{}, custA)
	f.msgs[seq] = m.Raw
	deadline := time.Now().Add(5 * time.Second)
	for c.Mailbox().NumMessages != uint32(n+1) && time.Now().Before(deadline) {
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	check(imap.UID(seq+1), uint32(n+1))
	// Back to the start (the window now lies past it), then an EXPUNGE
	// (last: f.dispose writes only the index): the second message goes,
	// later ones move up by one.
	check(uids[0], 1)
	f.dispose(f.genSeqs[1])
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if res := fetch(uids[1]); len(res) != 0 {
		t.Fatalf("the disposed message still fetched: %+v", res)
	}
	for i := 2; i < 10; i++ {
		check(uids[i], uint32(i))
	}
}
