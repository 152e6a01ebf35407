package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

type holds map[uint64]string

func (h holds) Held(_ context.Context, seq uint64) (bool, string, error) {
	c, ok := h[seq]
	return ok, c, nil
}

func TestDisposeAndErase(t *testing.T) {
	h := newHarness(t)
	h.st.opts.Holds = holds{}
	g := gen.New(21)
	var msgs []gen.Message
	var seqs []uint64
	for i := 0; i < 4; i++ {
		m := g.Next(4000)
		msgs = append(msgs, m)
		seqs = append(seqs, h.archive(m.Raw, env("alice@example.com")).Seq)
	}
	ctx := context.Background()
	h.st.opts.Holds = holds{seqs[3]: "case C-7"}
	if _, err := h.st.Dispose(ctx, seqs[3], ledger.KindDispose, map[string]string{"policy": "default-7y"}); !errors.Is(err, ErrHeld) {
		t.Fatalf("disposal under a hold: %v", err)
	}
	m0, _ := h.st.Index().Message(ctx, seqs[0])
	d, err := h.st.Dispose(ctx, seqs[0], ledger.KindDispose, map[string]string{"policy": "default-7y"})
	if err != nil || d.ObjectKept {
		t.Fatalf("dispose: %+v %v", d, err)
	}
	if _, err := h.st.Dispose(ctx, seqs[1], ledger.KindErase, map[string]string{"reason": "GDPR request 42"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.Dispose(ctx, seqs[0], ledger.KindErase, nil); !errors.Is(err, ErrGone) {
		t.Fatalf("second disposal: %v", err)
	}
	for _, seq := range seqs[:2] {
		if _, err := h.st.OpenMessage(ctx, seq); !errors.Is(err, ErrUnreadable) {
			t.Fatalf("disposed message %d opens: %v", seq, err)
		}
	}
	if _, err := os.Stat(h.path(m0.KeyObject)); !os.IsNotExist(err) {
		t.Fatal("key object survives disposal")
	}
	if _, err := os.Stat(h.path(m0.Object)); !os.IsNotExist(err) {
		t.Fatal("message object survives disposal")
	}
	row, _ := h.st.Index().Message(ctx, seqs[1])
	if row.State != index.StateErased || row.Subject != "" || len(row.Header) != 0 || row.SHA256 != [32]byte{} {
		t.Fatalf("erased row keeps content: %+v", row)
	}
	if c, _ := h.st.Index().Custodians(ctx, seqs[1]); len(c) != 0 {
		t.Fatalf("erased message still has custodians %v", c)
	}
	if _, err := h.st.Resolve(ctx, fmt.Sprintf("%x", sha(msgs[1].Raw))); err == nil {
		t.Fatal("an erased message is still found by its SHA-256")
	}
	// The untouched messages still read back.
	if got := h.cat(seqs[2]); !bytes.Equal(got, msgs[2].Raw) {
		t.Fatal("a kept message changed")
	}
	rep := h.verify(true)
	if !rep.OK() || len(rep.Disposed) != 2 {
		t.Fatalf("verify after disposal: problems %v, disposed %v", rep.Problems, rep.Disposed)
	}
	// No trace of the erased message's body in the data folder.
	h.st.Close()
	h.st = nil
	grepFree(t, h.dir, msgs[1].Token)
	grepFree(t, h.dir, msgs[1].Subject)
	grepFree(t, h.dir, msgs[1].MessageID)
	// Rebuilt from the store, the same state.
	os.Remove(h.dir + "/index.db")
	os.Remove(h.dir + "/index.db-wal")
	os.Remove(h.dir + "/index.db-shm")
	h.open()
	row, err = h.st.Index().Message(ctx, seqs[1])
	if err != nil || row.State != index.StateErased || len(row.Problems) != 0 {
		t.Fatalf("after reindex: %+v %v", row, err)
	}
	if rep := h.verify(true); !rep.OK() || len(rep.Disposed) != 2 {
		t.Fatalf("verify after reindex: %v", rep.Problems)
	}
	// The same bytes arriving again are a new message.
	rc := h.archive(msgs[0].Raw, env("bob@example.com"))
	if rc.Duplicate || rc.Seq <= seqs[3] {
		t.Fatalf("re-archived after disposal: %+v", rc)
	}
}

func sha(b []byte) [32]byte {
	var s [32]byte
	copy(s[:], shaSum(b))
	return s
}

func grepFree(t *testing.T, dir, word string) {
	t.Helper()
	lw := bytes.ToLower([]byte(word))
	walkFiles(dir, func(p string, b []byte) {
		if bytes.Contains(bytes.ToLower(b), lw) {
			t.Errorf("%q found in %s", word, p)
		}
	})
}

// failDeletes makes Delete fail while set.
type failDeletes struct {
	objstore.Store
	mu   sync.Mutex
	fail bool
}

func (f *failDeletes) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("injected delete failure")
	}
	return f.Store.Delete(ctx, key)
}

func TestInterruptedDisposalFinishesAtOpen(t *testing.T) {
	h := newHarness(t)
	raw := gen.New(22).Next(3000).Raw
	seq := h.archive(raw, env("a@example.com")).Seq
	m, _ := h.st.Index().Message(context.Background(), seq)
	h.st.Close()
	fd := &failDeletes{Store: h.objs, fail: true}
	opts := h.options()
	opts.Objects = fd
	st, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Dispose(context.Background(), seq, ledger.KindErase, nil); err == nil {
		t.Fatal("disposal reported success with its deletions failing")
	}
	st.Close()
	if _, err := os.Stat(h.path(m.KeyObject)); err != nil {
		t.Fatal("key object already gone?")
	}
	h.open() // Delete works again: Open finishes the disposal
	if _, err := os.Stat(h.path(m.KeyObject)); !os.IsNotExist(err) {
		t.Fatal("the interrupted disposal was not finished at Open")
	}
	if rep := h.verify(true); !rep.OK() {
		t.Fatalf("verify: %v", rep.Problems)
	}
}
