package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTest(t *testing.T) *Index {
	t.Helper()
	ix, err := Open(filepath.Join(t.TempDir(), "index.db"), []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func match(t *testing.T, ix *Index, q string) []int64 {
	t.Helper()
	rows, err := ix.DB().Query(`SELECT docid FROM fts WHERE fts MATCH ? ORDER BY docid`, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var d int64
		rows.Scan(&d)
		out = append(out, d)
	}
	return out
}

func TestFullTextBackgroundAndDelete(t *testing.T) {
	ix := openTest(t)
	ctx := context.Background()
	b := &Batch{Tokens: map[uint64]string{1: "aaa bbb", 2: "bbb ccc", 3: "ccc ddd"}}
	if err := ix.Commit(b); err != nil {
		t.Fatal(err)
	}
	if got := match(t, ix, "bbb"); len(got) != 0 {
		t.Fatalf("indexed before IndexText: %v", got)
	}
	if n, err := ix.IndexText(ctx, 2); err != nil || n != 2 {
		t.Fatalf("IndexText: %d %v", n, err)
	}
	if got := match(t, ix, "ccc"); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after a partial run: %v", got)
	}
	if err := ix.FlushText(ctx); err != nil {
		t.Fatal(err)
	}
	if got := match(t, ix, "ccc"); len(got) != 2 {
		t.Fatalf("after flush: %v", got)
	}
	// Delete an indexed and a not-yet-indexed message.
	if err := ix.DeleteText(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ix.Commit(&Batch{Tokens: map[uint64]string{4: "eee"}})
	if err := ix.DeleteText(ctx, 4); err != nil {
		t.Fatal(err)
	}
	ix.FlushText(ctx)
	if got := match(t, ix, "bbb"); len(got) != 1 || got[0] != 1 {
		t.Fatalf("after delete: %v", got)
	}
	if got := match(t, ix, "eee"); len(got) != 0 {
		t.Fatalf("deleted before indexing, found: %v", got)
	}
	// The integrity check of FTS4 agrees with its content table.
	if _, err := ix.DB().Exec(`INSERT INTO fts(fts) VALUES('integrity-check')`); err != nil {
		t.Fatalf("fts integrity: %v", err)
	}
}

func TestMessageRowMAC(t *testing.T) {
	ix := openTest(t)
	ctx := context.Background()
	m := MessageRow{Seq: 7, Size: 10, Object: "messages/abc/x", KeyObject: "keys/abc/y", ArchivedAt: time.Unix(5, 0), Subject: "hi", Header: []byte("H"), Structure: []byte{1}}
	m.SHA256[0] = 1
	if err := ix.Commit(&Batch{Messages: []MessageRow{m}}); err != nil {
		t.Fatal(err)
	}
	got, err := ix.Message(ctx, 7)
	if err != nil || got.Subject != "hi" {
		t.Fatal(err)
	}
	if _, err := ix.Message(ctx, 8); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing message: %v", err)
	}
	check := func() bool {
		ok := true
		ix.EachMessage(ctx, func(_ *MessageRow, macOK bool) error { ok = ok && macOK; return nil })
		return ok
	}
	if !check() {
		t.Fatal("fresh row fails its MAC")
	}
	ix.DB().Exec(`UPDATE messages SET subject = 'changed'`)
	if check() {
		t.Fatal("edited row passes its MAC")
	}
}

// The ledger may hold the same bytes twice (a retry after a lost
// acknowledgement); the index keeps the SHA-256 on the first and says so
// on the second instead of refusing the batch (which would wedge reindex).
func TestSameBytesTwice(t *testing.T) {
	ix := openTest(t)
	m := MessageRow{Seq: 1, Object: "a", KeyObject: "b", Header: []byte{}, Structure: []byte{}}
	m.SHA256[0] = 9
	m2 := m
	m2.Seq = 2
	if err := ix.Commit(&Batch{Messages: []MessageRow{m, m2}}); err != nil {
		t.Fatal(err)
	}
	seq, _, err := ix.MessageBySHA(context.Background(), m.SHA256)
	if err != nil || seq != 1 {
		t.Fatalf("lookup: %d %v", seq, err)
	}
	got, _ := ix.Message(context.Background(), 2)
	if got.SHA256 != ([32]byte{}) || len(got.Problems) != 1 {
		t.Fatalf("second copy: %+v", got)
	}
	ok := true
	ix.EachMessage(context.Background(), func(_ *MessageRow, macOK bool) error { ok = ok && macOK; return nil })
	if !ok {
		t.Fatal("MAC of the second copy does not verify")
	}
}

// Head is the largest entry seq without a query: as found at Open, then
// as this Index's commits move it; a failed commit does not move it.
func TestHead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	if h := ix.Head(); h != -1 {
		t.Fatalf("empty index: Head %d, want -1", h)
	}
	entry := func(seq uint64) EntryRow {
		return EntryRow{Seq: seq, Kind: "event", Line: []byte(`{"seq":` + fmt.Sprint(seq) + `}`)}
	}
	if err := ix.Commit(&Batch{Entries: []EntryRow{entry(0), entry(1), entry(2)}}); err != nil {
		t.Fatal(err)
	}
	if h := ix.Head(); h != 2 {
		t.Fatalf("after entries 0-2: Head %d", h)
	}
	if err := ix.Commit(&Batch{Entries: []EntryRow{entry(2)}}); err == nil {
		t.Fatal("a second entry 2 was committed")
	}
	if err := ix.Commit(&Batch{Entries: []EntryRow{entry(3)}}); err != nil || ix.Head() != 3 {
		t.Fatalf("after entry 3: Head %d (%v)", ix.Head(), err)
	}
	ix.Close()
	if ix, err = Open(path, []byte("mac key")); err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if h := ix.Head(); h != 3 {
		t.Fatalf("reopened: Head %d, want 3", h)
	}
}

// With FilterSHAs, MessageBySHA answers from the filter for bytes never
// archived, and still finds what earlier runs and this one committed.
func TestSHAFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	msg := func(seq uint64, b byte) MessageRow {
		m := MessageRow{Seq: seq, Object: fmt.Sprint("o", seq), KeyObject: fmt.Sprint("k", seq), Header: []byte{}, Structure: []byte{}}
		m.SHA256[0] = b
		return m
	}
	old := msg(1, 1)
	if err := ix.Commit(&Batch{Entries: []EntryRow{{Seq: 1, Kind: "message", Line: []byte("{}")}}, Messages: []MessageRow{old}}); err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if ix, err = Open(path, []byte("mac key")); err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ix.FilterSHAs()
	<-ix.loadedSHAs
	f := ix.shas.Load()
	ctx := context.Background()
	if seq, _, err := ix.MessageBySHA(ctx, old.SHA256); err != nil || seq != 1 {
		t.Fatalf("bytes of an earlier run: %d %v", seq, err)
	}
	fresh := msg(2, 2)
	if !f.Absent(string(fresh.SHA256[:])) {
		t.Fatal("the loaded filter does not rule out bytes never archived")
	}
	if _, _, err := ix.MessageBySHA(ctx, fresh.SHA256); !errors.Is(err, ErrNotFound) {
		t.Fatalf("bytes never archived: %v", err)
	}
	if err := ix.Commit(&Batch{Entries: []EntryRow{{Seq: 2, Kind: "message", Line: []byte("{}")}}, Messages: []MessageRow{fresh}}); err != nil {
		t.Fatal(err)
	}
	if seq, _, err := ix.MessageBySHA(ctx, fresh.SHA256); err != nil || seq != 2 {
		t.Fatalf("bytes committed after the load: %d %v", seq, err)
	}
}

// TestScrubFailsWhileAReaderHoldsTheWAL: a reader on an older snapshot
// keeps WAL frames in use; Scrub must say so instead of returning as if the
// WAL were empty, and succeed (the WAL truncated) once the reader is done.
func TestScrubFailsWhileAReaderHoldsTheWAL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "index.db")
	ix, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	defer func(w time.Duration) { scrubWait = w }(scrubWait)
	scrubWait = 300 * time.Millisecond
	ctx := context.Background()
	if err := ix.Commit(&Batch{Tokens: map[uint64]string{1: "aaa"}}); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM fts_docs`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("reader: %d %v", n, err)
	}
	// Frames the reader's snapshot does not include.
	if err := ix.Commit(&Batch{Tokens: map[uint64]string{2: "bbb"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = ix.Scrub(ctx)
	if err == nil || !strings.Contains(err.Error(), "stayed in use") {
		t.Fatalf("Scrub with a reader on an older snapshot: %v", err)
	}
	if d := time.Since(start); d < scrubWait || d > 5*time.Second {
		t.Fatalf("Scrub waited %s for the reader, want about %s", d, scrubWait)
	}
	if !ix.ScrubPending() {
		t.Fatal("a failed Scrub is not pending")
	}
	tx.Rollback()
	if err := ix.Scrub(ctx); err != nil {
		t.Fatalf("Scrub after the reader finished: %v", err)
	}
	if ix.ScrubPending() {
		t.Fatal("still pending after a Scrub that succeeded")
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Fatalf("WAL after Scrub: %v %v", fi, err)
	}
}

// TestScrubWaitsOutAConcurrentCheckpoint: while another connection
// checkpoints (a commit's automatic checkpoint, another process), SQLite
// answers TRUNCATE with busy at once; Scrub must try again, not return with
// the WAL still holding frames.
func TestScrubWaitsOutAConcurrentCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			if _, err := other.Exec(`PRAGMA wal_checkpoint(PASSIVE)`); err == nil {
				n++
			}
		}
	}()
	ctx := context.Background()
	for i := range 100 {
		if err := ix.Commit(&Batch{Tokens: map[uint64]string{uint64(i + 1): "aaa"}}); err != nil {
			t.Fatal(err)
		}
		if err := ix.Scrub(ctx); err != nil {
			t.Fatalf("Scrub %d: %v", i, err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 0 {
			t.Fatalf("Scrub %d returned with the WAL at %d bytes", i, fi.Size())
		}
	}
	close(stop)
	if n := <-done; n == 0 {
		t.Fatal("no concurrent checkpoint ran")
	}
}

// An index made before the hint columns gets them at Open; its rows have
// none (their reads look objects up), new rows keep theirs, and the hints
// stay outside the row MAC.
func TestAddedColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	ix, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	old := MessageRow{Seq: 1, Object: "messages/a", KeyObject: "keys/a", Header: []byte{}, Structure: []byte{}}
	if err := ix.Commit(&Batch{Messages: []MessageRow{old}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range addedColumns {
		if _, err := ix.DB().Exec(`ALTER TABLE ` + c.table + ` DROP COLUMN ` + c.column); err != nil {
			t.Fatal(err)
		}
	}
	ix.Close()
	ix, err = Open(path, []byte("mac key"))
	if err != nil {
		t.Fatalf("open an index without the added columns: %v", err)
	}
	defer ix.Close()
	ctx := context.Background()
	got, err := ix.Message(ctx, 1)
	if err != nil || got.ObjectHint != nil || got.KeyHint != nil {
		t.Fatalf("old row: %+v %v", got, err)
	}
	m := MessageRow{Seq: 2, Object: "messages/b", KeyObject: "keys/b", Header: []byte{}, Structure: []byte{},
		ObjectHint: []byte{1, 2, 3}, KeyHint: []byte{1, 4, 5}}
	if err := ix.Commit(&Batch{Messages: []MessageRow{m}}); err != nil {
		t.Fatal(err)
	}
	got, err = ix.Message(ctx, 2)
	if err != nil || string(got.ObjectHint) != "\x01\x02\x03" || string(got.KeyHint) != "\x01\x04\x05" {
		t.Fatalf("new row: %+v %v", got, err)
	}
	ix.DB().Exec(`UPDATE messages SET object_hint = x'0109', key_hint = NULL`)
	ok := true
	ix.EachMessage(ctx, func(_ *MessageRow, macOK bool) error { ok = ok && macOK; return nil })
	if !ok {
		t.Fatal("a row whose hints changed fails its MAC")
	}
}

// Every connection of the index's pool checkpoints its WAL at
// walCheckpointPages, not SQLite's default 1,000: the pragma is per
// connection, set by the driver's connect hook.
func TestEveryConnectionHasTheCheckpointThreshold(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "index.db"), []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	var conns []*sql.Conn
	for range 3 {
		c, err := ix.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var n int
		if err := c.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != walCheckpointPages {
			t.Errorf("connection %d: wal_autocheckpoint %d, want %d", len(conns), n, walCheckpointPages)
		}
	}
	for _, c := range conns {
		c.Close()
	}
}
