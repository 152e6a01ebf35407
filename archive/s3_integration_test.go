//go:build integration

package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-archive/cairn/archive/objstore/s3"
	"github.com/cairn-archive/cairn/archive/objstore/s3/s3test"
	"github.com/cairn-archive/cairn/crypto/cryptotest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// TestIntegrationS3ArchiveAndRebuild runs the archive on a real S3 server
// (versitygw, started by scripts/s3-server.sh): messages round-trip, verify
// passes, the bucket holds no plaintext, and the bucket alone (with the
// archive key) rebuilds the index: invariant 3.
func TestIntegrationS3ArchiveAndRebuild(t *testing.T) {
	ctx := context.Background()
	opts := s3test.Options(t, "cairn-archive")
	objs, err := s3.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ring, sk := cryptotest.Keys(t, dir, objs, "test.example/s3")
	data := filepath.Join(dir, "data")
	o := Options{Dir: data, Objects: objs, Keys: ring, Signing: sk, LogID: "s3test"}
	st, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	g := gen.New(31)
	const n = 300
	msgs := make([][]byte, n)
	var tokens []string
	for i := range msgs {
		m := g.Next(3000 + i*40)
		msgs[i], tokens = m.Raw, append(tokens, m.Token)
	}
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				rc, err := st.Archive(ctx, env("alice@example.com"), msgs[i])
				if err != nil {
					t.Error(err)
					return
				}
				seqs[i] = rc.MessageSeq
			}
		}(w)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// Nothing but the bucket and the keys: rebuild everything local.
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	st, err = Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, messages, deliveries, _ := st.Index().Counts(ctx)
	if entries != n || messages != n || deliveries != n {
		t.Fatalf("rebuilt from the bucket: %d entries, %d messages, %d deliveries; want %d", entries, messages, deliveries, n)
	}
	for i, seq := range seqs {
		m, err := st.OpenMessage(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Bytes()
		m.Close()
		if err != nil || !bytes.Equal(got, msgs[i]) {
			t.Fatalf("message %d differs after the rebuild (%v)", i, err)
		}
	}
	rep, err := st.Verify(ctx, VerifyOptions{Full: true, Orphans: true})
	if err != nil || !rep.OK() {
		t.Fatalf("verify after the rebuild: %v %v", rep.Problems, err)
	}

	// No plaintext in the bucket: versitygw keeps objects as files.
	if root := os.Getenv("CAIRN_TEST_S3_DIR"); root != "" {
		files := 0
		filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || !strings.Contains(p, opts.Bucket) {
				return nil
			}
			files++
			b, _ := os.ReadFile(p)
			b = bytes.ToLower(b)
			for _, tok := range tokens {
				if bytes.Contains(b, []byte(strings.ToLower(tok))) {
					t.Errorf("body word %q in plaintext in the bucket (%s)", tok, p)
				}
			}
			return nil
		})
		if files < 2*n {
			t.Errorf("found %d files of the bucket under %s, want at least %d: the plaintext check saw nothing", files, root, 2*n)
		}
	} else {
		t.Error("CAIRN_TEST_S3_DIR is not set: cannot check the bucket for plaintext")
	}
}
