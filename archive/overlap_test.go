package archive

import (
	"context"
	"database/sql"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// blockingSegments holds the next ledger segment's Put until released.
type blockingSegments struct {
	objstore.Store
	armed   chan struct{} // closed: the next segment Put blocks
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSegments) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasPrefix(key, "ledger/") {
		select {
		case <-b.armed:
			select {
			case b.entered <- struct{}{}:
				<-b.release
			default:
			}
		default:
		}
	}
	return b.Store.Put(ctx, key, r, size)
}

// A batch's index rows are written while its ledger segment is being made
// durable, in a transaction that commits only once the segment is: while
// the segment write is held, the index's write lock is taken (the rows are
// being written) and no reader sees the message.
func TestIndexRowsInvisibleUntilSegmentDurable(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.st.Close()
	bs := &blockingSegments{Store: h.objs, armed: make(chan struct{}), entered: make(chan struct{}, 1), release: make(chan struct{})}
	opts := h.options()
	opts.Objects = bs
	st, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.st = st
	path := st.Index().Path()
	probe, err := sql.Open("sqlite3", sqlitefile.URI(path, "_busy_timeout=0&_txlock=immediate"))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	count := func() int {
		var n int
		if err := probe.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	close(bs.armed)
	raw := gen.New(31).Next(3000).Raw
	done := make(chan error, 1)
	go func() {
		_, err := st.Archive(ctx, env("a@example.com"), raw)
		done <- err
	}()
	<-bs.entered
	// The index stage holds the write lock once it is writing the rows.
	deadline := time.Now().Add(10 * time.Second)
	for {
		tx, err := probe.Begin()
		if err != nil {
			break // busy: the rows are being written
		}
		tx.Rollback()
		if time.Now().After(deadline) {
			close(bs.release)
			t.Fatal("the index did not write the rows while the segment was being written")
		}
		time.Sleep(time.Millisecond)
	}
	if n := count(); n != 0 {
		close(bs.release)
		t.Fatalf("%d messages visible before their segment is durable", n)
	}
	select {
	case err := <-done:
		t.Fatalf("acknowledged before the segment was written: %v", err)
	default:
	}
	close(bs.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d messages after the commit, want 1", n)
	}
}
