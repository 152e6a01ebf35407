//go:build integration

package harvest

// Integration tests against a real Dovecot (scripts/dovecot.sh: installed
// with apt-get when missing; these tests fail, never skip, without it) and
// a real archive (archive.Store on the filesystem object store).
//
//	go test -tags integration -run Dovecot -v ./ingest/harvest
//
// The kill -9 test drives the cairn binary: cmd/cairn/harvest_integration_test.go.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/harvest/dovecottest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// openTestArchive opens a new archive in a temp folder.
func openTestArchive(t testing.TB) *archive.Store {
	t.Helper()
	dir := t.TempDir()
	objs, err := fs.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ring, sk := cryptotest.Keys(t, dir, objs, "harvest.test/cairn")
	st, err := archive.Open(ctx, archive.Options{
		Dir: dir, Objects: objs, Keys: ring, Signing: sk, LogID: "test",
		CheckpointEvery: 1 << 40, CheckpointInterval: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// delivery is one delivery as the index holds it.
type delivery struct {
	seq, message uint64
	key          string
	env          ingest.Envelope
}

func deliveries(t testing.TB, st *archive.Store) []delivery {
	t.Helper()
	var out []delivery
	err := st.Index().EachDelivery(context.Background(), func(d *index.DeliveryRow, macOK bool) error {
		var e ingest.Envelope
		if err := json.Unmarshal(d.Envelope, &e); err != nil {
			return err
		}
		if !macOK {
			return fmt.Errorf("delivery %d: bad MAC", d.Seq)
		}
		out = append(out, delivery{seq: d.Seq, message: d.Message, key: d.DeliveryKey, env: e})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// archivedSHA returns the SHA-256 of the bytes the archive gives back for a
// delivery's message, read through the archive's read path.
func archivedSHA(t testing.TB, st *archive.Store, message uint64) [32]byte {
	t.Helper()
	m, err := st.OpenMessage(context.Background(), message)
	if err != nil {
		t.Fatalf("open message %d: %v", message, err)
	}
	defer m.Close()
	h := sha256.New()
	if _, err := m.WriteTo(h); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// ref is a message as Dovecot serves it: the reference for "as received".
type ref struct {
	account, folder string
	uidValidity     uint32
	uid             uint32
	sha             [32]byte
	flags           []imap.Flag
	date            time.Time
}

// snapshot fetches every message of every folder of an account.
func snapshot(t testing.TB, d *dovecottest.Server, user, pw string) []ref {
	t.Helper()
	c := d.Client(user, pw)
	defer c.Close()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []ref
	for _, b := range boxes {
		if slices.Contains(b.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		uv, msgs := dovecottest.FetchAll(t, c, b.Mailbox)
		for _, m := range msgs {
			out = append(out, ref{account: user, folder: b.Mailbox, uidValidity: uv, uid: m.UID,
				sha: sha256.Sum256(m.Raw), flags: m.Flags, date: m.Date})
		}
	}
	return out
}

func refKey(account, folder string, uid uint32) string {
	return account + "\x00" + folder + "\x00" + strconv.FormatUint(uint64(uid), 10)
}

// checkArchive proves that the archive holds exactly the reference: one
// delivery per message (account, folder, UID), each recording where it
// came from, and bytes identical to what Dovecot serves.
func checkArchive(t testing.TB, st *archive.Store, refs []ref) {
	t.Helper()
	byLoc := map[string]ref{}
	for _, r := range refs {
		byLoc[refKey(r.account, r.folder, r.uid)] = r
	}
	ds := deliveries(t, st)
	seen := map[string]bool{}
	keys := map[string]bool{}
	checked := map[uint64]bool{}
	for _, d := range ds {
		e := d.env
		if e.Source != ingest.SourceHarvest {
			continue
		}
		uid, _ := strconv.ParseUint(e.Meta["uid"], 10, 32)
		loc := refKey(e.Meta["account"], e.Meta["folder"], uint32(uid))
		r, ok := byLoc[loc]
		if !ok {
			t.Errorf("delivery %d (%s %s uid %d) is not in the mailbox", d.seq, e.Meta["account"], e.Meta["folder"], uid)
			continue
		}
		if seen[loc] {
			t.Errorf("%s %s uid %d recorded twice", r.account, r.folder, r.uid)
		}
		seen[loc] = true
		if keys[d.key] {
			t.Errorf("delivery key %s twice", d.key)
		}
		keys[d.key] = true
		if e.Meta["uidvalidity"] != strconv.FormatUint(uint64(r.uidValidity), 10) || e.Meta["host"] != "127.0.0.1" ||
			!e.ReceivedAt.Equal(r.date) || e.Meta["internaldate"] != r.date.Format(time.RFC3339) ||
			e.Meta["flags"] != flagString(r.flags) || len(e.Custodians) != 1 {
			t.Errorf("delivery %d records %+v, the mailbox has %+v", d.seq, e, r)
		}
		if !checked[d.message] {
			checked[d.message] = true
			if got := archivedSHA(t, st, d.message); got != r.sha {
				t.Errorf("%s %s uid %d: archived bytes differ from what Dovecot serves", r.account, r.folder, r.uid)
			}
		} else if m, err := st.Index().Message(context.Background(), d.message); err != nil || m.SHA256 != r.sha {
			t.Errorf("%s %s uid %d: delivery points at other bytes", r.account, r.folder, r.uid)
		}
	}
	for loc, r := range byLoc {
		if !seen[loc] {
			t.Errorf("%s %s uid %d (%s) was not archived", r.account, r.folder, r.uid, hex.EncodeToString(r.sha[:8]))
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func flagString(fs []imap.Flag) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, " ")
}

func corpus(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob("../../../shared/corpus/enmime/*.raw")
	if len(files) == 0 {
		t.Fatal("../../../shared/corpus/enmime/*.raw not found")
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// fill writes n generated messages into a user's folder as Maildir files
// (CRLF, so Dovecot serves them unchanged), a tenth of them flagged.
func fill(t testing.TB, d *dovecottest.Server, g *gen.Generator, user, folder string, n int) [][]byte {
	t.Helper()
	md := d.Folder(user, folder)
	var out [][]byte
	for i := 0; i < n; i++ {
		m := g.Next(2500 + rand.IntN(12000))
		flags := ""
		switch i % 10 {
		case 3:
			flags = "S"
		case 7:
			flags = "FS"
		}
		if _, err := md.Deliver(m.Raw, m.Date, flags); err != nil {
			t.Fatal(err)
		}
		out = append(out, m.Raw)
	}
	return out
}

func sourceFor(t testing.TB, d *dovecottest.Server, name, user, pw string) Source {
	pwFile := filepath.Join(t.TempDir(), name+".pw")
	os.WriteFile(pwFile, []byte(pw+"\n"), 0o600)
	return Source{Name: name, Host: "127.0.0.1", Port: d.Port, TLS: TLSNone, User: user, PasswordFile: pwFile,
		Custodian: user + "@example.com", PollInterval: time.Hour}
}

var dovecotUsers = map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}

// TestDovecotHarvest20000 is issue 6's first check: several users, nested
// folders, 20,000 messages including the enmime corpus; one run archives
// every message byte-identical, a second archives nothing, new mail comes
// in with the next run; nothing is marked \Seen.
func TestDovecotHarvest20000(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.Options{Users: dovecotUsers})
	g := gen.New(6)
	g.CRLF = true
	var generated [][]byte
	for _, f := range []struct {
		user, folder string
		n            int
	}{
		{"alice", "INBOX", 5000}, {"alice", "Archive/2024", 2500}, {"alice", "Archive/2024/Q1", 2500}, {"alice", "Sent", 1000},
		{"bob", "INBOX", 4000}, {"bob", "Projects/Cairn", 500}, {"bob", "Projects/Cairn/Design", 1500},
		{"carol", "INBOX", 2910},
	} {
		generated = append(generated, fill(t, d, g, f.user, f.folder, f.n)...)
	}
	cmd := d.Folder("carol", "Corpus")
	for _, raw := range corpus(t) {
		if _, err := cmd.Deliver(raw, time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC), ""); err != nil {
			t.Fatal(err)
		}
	}
	d.Chown()

	var refs []ref
	for u, pw := range dovecotUsers {
		refs = append(refs, snapshot(t, d, u, pw)...)
	}
	if len(refs) != 20000 {
		t.Fatalf("Dovecot serves %d messages, want 20000", len(refs))
	}
	// Dovecot serves the generated (CRLF) messages unchanged.
	served := map[[32]byte]bool{}
	for _, r := range refs {
		served[r.sha] = true
	}
	for i, raw := range generated {
		if !served[sha256.Sum256(raw)] {
			t.Fatalf("generated message %d is not served byte for byte", i)
		}
	}

	st := openTestArchive(t)
	var srcs []Source
	for u, pw := range dovecotUsers {
		srcs = append(srcs, sourceFor(t, d, u, u, pw))
	}
	h := newTestHarvester(t, st, Options{}, srcs...)
	start := time.Now()
	res := runOnce(t, h)
	elapsed := time.Since(start)
	var total int64
	for _, r := range res {
		if r.Err != nil || len(r.Folders) > 0 {
			t.Fatalf("%s: %v %v", r.Source, r.Err, r.Folders)
		}
		total += r.Archived
	}
	t.Logf("first run: %d messages in %v (%.0f msgs/s)", total, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	if total != 20000 {
		t.Fatalf("archived %d, want 20000", total)
	}
	checkArchive(t, st, refs)

	// Nothing was marked \Seen or otherwise changed.
	after := map[string]string{}
	for u, pw := range dovecotUsers {
		for _, r := range snapshot(t, d, u, pw) {
			after[refKey(r.account, r.folder, r.uid)] = flagString(r.flags)
		}
	}
	for _, r := range refs {
		if got := after[refKey(r.account, r.folder, r.uid)]; got != flagString(r.flags) {
			t.Fatalf("%s %s uid %d: flags %q became %q", r.account, r.folder, r.uid, flagString(r.flags), got)
		}
	}

	// Second run: nothing new, nothing archived.
	_, _, before, _ := st.Index().Counts(context.Background())
	res = runOnce(t, h)
	for _, r := range res {
		if r.Err != nil || r.Archived != 0 || r.Replayed != 0 {
			t.Fatalf("second run: %+v", r)
		}
	}
	if _, _, n, _ := st.Index().Counts(context.Background()); n != before {
		t.Fatalf("second run added %d deliveries", n-before)
	}

	// New mail, delivered over IMAP into two folders, comes with the next run.
	c := d.Client("bob", "bob-pw")
	defer c.Close()
	dovecottest.Append(t, c, "INBOX", g.Next(4000).Raw, time.Now().Truncate(time.Second))
	dovecottest.Append(t, c, "Projects.Cairn.Design", g.Next(4000).Raw, time.Now().Truncate(time.Second), imap.FlagFlagged)
	// A folder name beyond ASCII (modified UTF-7 on the wire, RFC 3501 §5.1.3).
	dovecottest.Append(t, c, "Projets.Résumé 日本", g.Next(4000).Raw, time.Now().Truncate(time.Second))
	res = runOnce(t, h, "bob")
	if res[0].Archived != 3 {
		t.Fatalf("third run: %+v", res[0])
	}
	refs = nil
	for u, pw := range dovecotUsers {
		refs = append(refs, snapshot(t, d, u, pw)...)
	}
	checkArchive(t, st, refs)

	stat, _ := h.Status(context.Background())
	for _, s := range stat {
		if s.LastSuccess.IsZero() || s.LastError != "" || len(s.Folders) == 0 {
			t.Errorf("status %+v", s)
		}
		for _, f := range s.Folders {
			if f.Messages != int64(f.Archived) || f.LastUID == 0 || f.UIDValidity == 0 {
				t.Errorf("%s folder status %+v", s.Name, f)
			}
		}
	}
	if rep, _ := h.State().Reports(context.Background(), "carol", 100); len(rep) == 0 {
		t.Log("no malformed corpus message reported") // informational: the parser decides
	} else {
		t.Logf("%d corpus messages archived as received and reported malformed, e.g. %s", len(rep), rep[0].Detail)
	}
}

// countingArchiver counts Archive calls and can stop the world mid-run.
type countingArchiver struct {
	ingest.Archiver
	n    atomic.Int64
	hook func(n int64)
}

func (c *countingArchiver) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	n := c.n.Add(1)
	if c.hook != nil {
		c.hook(n)
	}
	return c.Archiver.Archive(ctx, env, raw)
}

func TestDovecotIdleAndPoll(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "pw", "bob": "pw"}})
	g := gen.New(61)
	g.CRLF = true
	fill(t, d, g, "alice", "INBOX", 50)
	fill(t, d, g, "bob", "Work", 50)
	d.Chown()
	st := openTestArchive(t)
	idle := sourceFor(t, d, "idle", "alice", "pw")
	poll := sourceFor(t, d, "poll", "bob", "pw")
	poll.NoIdle, poll.PollInterval = true, 3*time.Second
	h := newTestHarvester(t, st, Options{}, idle, poll)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	count := func() int64 { _, _, n, _ := st.Index().Counts(context.Background()); return n }
	waitFor(t, 30*time.Second, func() bool { return count() == 100 })
	waitFor(t, 10*time.Second, func() bool {
		s, _ := h.Status(context.Background())
		return !s[0].LastSuccess.IsZero() && !s[1].LastSuccess.IsZero()
	})

	ca := d.Client("alice", "pw")
	defer ca.Close()
	cb := d.Client("bob", "pw")
	defer cb.Close()
	// waitCount waits until the archive holds want messages.
	waitCount := func(what string, d time.Duration, want int64) {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			n := count()
			if n == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d messages archived after %v, want %d", what, n, d, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := 0; i < 3; i++ {
		// IDLE: at once (the idle source polls hourly, so 15 s can only be
		// IDLE). The count is read before the delivery: the harvester may
		// archive the message before Append returns.
		want := count() + 1
		t0 := time.Now()
		dovecottest.Append(t, ca, "INBOX", g.Next(3000).Raw, time.Now())
		waitCount("IDLE", 15*time.Second, want)
		t.Logf("IDLE: archived %v after delivery", time.Since(t0).Round(time.Millisecond))
		// Polling: at the next poll (every 3 s; bob's source does not IDLE,
		// so without a poll the message never comes). 15 s leaves room for
		// a slow pass on a loaded machine.
		want++
		t0 = time.Now()
		dovecottest.Append(t, cb, "Work", g.Next(3000).Raw, time.Now())
		waitCount("poll", 15*time.Second, want)
		t.Logf("poll every 3s: archived %v after delivery", time.Since(t0).Round(time.Millisecond))
	}
	var refs []ref
	refs = append(refs, snapshot(t, d, "alice", "pw")...)
	refs = append(refs, snapshot(t, d, "bob", "pw")...)
	checkArchive(t, st, refs)
}

// TestDovecotUIDValidityReset changes a folder's UIDVALIDITY twice: by
// recreating it over IMAP (DELETE, CREATE, APPEND: new UIDs, other order)
// and by losing Dovecot's uidlist and indexes (same files, new UIDs).
func TestDovecotUIDValidityReset(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "pw"}})
	g := gen.New(62)
	g.CRLF = true
	msgs := fill(t, d, g, "alice", "Work", 300)
	d.Chown()
	st := openTestArchive(t)
	h := newTestHarvester(t, st, Options{BatchSize: 64}, sourceFor(t, d, "a", "alice", "pw"))
	if res := runOnce(t, h); res[0].Archived != 300 {
		t.Fatalf("%+v", res[0])
	}
	uv1 := folderStatus(t, h, "a", "Work").UIDValidity

	// 1. Recreate the folder over IMAP, messages in reverse order, two new.
	c := d.Client("alice", "pw")
	if err := c.Delete("Work").Wait(); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := len(msgs) - 1; i >= 0; i-- {
		dovecottest.Append(t, c, "Work", msgs[i], date)
	}
	dovecottest.Append(t, c, "Work", g.Next(3000).Raw, date)
	dovecottest.Append(t, c, "Work", g.Next(3000).Raw, date)
	c.Close()
	res := runOnce(t, h)
	fs := folderStatus(t, h, "a", "Work")
	if res[0].Archived != 2 || res[0].Replayed != 300 || fs.UIDValidity == uv1 || fs.Resets != 1 {
		t.Fatalf("after recreating: %+v, status %+v", res[0], fs)
	}
	checkArchiveCount(t, st, 302)

	// 2. Lose Dovecot's uidlist and indexes: it renumbers the same files.
	d.Stop()
	dir := filepath.Join(d.Maildir("alice"), ".Work")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "dovecot") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	os.RemoveAll(filepath.Join(d.Maildir("alice"), "dovecot.list.index"))
	os.Remove(filepath.Join(d.Maildir("alice"), "dovecot.list.index.log"))
	d.Folder("alice", "Work") // keep Maildir++'s folder marker
	fill(t, d, g, "alice", "Work", 5)
	d.Chown()
	d.Start()
	res = runOnce(t, h)
	fs2 := folderStatus(t, h, "a", "Work")
	if res[0].Archived != 5 || res[0].Replayed != 302 || fs2.UIDValidity == fs.UIDValidity || fs2.Resets != 2 {
		t.Fatalf("after losing the uidlist: %+v, status %+v (was %+v)", res[0], fs2, fs)
	}
	checkByKey(t, st, snapshot(t, d, "alice", "pw"))
	checkArchiveCount(t, st, 307)
}

// checkByKey checks that every message in the mailbox has its delivery,
// found by DeliveryKey (mailbox and bytes), and that the bytes match.
func checkByKey(t testing.TB, st *archive.Store, refs []ref) {
	t.Helper()
	for _, r := range refs {
		key := DeliveryKey("127.0.0.1", r.account, r.folder, '.', r.sha)
		_, msg, err := st.Index().DeliveryByKey(context.Background(), key)
		if err != nil {
			t.Fatalf("%s uid %d: %v", r.folder, r.uid, err)
		}
		if got := archivedSHA(t, st, msg); got != r.sha {
			t.Fatalf("%s uid %d: archived bytes differ", r.folder, r.uid)
		}
	}
}

func checkArchiveCount(t testing.TB, st *archive.Store, want int64) {
	t.Helper()
	if _, _, n, _ := st.Index().Counts(context.Background()); n != want {
		t.Fatalf("%d deliveries, want %d", n, want)
	}
}

// TestDovecotJournalMode: journal mode empties the source only of archived
// messages: a message the archive refuses stays, and so does mail another
// client marked \Deleted that was not archived (no plain EXPUNGE).
func TestDovecotJournalMode(t *testing.T) {
	for _, mode := range []JournalMode{JournalExpunge, JournalMove} {
		t.Run(string(mode), func(t *testing.T) {
			d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"journal": "pw"}})
			g := gen.New(63)
			g.CRLF = true
			fill(t, d, g, "journal", "INBOX", 1200)
			d.Chown()
			c := d.Client("journal", "pw")
			// Too large for the archive, and marked \Deleted by another client.
			big := g.Next(300_000).Raw
			bigUID := dovecottest.Append(t, c, "INBOX", big, time.Now(), imap.FlagDeleted)
			refs := snapshot(t, d, "journal", "pw")
			c.Close()

			st := openTestArchive(t)
			src := sourceFor(t, d, "j", "journal", "pw")
			src.Journal = mode
			if mode == JournalMove {
				src.MoveTo = "Archived/Done"
			}
			h := newTestHarvester(t, st, Options{BatchSize: 100, MaxMessageSize: 200_000}, src)
			res := runOnce(t, h)
			if res[0].Err != nil || res[0].Archived != 1200 || res[0].Removed != 1200 || res[0].Skipped != 1 {
				t.Fatalf("%+v", res[0])
			}
			var archived []ref
			for _, r := range refs {
				if r.uid != bigUID {
					archived = append(archived, r)
				}
			}
			checkArchive(t, st, archived)
			c = d.Client("journal", "pw")
			defer c.Close()
			_, left := dovecottest.FetchAll(t, c, "INBOX")
			if len(left) != 1 || left[0].UID != bigUID || !bytes.Equal(left[0].Raw, big) {
				t.Fatalf("left in the journal mailbox: %d messages", len(left))
			}
			if mode == JournalMove {
				if _, moved := dovecottest.FetchAll(t, c, "Archived.Done"); len(moved) != 1200 {
					t.Fatalf("%d moved, want 1200", len(moved))
				}
			}
			// New journal mail is archived and removed on the next run;
			// the refused message is not tried again.
			dovecottest.Append(t, c, "INBOX", g.Next(3000).Raw, time.Now())
			res = runOnce(t, h)
			if res[0].Archived != 1 || res[0].Removed != 1 || res[0].Skipped != 0 {
				t.Fatalf("second run %+v", res[0])
			}
			if _, left = dovecottest.FetchAll(t, c, "INBOX"); len(left) != 1 {
				t.Fatalf("%d left after the second run", len(left))
			}
		})
	}
}

// TestDovecotOutage stops Dovecot in the middle of a run: the harvester
// retries with backoff, reports the outage in its status, and resumes when
// Dovecot is back, with no message missing or duplicated.
func TestDovecotOutage(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "pw"}})
	g := gen.New(64)
	g.CRLF = true
	fill(t, d, g, "alice", "INBOX", 3000)
	fill(t, d, g, "alice", "Old", 1000)
	d.Chown()
	refs := snapshot(t, d, "alice", "pw")
	st := openTestArchive(t)
	var once sync.Once
	stopped := make(chan struct{})
	ca := &countingArchiver{Archiver: st}
	// From the 1,500th message on, every Archive waits until Dovecot is
	// down: the harvester cannot finish the mailbox before the outage,
	// however fast the archive is. A small memory budget bounds what it
	// has already fetched.
	ca.hook = func(n int64) {
		if n >= 1500 {
			once.Do(func() { go func() { d.Stop(); close(stopped) }() })
			<-stopped
		}
	}
	h := newTestHarvester(t, ca, Options{BatchSize: 200, MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second, MemoryBudget: 2 << 20},
		sourceFor(t, d, "a", "alice", "pw"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-stopped
	count := func() int64 { _, _, n, _ := st.Index().Counts(context.Background()); return n }
	waitFor(t, 20*time.Second, func() bool {
		s, _ := h.Status(context.Background())
		return s[0].Failures >= 2 && !s[0].Connected
	})
	s, _ := h.Status(context.Background())
	n := count()
	t.Logf("during the outage: %d of 4000 archived, failures %d, last error %q", n, s[0].Failures, s[0].LastError)
	if n >= 4000 {
		t.Fatal("Dovecot stopped after the run, not during it")
	}
	time.Sleep(2 * time.Second)
	if count() != n {
		t.Fatal("archiving went on while Dovecot was down")
	}
	d.Start()
	waitFor(t, 60*time.Second, func() bool { return count() == 4000 })
	waitFor(t, 10*time.Second, func() bool {
		s, _ := h.Status(context.Background())
		return s[0].LastSuccess.After(s[0].LastErrorAt)
	})
	checkArchive(t, st, refs)
	s, _ = h.Status(context.Background())
	if s[0].LastError == "" || s[0].Errors < 2 || s[0].Failures != 0 {
		t.Fatalf("the outage is not reported: %+v", s[0])
	}
	t.Logf("after: %d errors, last %q at %v; last success %v; %d archive calls for 4000 messages",
		s[0].Errors, s[0].LastError, s[0].LastErrorAt.Format(time.RFC3339Nano), s[0].LastSuccess.Format(time.RFC3339Nano), ca.n.Load())
}

// TestDovecotBrokenMessage: Dovecot cannot read one message file (and drops
// the connection when asked for it). The harvester archives the rest,
// skips that one after MaxAttempts and reports it, instead of retrying for
// ever.
func TestDovecotBrokenMessage(t *testing.T) {
	d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "pw"}})
	g := gen.New(65)
	g.CRLF = true
	md := d.Folder("alice", "INBOX")
	var broken string
	for i := 0; i < 60; i++ {
		m := g.Next(3000)
		p, err := md.Deliver(m.Raw, m.Date, "")
		if err != nil {
			t.Fatal(err)
		}
		if i == 25 {
			broken = p
		}
	}
	d.Chown()
	// Owned by root and unreadable: Dovecot (as nobody) gets EACCES.
	os.Chown(broken, 0, 0)
	os.Chmod(broken, 0)
	refs := snapshotReadable(t, d)
	st := openTestArchive(t)
	h := newTestHarvester(t, st, Options{BatchSize: 20, MaxAttempts: 3}, sourceFor(t, d, "a", "alice", "pw"))
	res := runOnce(t, h)
	if res[0].Err != nil || res[0].Archived != 59 || res[0].Skipped != 1 {
		t.Fatalf("%+v", res[0])
	}
	checkArchive(t, st, refs)
	reps, _ := h.State().Reports(context.Background(), "a", 10)
	if len(reps) != 1 || reps[0].Kind != ReportSkipped || !strings.Contains(reps[0].Detail, "attempts") {
		t.Fatalf("reports %+v", reps)
	}
	t.Logf("reported: uid %d: %s", reps[0].UID, reps[0].Detail)
	// Not tried again.
	if res = runOnce(t, h); res[0].Err != nil || res[0].Skipped != 0 || res[0].Archived != 0 {
		t.Fatalf("second run %+v", res[0])
	}
}

// snapshotReadable is snapshot for a folder with an unreadable message:
// message by message, leaving out the one Dovecot fails on.
func snapshotReadable(t testing.TB, d *dovecottest.Server) []ref {
	t.Helper()
	var out []ref
	for uid := uint32(1); uid <= 60; uid++ {
		c := d.Client("alice", "pw")
		sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
			UID: true, Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		c.Close()
		if err != nil || len(msgs) != 1 {
			continue
		}
		m := msgs[0]
		var raw []byte
		for _, s := range m.BodySection {
			raw = s.Bytes
		}
		out = append(out, ref{account: "alice", folder: "INBOX", uidValidity: sel.UIDValidity, uid: uid,
			sha: sha256.Sum256(raw), flags: m.Flags, date: m.InternalDate})
	}
	if len(out) != 59 {
		t.Fatalf("%d readable messages, want 59", len(out))
	}
	return out
}

// TestDovecotTLSAndOAuth: implicit TLS and STARTTLS verified against the
// instance's private CA (and refused without it), and XOAUTH2 and
// OAUTHBEARER checked by Dovecot's oauth2 passdb against an introspection
// endpoint.
func TestDovecotTLSAndOAuth(t *testing.T) {
	var introspections atomic.Int64
	intro := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		introspections.Add(1)
		r.ParseForm()
		tok := r.Form.Get("token")
		if tok == "" {
			tok = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		w.Header().Set("Content-Type", "application/json")
		if tok == "good-token" {
			fmt.Fprint(w, `{"active":true,"username":"alice"}`)
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	}))
	defer intro.Close()
	d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "pw"}, TLS: true, OAuthIntrospect: intro.URL})
	g := gen.New(66)
	g.CRLF = true
	fill(t, d, g, "alice", "INBOX", 20)
	d.Chown()
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("good-token\n"), 0o600)
	for _, tc := range []struct {
		name   string
		mutate func(*Source)
		ok     bool
		errHas string
	}{
		{"implicit TLS with ca_file", func(s *Source) { s.TLS, s.Port, s.CAFile = TLSImplicit, d.TLSPort, d.CAFile }, true, ""},
		{"STARTTLS with ca_file", func(s *Source) { s.TLS, s.CAFile = TLSStartTLS, d.CAFile }, true, ""},
		{"implicit TLS, system roots", func(s *Source) { s.TLS, s.Port = TLSImplicit, d.TLSPort }, false, "certificate"},
		{"STARTTLS, system roots", func(s *Source) { s.TLS = TLSStartTLS }, false, "certificate"},
		{"xoauth2 over TLS", func(s *Source) {
			s.TLS, s.Port, s.CAFile, s.Auth, s.PasswordFile, s.TokenFile = TLSImplicit, d.TLSPort, d.CAFile, AuthXOAUTH2, "", tok
		}, true, ""},
		{"oauthbearer over STARTTLS, token command", func(s *Source) {
			s.TLS, s.CAFile, s.Auth, s.PasswordFile, s.TokenCommand = TLSStartTLS, d.CAFile, AuthOAuthBearer, "", "cat "+tok
		}, true, ""},
		{"oauthbearer, bad token", func(s *Source) {
			s.TLS, s.CAFile, s.Auth, s.PasswordFile, s.TokenCommand = TLSStartTLS, d.CAFile, AuthOAuthBearer, "", "echo bad-token"
		}, false, "authentication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := sourceFor(t, d, "tls", "alice", "pw")
			tc.mutate(&src)
			st := openTestArchive(t)
			h := newTestHarvester(t, st, Options{MaxAttempts: 1}, src)
			res := runOnce(t, h)
			if ok := res[0].Err == nil && res[0].Archived == 20; ok != tc.ok {
				t.Fatalf("%+v", res[0])
			}
			if !tc.ok && !strings.Contains(res[0].Err.Error(), tc.errHas) {
				t.Fatalf("error %v does not mention %q", res[0].Err, tc.errHas)
			}
			if !tc.ok {
				t.Logf("refused: %v", res[0].Err)
			}
		})
	}
	if introspections.Load() == 0 {
		t.Fatal("Dovecot never asked the introspection endpoint")
	}
}
