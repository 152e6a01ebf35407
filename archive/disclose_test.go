package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// TestDisclose: a disclosure opens the message's content commitment and
// every envelope commitment, for the message entry and each delivery.
func TestDisclose(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	g := gen.New(7)
	raw := g.Next(3000).Raw
	other := g.Next(3000).Raw
	rc := h.archive(raw, env("alice@example.com"))
	h.archive(other, env("carol@example.com"))
	e2 := env("bob@example.com")
	e2.Source = ingest.SourceImport
	rc2 := h.archive(raw, e2)
	if !rc2.Duplicate {
		t.Fatal("second delivery not deduplicated")
	}

	d, err := h.st.Disclose(ctx, rc.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if d.Seq != rc.Seq || len(d.Entries) != 2 || d.Entries[0].Seq != rc.Seq || d.Entries[1].Seq != rc2.Seq ||
		d.Entries[0].Kind != ledger.KindMessage || d.Entries[1].Kind != ledger.KindDelivery {
		t.Fatalf("disclosure entries: %+v", d.Entries)
	}
	content := sha256.Sum256(append(d.Salt[:], raw...))
	if hex.EncodeToString(content[:]) != d.Entries[0].Entry.Message.Content {
		t.Fatal("the salt does not open the content commitment")
	}
	for i, de := range d.Entries {
		c := sha256.Sum256(append(d.Salt[:], de.Envelope...))
		if hex.EncodeToString(c[:]) != de.Entry.Delivery.EnvelopeCommit {
			t.Fatalf("entry %d: envelope commitment", i)
		}
		var e ingest.Envelope
		if err := json.Unmarshal(de.Envelope, &e); err != nil {
			t.Fatal(err)
		}
		if want := []string{"alice@example.com", "bob@example.com"}[i]; e.Recipients[0].Address != want {
			t.Fatalf("entry %d: envelope of %s", i, e.Recipients[0].Address)
		}
		if line, _ := h.st.Index().Entry(ctx, de.Seq); !bytes.Equal(line, de.Line) {
			t.Fatalf("entry %d: line differs from the ledger's", i)
		}
	}
	// A delivery seq is not a message.
	if _, err := h.st.Disclose(ctx, rc2.Seq); err == nil {
		t.Fatal("disclosed a delivery entry as a message")
	}
}

// TestLatestCheckpointAndLeaves: the newest stored checkpoint is found and
// verified, and the index's leaves hash to its root.
func TestLatestCheckpointAndLeaves(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, _, err := h.st.LatestCheckpoint(ctx); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("no checkpoint yet: %v", err)
	}
	g := gen.New(8)
	for range 5 {
		h.archive(g.Next(2500).Raw, env("alice@example.com"))
	}
	if _, _, err := h.st.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	h.archive(g.Next(2500).Raw, env("alice@example.com"))
	want, _, err := h.st.PublishCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, signed, err := h.st.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || got.Size != 6 {
		t.Fatalf("latest checkpoint %+v, published %+v", got, want)
	}
	if c, err := ledger.OpenCheckpoint(signed, h.signing.Verifier); err != nil || c != got {
		t.Fatalf("signed note: %v", err)
	}
	if h.st.ReadOnly() || h.st.SigningKey() != h.signing {
		t.Fatal("accessors")
	}

	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	rng := rf.NewEmptyRange(0)
	var n uint64
	err = h.st.Index().EachLeaf(ctx, got.Size, func(seq uint64, leaf []byte) error {
		if seq != n {
			t.Fatalf("leaf %d where %d was expected", seq, n)
		}
		n++
		return rng.Append(leaf, nil)
	})
	if err != nil || n != got.Size {
		t.Fatalf("leaves: %d, %v", n, err)
	}
	root, _ := rng.GetRootHash(nil)
	if !bytes.Equal(root, got.Root[:]) {
		t.Fatal("the index's leaves do not hash to the checkpoint's root")
	}
	// EachLeaf stops at end.
	n = 0
	h.st.Index().EachLeaf(ctx, 3, func(uint64, []byte) error { n++; return nil })
	if n != 3 {
		t.Fatalf("EachLeaf(3) gave %d leaves", n)
	}
}
