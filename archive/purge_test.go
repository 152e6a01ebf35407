package archive

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// After an erasure, the erased message's blind search tokens stay in older
// FTS4 segments until they merge: Index.PurgeText removes them from the
// files, and keeps the other messages searchable.
func TestPurgeTextAfterErasure(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	g := gen.New(61)
	var msgs []gen.Message
	var seqs []uint64
	for i := 0; i < 40; i++ {
		m := g.Next(3000)
		msgs = append(msgs, m)
		seqs = append(seqs, h.archive(m.Raw, env("a@example.com")).Seq)
		if i%10 == 9 {
			// Several segments, as commits in the background make them.
			if err := h.st.FlushSearch(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	token := func(i int) []byte { return []byte(BlindToken(h.ring.SearchKey(), strings.ToLower(msgs[i].Token))) }
	in := func(tok []byte) bool {
		found := false
		walkFiles(h.dir, func(_ string, b []byte) { found = found || bytes.Contains(b, tok) })
		return found
	}
	for _, i := range []int{3, 17} {
		if _, err := h.st.Dispose(ctx, seqs[i], ledger.KindErase, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.st.Index().PurgeText(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 17} {
		if in(token(i)) {
			t.Errorf("the blind token of erased message %d is still in the files", seqs[i])
		}
	}
	if !in(token(5)) {
		t.Fatal("a kept message's token is gone")
	}
	var n int
	if err := h.st.Index().DB().QueryRow(`SELECT COUNT(*) FROM fts WHERE fts MATCH ?`, string(token(5))).Scan(&n); err != nil || n != 1 {
		t.Fatalf("kept message no longer found by its word: %d %v", n, err)
	}
}
