package index

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// shaMessage is message seq with bytes b: their SHA-256 starts with b's
// nibbles swapped, so that b = 1, 2, 3 ... fall in merge parts 1, 2, 3 ...
func shaMessage(seq uint64, b byte) MessageRow {
	m := MessageRow{Seq: seq, Object: fmt.Sprint("o", seq), KeyObject: fmt.Sprint("k", seq), Header: []byte{}, Structure: []byte{}}
	m.SHA256[0], m.SHA256[31] = b<<4|b>>4, 0xee
	return m
}

func shaOf(b byte) [32]byte { return shaMessage(0, b).SHA256 }

func lowerMergeAt(t *testing.T, n int) {
	old := mergeAt
	mergeAt = n
	t.Cleanup(func() { mergeAt = old })
}

func countRows(t *testing.T, ix *Index, table string) int {
	t.Helper()
	var n int
	if err := ix.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func commitOne(t *testing.T, ix *Index, ms ...MessageRow) {
	t.Helper()
	b := &Batch{}
	for _, m := range ms {
		b.Entries = append(b.Entries, EntryRow{Seq: m.Seq, Kind: "message", Line: []byte("{}")})
		b.Messages = append(b.Messages, m)
	}
	if err := ix.Commit(b); err != nil {
		t.Fatal(err)
	}
}

func wantSeq(t *testing.T, ix *Index, who string, b byte, want uint64) {
	t.Helper()
	seq, _, err := ix.MessageBySHA(context.Background(), shaOf(b))
	if err != nil || seq != want {
		t.Fatalf("%s: bytes %d: seq %d, %v; want %d", who, b, seq, err, want)
	}
}

func wantAbsent(t *testing.T, ix *Index, who string, b byte) {
	t.Helper()
	if seq, _, err := ix.MessageBySHA(context.Background(), shaOf(b)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%s: bytes %d: seq %d, %v; want not found", who, b, seq, err)
	}
}

// Once the recent level holds mergeAt hashes, each write first moves one
// part of it (by the hash's first four bits, in turn) to the merged
// level; a message's bytes are found in either, by the writer (its copy in
// memory), by another process (shas_new), and after a restart; bytes
// already in either level, or earlier in the same transaction, are a
// second copy: no hash, and a problem naming the first.
func TestSHALevels(t *testing.T) {
	lowerMergeAt(t, 3)
	path := filepath.Join(t.TempDir(), "index.db")
	w, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	if w.legacy {
		t.Fatal("a new index is in legacy mode")
	}
	w.FilterSHAs()
	<-w.loadedSHAs
	for seq := uint64(1); seq <= 7; seq++ {
		commitOne(t, w, shaMessage(seq, byte(seq)))
	}
	// The 4th write merged part 0 (no hash), the 5th to 7th parts 1 to 3
	// (bytes 1 to 3).
	if n, r := countRows(t, w, "shas"), countRows(t, w, "shas_new"); n != 3 || r != 4 {
		t.Fatalf("levels hold %d merged and %d recent hashes, want 3 and 4", n, r)
	}
	if n := w.recent.size(); n != 4 {
		t.Fatalf("the writer's copy of the recent level holds %d, want 4", n)
	}
	rows, err := w.DB().Query(`SELECT seq FROM shas ORDER BY sha`)
	if err != nil {
		t.Fatal(err)
	}
	var merged []int64
	for rows.Next() {
		var seq int64
		rows.Scan(&seq)
		merged = append(merged, seq)
	}
	rows.Close()
	if fmt.Sprint(merged) != "[1 2 3]" {
		t.Fatalf("merged level holds messages %v, want [1 2 3]", merged)
	}
	r, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for b := byte(1); b <= 7; b++ {
		wantSeq(t, w, "writer", b, uint64(b))
		wantSeq(t, r, "reader", b, uint64(b))
	}
	wantAbsent(t, w, "writer", 99)
	wantAbsent(t, r, "reader", 99)

	// Second copies: of a merged hash, a recent one, and one earlier in
	// the same transaction.
	commitOne(t, w, shaMessage(8, 2), shaMessage(9, 7), shaMessage(10, 11), shaMessage(11, 11))
	ctx := context.Background()
	for seq, first := range map[uint64]uint64{8: 2, 9: 7, 11: 10} {
		m, err := w.Message(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.SHA256 != ([32]byte{}) || len(m.Problems) != 1 || m.Problems[0] != fmt.Sprintf("the same bytes as message %d", first) {
			t.Fatalf("message %d: %x %q, want no hash and the same bytes as message %d", seq, m.SHA256, m.Problems, first)
		}
	}
	wantSeq(t, w, "writer", 11, 10)
	wantSeq(t, r, "reader", 11, 10)
	ok := true
	w.EachMessage(ctx, func(_ *MessageRow, macOK bool) error { ok = ok && macOK; return nil })
	if !ok {
		t.Fatal("a row's MAC does not verify")
	}
	if n, r := countRows(t, w, "shas"), countRows(t, w, "shas_new"); n+r != 8 {
		t.Fatalf("levels hold %d + %d hashes, want the 8 distinct ones", n, r)
	}

	// A restart loads the recent level again.
	w.Close()
	if w, err = Open(path, []byte("mac key")); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.FilterSHAs()
	<-w.loadedSHAs
	for b := byte(1); b <= 7; b++ {
		wantSeq(t, w, "writer after a restart", b, uint64(b))
	}
	wantSeq(t, w, "writer after a restart", 11, 10)
	wantAbsent(t, w, "writer after a restart", 99)
	commitOne(t, w, shaMessage(12, 11))
	if m, _ := w.Message(ctx, 12); m.SHA256 != ([32]byte{}) {
		t.Fatal("after a restart, a recent hash is archived again as new bytes")
	}
}

// Bytes taken out of the archive (erased or disposed of) leave both levels
// and the writer's copy: when they arrive again, they are a new message.
func TestSHAGoneIsNewAgain(t *testing.T) {
	lowerMergeAt(t, 1)
	path := filepath.Join(t.TempDir(), "index.db")
	w, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.FilterSHAs()
	<-w.loadedSHAs
	for seq := uint64(1); seq <= 3; seq++ {
		commitOne(t, w, shaMessage(seq, byte(seq)))
	}
	// Bytes 1 merged by the 3rd write (part 1), 2 by the next (part 2),
	// 3 recent.
	if err := w.Commit(&Batch{Gone: []Gone{{Seq: 1, State: StateErased}, {Seq: 3, State: StateDisposed}}}); err != nil {
		t.Fatal(err)
	}
	if n, r := countRows(t, w, "shas"), countRows(t, w, "shas_new"); n != 1 || r != 0 {
		t.Fatalf("levels hold %d merged and %d recent hashes, want 1 (bytes 2) and 0", n, r)
	}
	r, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, ix := range []struct {
		who string
		ix  *Index
	}{{"writer", w}, {"reader", r}} {
		wantAbsent(t, ix.ix, ix.who, 1)
		wantAbsent(t, ix.ix, ix.who, 3)
		wantSeq(t, ix.ix, ix.who, 2, 2)
	}
	commitOne(t, w, shaMessage(4, 1), shaMessage(5, 3))
	for b, seq := range map[byte]uint64{1: 4, 3: 5} {
		m, err := w.Message(context.Background(), seq)
		if err != nil || m.SHA256 != shaOf(b) || len(m.Problems) != 0 {
			t.Fatalf("bytes %d again: %+v %v, want a new message with its hash", b, m, err)
		}
		wantSeq(t, w, "writer", b, seq)
	}
}

// An index made by schema 2 (a UNIQUE index on messages.sha256) is used
// as it is: the same lookups and second copies, the new tables unused.
func TestLegacySHAIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	var messages string
	for _, s := range schema {
		if strings.Contains(s, "CREATE TABLE IF NOT EXISTS messages (") {
			messages = s
		}
	}
	legacy := strings.Replace(messages, "sha256        BLOB,", "sha256        BLOB UNIQUE,", 1)
	if legacy == messages {
		t.Fatal("the messages table's definition changed: update this test")
	}
	for _, q := range []string{legacy, schema[0], `INSERT INTO meta(k, v) VALUES('schema', 2)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	ix, err := Open(path, []byte("mac key"))
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if !ix.legacy {
		t.Fatal("a schema 2 index is not in legacy mode")
	}
	ix.FilterSHAs()
	<-ix.loadedSHAs
	commitOne(t, ix, shaMessage(1, 1), shaMessage(2, 1))
	commitOne(t, ix, shaMessage(3, 3))
	wantSeq(t, ix, "legacy", 1, 1)
	wantSeq(t, ix, "legacy", 3, 3)
	wantAbsent(t, ix, "legacy", 99)
	if m, _ := ix.Message(context.Background(), 2); m.SHA256 != ([32]byte{}) || len(m.Problems) != 1 {
		t.Fatalf("second copy: %+v", m)
	}
	if n := countRows(t, ix, "shas") + countRows(t, ix, "shas_new"); n != 0 {
		t.Fatalf("legacy mode wrote %d rows to the new tables", n)
	}
	var v int
	ix.DB().QueryRow(`SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'schema'`).Scan(&v)
	if v != 2 {
		t.Fatalf("schema %d, want 2 kept", v)
	}
}
