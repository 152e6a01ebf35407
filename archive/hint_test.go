package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/volume"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// countingVolume is the volume store, counting the objects read from a
// hint and those looked up.
type countingVolume struct {
	*volume.Store
	hinted, lookedUp atomic.Int64
}

func (c *countingVolume) ReadHint(ctx context.Context, key string, hint []byte, max int64, alloc func(int) []byte) ([]byte, error) {
	b, err := c.Store.ReadHint(ctx, key, hint, max, alloc)
	if err == nil {
		c.hinted.Add(1)
	}
	return b, err
}

func (c *countingVolume) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.lookedUp.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingVolume) OpenReaderAt(ctx context.Context, key string) (objstore.ReaderAt, error) {
	c.lookedUp.Add(1)
	return c.Store.OpenReaderAt(ctx, key)
}

// On the volume store, a message's index row holds where its two objects
// lie, and reading it needs no lookup; a hint that leads elsewhere falls
// back to the lookup and still reads the right bytes; a deleted key object
// stays deleted when read through its hint (crypto-shredding).
func TestReadsThroughHints(t *testing.T) {
	dir := t.TempDir()
	vs, err := volume.Open(filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	objs := &countingVolume{Store: vs}
	ctx := context.Background()
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/hint")
	opts := Options{Dir: dir, Objects: objs, Keys: ring, Signing: sk, LogID: "hint"}
	st, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // the store open last

	g := gen.New(93)
	var msgs [][]byte
	for range 20 {
		msgs = append(msgs, g.Next(6000).Raw)
	}
	// One whose object is over maxHintedObject: read a range at a time,
	// through a lookup, as before.
	noise := make([]byte, 3*maxHintedObject/2)
	rand.Read(noise)
	big := append([]byte("Subject: big\r\n\r\n"), base64.StdEncoding.EncodeToString(noise)...)
	msgs = append(msgs, big)
	var seqs []uint64
	for _, raw := range msgs {
		rc, err := st.Archive(ctx, env("h@example.com"), raw)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, rc.Seq)
	}
	for _, seq := range seqs {
		m, err := st.Index().Message(ctx, seq)
		if err != nil || len(m.ObjectHint) == 0 || len(m.KeyHint) == 0 {
			t.Fatalf("message %d: no hints in its row (%v)", seq, err)
		}
	}
	readAll := func() {
		t.Helper()
		for i, seq := range seqs {
			m, err := st.OpenMessage(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			b, err := m.Bytes()
			m.Close()
			if err != nil || !bytes.Equal(b, msgs[i]) {
				t.Fatalf("message %d reads back different bytes (%v)", seq, err)
			}
		}
	}
	objs.hinted.Store(0)
	objs.lookedUp.Store(0)
	readAll()
	if h, l := objs.hinted.Load(), objs.lookedUp.Load(); h != int64(2*len(seqs)-1) || l != 1 {
		t.Fatalf("read %d objects from hints and looked %d up; want %d and 1 (the big message's object)", h, l, 2*len(seqs)-1)
	}

	// Hints that lead to another message's objects: the records there are
	// not these objects, so the reads look them up.
	if _, err := st.Index().DB().Exec(`UPDATE messages SET object_hint = (SELECT object_hint FROM messages WHERE seq = ?),
		key_hint = (SELECT key_hint FROM messages WHERE seq = ?) WHERE seq = ?`, seqs[1], seqs[1], seqs[0]); err != nil {
		t.Fatal(err)
	}
	objs.lookedUp.Store(0)
	readAll()
	if l := objs.lookedUp.Load(); l != 3 {
		t.Fatalf("looked up %d objects with message %d's hints wrong, want 3", l, seqs[0])
	}
	if rep, err := st.Verify(ctx, VerifyOptions{Full: true, Orphans: true}); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep.Problems, err)
	}

	// An index rebuilt from the ledger (cairn reindex, or the catch-up
	// after an index failure) gets the hints again.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "index.db"+suffix))
	}
	st, err = Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	objs.hinted.Store(0)
	objs.lookedUp.Store(0)
	readAll()
	if h, l := objs.hinted.Load(), objs.lookedUp.Load(); h != int64(2*len(seqs)-1) || l != 1 {
		t.Fatalf("after reindex: read %d objects from hints and looked %d up; want %d and 1", h, l, 2*len(seqs)-1)
	}

	// A key object deleted (as an erasure does) is gone through its hint
	// too: the message no longer opens.
	row, err := st.Index().Message(ctx, seqs[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := vs.Delete(ctx, row.KeyObject); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OpenMessageRow(ctx, row); !errors.Is(err, ErrUnreadable) {
		t.Fatalf("a message whose key object was deleted opens: %v", err)
	}
}
