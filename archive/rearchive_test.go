package archive

import (
	"context"
	"os"
	"testing"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// Bytes archived again after their message was disposed or erased become a
// new message under new object names: the old names stay with the
// tombstoned message, whose key object must stay gone (verify checks it).
func TestRearchiveAfterDisposal(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	g := gen.New(41)
	for _, kind := range []string{ledger.KindDispose, ledger.KindErase} {
		raw := g.Next(3000).Raw
		old := h.archive(raw, env("a@example.com")).Seq
		oldRow, _ := h.st.Index().Message(ctx, old)
		if _, err := h.st.Dispose(ctx, old, kind, map[string]string{"reason": "test"}); err != nil {
			t.Fatal(err)
		}
		rc := h.archive(raw, env("b@example.com"))
		if rc.Duplicate || rc.MessageSeq == old {
			t.Fatalf("%s: re-archived as %+v", kind, rc)
		}
		row, _ := h.st.Index().Message(ctx, rc.MessageSeq)
		if row.Object == oldRow.Object || row.KeyObject == oldRow.KeyObject {
			t.Fatalf("%s: the new message reuses the disposed one's object names", kind)
		}
		if got := h.cat(rc.MessageSeq); string(got) != string(raw) {
			t.Fatalf("%s: the new message does not read back", kind)
		}
		// And a third time: the next free generation again.
		if _, err := h.st.Dispose(ctx, rc.MessageSeq, kind, nil); err != nil {
			t.Fatal(err)
		}
		rc2 := h.archive(raw, env("c@example.com"))
		row2, _ := h.st.Index().Message(ctx, rc2.MessageSeq)
		if row2.KeyObject == row.KeyObject || row2.KeyObject == oldRow.KeyObject {
			t.Fatalf("%s: third copy reuses a name", kind)
		}
	}
	if rep := h.verify(true); !rep.OK() || len(rep.Disposed) != 4 {
		t.Fatalf("verify after re-archiving: %v (disposed %d)", rep.Problems, len(rep.Disposed))
	}
	// The index rebuilt from the store agrees.
	h.st.Close()
	h.st = nil
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(h.dir + "/index.db" + sfx)
	}
	h.open()
	if rep := h.verify(true); !rep.OK() || len(rep.Disposed) != 4 {
		t.Fatalf("verify after reindex: %v", rep.Problems)
	}
}
