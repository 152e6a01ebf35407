package harvest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/cairn-archive/cairn/ingest"
)

func TestOnceArchivesEveryFolderAndThenNothing(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	var msgs [][]byte
	for i := 0; i < 40; i++ {
		folder := []string{"INBOX", "Archive", "Archive/2024", "Archive/2024/Q1"}[i%4]
		raw := testMessage(i, 2000+i*37)
		msgs = append(msgs, raw)
		m.add(folder, raw)
	}
	a := newMemArchiver()
	h := newTestHarvester(t, a, Options{BatchSize: 3, Workers: 4}, m.source("mem"))
	res := runOnce(t, h)
	if res[0].Err != nil || len(res[0].Folders) != 0 {
		t.Fatalf("pass: %+v", res[0])
	}
	if res[0].Archived != 40 {
		t.Fatalf("archived %d, want 40", res[0].Archived)
	}
	for i, raw := range msgs {
		if !a.has(raw) {
			t.Errorf("message %d not archived byte for byte", i)
		}
	}
	for folder, uids := range a.folders() {
		if len(uids) != 10 {
			t.Errorf("%s: %d deliveries, want 10", folder, len(uids))
		}
	}
	// The envelope records where the message came from.
	e := a.envs[0]
	if e.Source != ingest.SourceHarvest || e.Custodians[0] != testUser || e.Meta["host"] != "127.0.0.1" ||
		e.Meta["account"] != testUser || e.Meta["uidvalidity"] == "" || e.Meta["uid"] == "" ||
		e.Meta["internaldate"] != "2024-03-01T12:00:00Z" || !strings.HasPrefix(e.DeliveryKey, "harvest:v1:127.0.0.1:alice@example.com:") {
		t.Fatalf("envelope %+v", e)
	}
	// Nothing was marked \Seen (EXAMINE and BODY.PEEK[]).
	for uid, flags := range m.folderState("INBOX") {
		if len(flags) != 0 {
			t.Errorf("uid %d has flags %v after harvesting", uid, flags)
		}
	}
	// Second pass: nothing new, not a single Archive call.
	calls := a.calls
	res = runOnce(t, h)
	if res[0].Err != nil || res[0].Archived != 0 || a.calls != calls {
		t.Fatalf("second pass: %+v, %d archive calls", res[0], a.calls-calls)
	}
	fs := folderStatus(t, h, "mem", "Archive/2024/Q1")
	if fs.Archived != 10 || fs.LastUID != 10 || fs.UIDValidity == 0 || fs.Messages != 10 {
		t.Fatalf("status %+v", fs)
	}
	// New mail in one folder only.
	m.add("Archive/2024", testMessage(100, 3000))
	res = runOnce(t, h)
	if res[0].Archived != 1 || a.deliveries() != 41 {
		t.Fatalf("third pass: %+v", res[0])
	}
}

func TestWithoutListStatusOrESearch(t *testing.T) {
	m := newMemServer(t, imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}, nil)
	for i := 0; i < 12; i++ {
		m.add("INBOX", testMessage(i, 1500))
	}
	a := newMemArchiver()
	h := newTestHarvester(t, a, Options{BatchSize: 5}, m.source("mem"))
	if res := runOnce(t, h); res[0].Archived != 12 || res[0].Err != nil {
		t.Fatalf("%+v", res[0])
	}
	if res := runOnce(t, h); res[0].Archived != 0 || res[0].Replayed != 0 {
		t.Fatalf("second pass %+v", res[0])
	}
}

func TestSelectorPatterns(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	for _, f := range []string{"INBOX", "Sent", "Trash", "Archive/2023", "Archive/2024", "Archive/2024/Q1", "Lists/go"} {
		m.add(f, testMessage(len(f), 1000))
	}
	a := newMemArchiver()
	src := m.source("mem")
	src.Include = []string{"inbox", "Archive/%", "Lists/*"}
	src.Exclude = []string{"Archive/2023"}
	h := newTestHarvester(t, a, Options{}, src)
	runOnce(t, h)
	got := a.folders()
	want := []string{"INBOX", "Archive/2024", "Lists/go"}
	if len(got) != len(want) {
		t.Fatalf("harvested %v, want %v", got, want)
	}
	for _, f := range want {
		if len(got[f]) != 1 {
			t.Errorf("%s not harvested: %v", f, got)
		}
	}
}

func TestUIDValidityChangeRereadsWithoutDuplicates(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	var msgs [][]byte
	for i := 0; i < 20; i++ {
		raw := testMessage(i, 1200)
		msgs = append(msgs, raw)
		m.add("Work", raw)
	}
	a := newMemArchiver()
	h := newTestHarvester(t, a, Options{BatchSize: 7}, m.source("mem"))
	runOnce(t, h)
	before := folderStatus(t, h, "mem", "Work")
	// Recreate the folder: a new UIDVALIDITY, the same messages under new
	// UIDs in another order, plus two new ones.
	if err := m.user.Delete("Work"); err != nil {
		t.Fatal(err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m.add("Work", msgs[i])
	}
	m.add("Work", testMessage(100, 1200))
	m.add("Work", testMessage(101, 1200))
	res := runOnce(t, h)
	if res[0].Archived != 2 || res[0].Replayed != 20 {
		t.Fatalf("after the reset: %+v", res[0])
	}
	after := folderStatus(t, h, "mem", "Work")
	if after.UIDValidity == before.UIDValidity || after.Resets != 1 || after.LastUID != 22 {
		t.Fatalf("status before %+v after %+v", before, after)
	}
	if a.deliveries() != 22 {
		t.Fatalf("%d deliveries, want 22", a.deliveries())
	}
}

func TestTemporaryArchiveFailureHoldsTheCursor(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	for i := 0; i < 30; i++ {
		m.add("INBOX", testMessage(i, 1000))
	}
	a := newMemArchiver()
	var fail atomic.Bool
	fail.Store(true)
	a.hook = func(env *ingest.Envelope, raw []byte) error {
		if fail.Load() && env.Meta["uid"] == "17" {
			return errTemporary
		}
		return nil
	}
	h := newTestHarvester(t, a, Options{BatchSize: 8, MaxAttempts: 1}, m.source("mem"))
	res := runOnce(t, h)
	if res[0].Err == nil || !errors.Is(res[0].Err, errTemporary) {
		t.Fatalf("want the archive's error, got %+v", res[0])
	}
	fs := folderStatus(t, h, "mem", "INBOX")
	if fs.LastUID != 16 {
		t.Fatalf("cursor at %d, want 16 (just before the failure)", fs.LastUID)
	}
	fail.Store(false)
	res = runOnce(t, h)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if a.deliveries() != 30 {
		t.Fatalf("%d deliveries, want 30", a.deliveries())
	}
	if fs := folderStatus(t, h, "mem", "INBOX"); fs.LastUID != 30 || fs.Archived != 30 {
		t.Fatalf("status %+v", fs)
	}
}

func TestRefusedAndOversizeAreSkippedAndReported(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	m.add("INBOX", testMessage(1, 1000))
	m.add("INBOX", testMessage(2, 1000))                         // refused by the archive
	m.add("INBOX", testMessage(3, 200_000))                      // over MaxMessageSize
	m.add("INBOX", []byte("Subject: MALFORMED\r\n\r\nbody\r\n")) // archived, reported
	m.add("INBOX", testMessage(5, 1000))
	a := newMemArchiver()
	a.hook = func(env *ingest.Envelope, raw []byte) error {
		if env.Meta["uid"] == "2" {
			return fmt.Errorf("%w: test", ingest.ErrRefused)
		}
		return nil
	}
	h := newTestHarvester(t, a, Options{MaxMessageSize: 100_000}, m.source("mem"))
	res := runOnce(t, h)
	if res[0].Err != nil || res[0].Archived != 3 || res[0].Skipped != 2 || res[0].Malformed != 1 {
		t.Fatalf("%+v", res[0])
	}
	fs := folderStatus(t, h, "mem", "INBOX")
	if fs.LastUID != 5 || fs.Skipped != 2 || fs.Malformed != 1 {
		t.Fatalf("status %+v", fs)
	}
	reps, err := h.State().Reports(context.Background(), "mem", 10)
	if err != nil || len(reps) != 3 {
		t.Fatalf("reports %v %+v", err, reps)
	}
	kinds := map[uint32]string{}
	for _, r := range reps {
		kinds[r.UID] = r.Kind
	}
	if kinds[2] != ReportSkipped || kinds[3] != ReportSkipped || kinds[4] != ReportMalformed {
		t.Fatalf("reports %+v", reps)
	}
	// Not retried.
	calls := a.calls
	m.add("INBOX", testMessage(6, 1000))
	runOnce(t, h)
	if a.calls != calls+1 {
		t.Fatalf("%d archive calls, want 1", a.calls-calls)
	}
}

func TestJournalExpungeRemovesOnlyArchivedMail(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	for i := 0; i < 10; i++ {
		m.add("INBOX", testMessage(i, 1000))
	}
	// Someone else marked this one \Deleted, and the archive refuses it: a
	// plain EXPUNGE would lose it.
	kept := m.add("INBOX", testMessage(99, 1000), imap.FlagDeleted)
	a := newMemArchiver()
	a.hook = func(env *ingest.Envelope, raw []byte) error {
		if env.Meta["uid"] == fmt.Sprint(kept) {
			return fmt.Errorf("%w: test", ingest.ErrRefused)
		}
		return nil
	}
	src := m.source("journal")
	src.Journal = JournalExpunge
	h := newTestHarvester(t, a, Options{BatchSize: 4}, src)
	res := runOnce(t, h)
	if res[0].Err != nil || res[0].Archived != 10 || res[0].Removed != 10 {
		t.Fatalf("%+v", res[0])
	}
	left := m.folderState("INBOX")
	if len(left) != 1 || left[kept] == nil {
		t.Fatalf("left in the journal mailbox: %v", left)
	}
}

func TestJournalWithoutUIDPlusRemovesNothing(t *testing.T) {
	m := newMemServer(t, imap.CapSet{imap.CapIMAP4rev1: {}}, nil)
	for i := 0; i < 5; i++ {
		m.add("INBOX", testMessage(i, 1000))
	}
	a := newMemArchiver()
	src := m.source("journal")
	src.Journal = JournalExpunge
	h := newTestHarvester(t, a, Options{}, src)
	res := runOnce(t, h)
	if res[0].Archived != 5 || res[0].Removed != 0 || len(res[0].Folders) != 1 ||
		!strings.Contains(res[0].Folders[0].Err.Error(), "UIDPLUS") {
		t.Fatalf("%+v", res[0])
	}
	if left := m.folderState("INBOX"); len(left) != 5 {
		t.Fatalf("%d left, want 5", len(left))
	}
	if fs := folderStatus(t, h, "journal", "INBOX"); fs.LastUID != 5 || !strings.Contains(fs.LastError, "UIDPLUS") {
		t.Fatalf("status %+v", fs)
	}
}

func TestJournalMove(t *testing.T) {
	for _, caps := range []imap.CapSet{fullCaps(), {imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}} {
		_, hasMove := caps[imap.CapMove]
		t.Run(fmt.Sprintf("MOVE=%v", hasMove), func(t *testing.T) {
			m := newMemServer(t, caps, nil)
			for i := 0; i < 6; i++ {
				m.add("INBOX", testMessage(i, 1000))
			}
			a := newMemArchiver()
			src := m.source("journal")
			src.Journal, src.MoveTo = JournalMove, "Archived/Done"
			h := newTestHarvester(t, a, Options{BatchSize: 4}, src)
			res := runOnce(t, h)
			if res[0].Err != nil || res[0].Archived != 6 || res[0].Removed != 6 {
				t.Fatalf("%+v", res[0])
			}
			if n := len(m.folderState("INBOX")); n != 0 {
				t.Fatalf("%d left in INBOX", n)
			}
			if n := len(m.folderState("Archived/Done")); n != 6 {
				t.Fatalf("%d moved, want 6", n)
			}
			// The destination is never harvested itself.
			res = runOnce(t, h)
			if res[0].Archived != 0 || a.deliveries() != 6 {
				t.Fatalf("second pass %+v", res[0])
			}
		})
	}
}

func TestIdleArchivesNewMailAtOnce(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	m.add("INBOX", testMessage(0, 1000))
	a := newMemArchiver()
	h := newTestHarvester(t, a, Options{}, m.source("mem"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	waitFor(t, 5*time.Second, func() bool { return a.deliveries() == 1 })
	for i := 1; i <= 3; i++ {
		start := time.Now()
		m.add("INBOX", testMessage(i, 1000))
		waitFor(t, 5*time.Second, func() bool { return a.deliveries() == i+1 })
		t.Logf("message %d archived %v after delivery (poll interval 1h)", i, time.Since(start).Round(time.Millisecond))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Without IDLE, new mail is archived by the next poll, and the passes are
// PollInterval apart. The message is added after a pass ended (the first
// LastSuccess): the pass that archives it started PollInterval after that
// one ended at the earliest. Both times are the harvester's own (the
// Archive call, LastSuccess), so a test goroutine that runs late cannot
// make the check fail.
func TestPollWithoutIdle(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	a := newMemArchiver()
	var archivedAt atomic.Int64 // wall-clock ns of the first Archive call
	a.hook = func(*ingest.Envelope, []byte) error {
		archivedAt.CompareAndSwap(0, time.Now().UnixNano())
		return nil
	}
	src := m.source("mem")
	src.NoIdle = true
	src.PollInterval = time.Second
	h := newTestHarvester(t, a, Options{}, src)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	var passEnd time.Time
	waitFor(t, 15*time.Second, func() bool {
		st, _ := h.Status(context.Background())
		passEnd = st[0].LastSuccess
		return !passEnd.IsZero()
	})
	m.add("Other", testMessage(1, 1000))
	deadline := time.Now().Add(15 * time.Second)
	for a.deliveries() != 1 {
		if time.Now().After(deadline) {
			st, _ := h.Status(context.Background())
			t.Fatalf("%d deliveries 15 s after the message came (poll interval 1 s); status %+v", a.deliveries(), st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if d := time.Unix(0, archivedAt.Load()).Sub(passEnd); d < src.PollInterval {
		t.Fatalf("archived %v after the previous pass ended: before the next poll (interval %v)?", d, src.PollInterval)
	}
}

func TestOneFailingSourceDoesNotStopOthers(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	for i := 0; i < 5; i++ {
		m.add("INBOX", testMessage(i, 1000))
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dead := m.source("dead")
	dead.Port = deadPort
	a := newMemArchiver()
	h := newTestHarvester(t, a, Options{MaxAttempts: 2}, dead, m.source("good"))
	res := runOnce(t, h)
	if res[0].Source != "dead" || res[0].Err == nil || res[1].Err != nil || res[1].Archived != 5 {
		t.Fatalf("%+v", res)
	}
	st, _ := h.Status(context.Background())
	if st[0].Name != "dead" || st[0].LastError == "" || st[0].Failures != 2 || st[1].LastSuccess.IsZero() {
		t.Fatalf("status %+v", st)
	}
}

func TestBadPasswordIsReported(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	src := m.source("mem")
	src.PasswordFile, src.PasswordEnv = "", "CAIRN_TEST_HARVEST_PW"
	t.Setenv("CAIRN_TEST_HARVEST_PW", "wrong")
	h := newTestHarvester(t, newMemArchiver(), Options{MaxAttempts: 1}, src)
	res := runOnce(t, h)
	if !errors.Is(res[0].Err, ErrAuth) {
		t.Fatalf("%+v", res[0])
	}
}

func TestMemoryStaysWithinBudget(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	const size = 20_000
	for i := 0; i < 60; i++ {
		m.add("INBOX", testMessage(i, size))
	}
	a := newMemArchiver()
	a.delay = 5 * time.Millisecond
	const budget = 3 * size
	h := newTestHarvester(t, a, Options{Workers: 16, MaxMessageSize: size + 1000, MemoryBudget: budget}, m.source("mem"))
	if res := runOnce(t, h); res[0].Archived != 60 {
		t.Fatalf("%+v", res[0])
	}
	if a.maxHeld > budget {
		t.Fatalf("%d bytes were being archived at once, over the %d budget", a.maxHeld, budget)
	}
	t.Logf("at most %d bytes in the archive at once (budget %d)", a.maxHeld, budget)
}

func TestServerDownThenBack(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	for i := 0; i < 50; i++ {
		m.add("INBOX", testMessage(i, 1000))
	}
	a := newMemArchiver()
	// Slow the archive so that the server goes away mid-folder.
	var n atomic.Int32
	a.hook = func(*ingest.Envelope, []byte) error {
		if n.Add(1) == 10 {
			m.srv.Close()
		}
		return nil
	}
	h := newTestHarvester(t, a, Options{BatchSize: 5, Workers: 1}, m.source("mem"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	waitFor(t, 5*time.Second, func() bool {
		st, _ := h.Status(context.Background())
		return len(st) == 1 && st[0].Failures > 0
	})
	// Bring a server back on the same port with the same mailbox.
	srv2 := restartOnPort(t, m)
	defer srv2.Close()
	waitFor(t, 10*time.Second, func() bool { return a.deliveries() == 50 })
	cancel()
	<-done
	st, _ := h.Status(context.Background())
	if st[0].LastError == "" || st[0].LastErrorAt.IsZero() || st[0].Errors == 0 {
		t.Fatalf("the outage is not reported: %+v", st[0])
	}
	if fs := folderStatus(t, h, "mem", "INBOX"); fs.LastUID != 50 || fs.Archived != 50 {
		t.Fatalf("status %+v", fs)
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A server that logs us in and then never answers: the watchdog closes the
// connection after Options.Timeout instead of waiting for ever.
func TestSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func(conn net.Conn) {
				defer conn.Close()
				fmt.Fprint(conn, "* OK [CAPABILITY IMAP4rev1 IDLE] silent test server\r\n")
				buf := make([]byte, 4096)
				for {
					n, err := conn.Read(buf)
					if err != nil {
						return
					}
					line := string(buf[:n])
					if tag, rest, ok := strings.Cut(line, " "); ok && strings.HasPrefix(strings.ToUpper(rest), "LOGIN") {
						fmt.Fprintf(conn, "%s OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n", tag)
					}
					// Everything else: silence.
				}
			}(conn)
		}
	}()
	src := Source{Name: "silent", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, TLS: TLSNone,
		User: testUser, PasswordEnv: "CAIRN_TEST_SILENT_PW"}
	t.Setenv("CAIRN_TEST_SILENT_PW", "x")
	h := newTestHarvester(t, newMemArchiver(), Options{MaxAttempts: 2, Timeout: 300 * time.Millisecond}, src)
	start := time.Now()
	res := runOnce(t, h)
	if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), "sent nothing") {
		t.Fatalf("%+v", res[0])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	t.Logf("%v", res[0].Err)
}

// TestMemServerIdleReportsPending holds the test server to what the IDLE
// tests above rely on and real servers do: a message added between a
// client's last command and its IDLE is announced when IDLE begins (go-imap
// patch 9), not with the next change only.
func TestMemServerIdleReportsPending(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	exists := make(chan uint32, 4)
	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", m.port), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	m.add("INBOX", testMessage(1, 100))
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	select {
	case n := <-exists:
		if n != 1 {
			t.Fatalf("EXISTS %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message added before IDLE was not announced")
	}
}

// TestSelectedMailboxSetWhenSelectReturns holds imapclient to what the
// harvester's IDLE relies on: right after Select(...).Wait() the client
// knows the mailbox is selected, also when the server closed the previous
// one with a CLOSED response code (go-imap patch 11). Without the patch,
// Mailbox() was sometimes still nil there, and the harvester fell back to
// polling instead of IDLE.
func TestSelectedMailboxSetWhenSelectReturns(t *testing.T) {
	m := newMemServer(t, fullCaps(), nil)
	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", m.port), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			t.Fatal(err)
		}
		if mb := c.Mailbox(); mb == nil || mb.Name != "INBOX" {
			t.Fatalf("select %d: Mailbox() = %v right after Select returned", i, mb)
		}
	}
}
