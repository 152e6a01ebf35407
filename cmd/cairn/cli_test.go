package main

// End-to-end tests of the cairn binary: built once, run as a user would,
// in a fresh folder per test.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/cairn-archive/cairn/archive/objstore/volume"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

var cairnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-bin")
	if err != nil {
		panic(err)
	}
	cairnBin = filepath.Join(dir, "cairn")
	out, err := exec.Command("go", "build", "-o", cairnBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build cairn: %v\n%s", err, out)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs cairn in dir and returns stdout, stderr and the exit code.
func cli(t testing.TB, dir string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(cairnBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_CONFIG=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func mustCLI(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, errs, code := cli(t, dir, args...)
	if code != 0 {
		t.Fatalf("cairn %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errs)
	}
	return out
}

func corpusFiles(t testing.TB) []string {
	abs, _ := filepath.Abs("../../../shared/corpus/enmime")
	files, err := filepath.Glob(filepath.Join(abs, "*.raw"))
	if err != nil || len(files) == 0 {
		t.Fatalf("corpus not found: %v", err)
	}
	return files
}

// catAll checks that `cairn cat <sha256>` returns each message exactly.
func catAll(t *testing.T, dir string, msgs [][]byte) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, raw := range msgs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, raw []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			sum := sha256.Sum256(raw)
			cmd := exec.Command(cairnBin, "cat", hex.EncodeToString(sum[:]))
			cmd.Dir = dir
			var errb bytes.Buffer
			cmd.Stderr = &errb
			got, err := cmd.Output()
			if err != nil {
				t.Errorf("cat message %d: %v: %s", i, err, errb.String())
				return
			}
			if !bytes.Equal(got, raw) {
				t.Errorf("message %d: cat returned %d bytes that differ from the %d imported", i, len(got), len(raw))
			}
		}(i, raw)
	}
	wg.Wait()
}

func TestCorpusRoundTrip(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	var msgs [][]byte
	for _, f := range corpusFiles(t) {
		raw, _ := os.ReadFile(f)
		msgs = append(msgs, raw)
	}
	out := mustCLI(t, dir, append([]string{"import", "--custodian", "auditor@example.com"}, corpusFiles(t)...)...)
	if !strings.Contains(out, fmt.Sprintf("archived %d,", len(msgs))) {
		t.Fatalf("import summary: %s", out)
	}
	catAll(t, dir, msgs)
	out = mustCLI(t, dir, "verify", "--full", "--quiet")
	if !strings.Contains(out, "verification passed") {
		t.Fatal(out)
	}
	// By ledger sequence number too.
	if got := mustCLI(t, dir, "cat", "0"); len(got) == 0 {
		t.Fatal("cat 0 printed nothing")
	}
	if _, errs, code := cli(t, dir, "cat", "999999"); code == 0 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("cat of a missing entry: %d %s", code, errs)
	}
}

func TestGeneratedMboxAndMaildir(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	g := gen.New(11)
	var msgs [][]byte
	var tokens []string
	f, _ := os.Create(filepath.Join(dir, "big.mbox"))
	mw := gen.NewMboxWriter(f)
	for i := 0; i < 1500; i++ {
		m := g.Next(3000 + rand.IntN(20000))
		msgs = append(msgs, m.Raw)
		tokens = append(tokens, m.Token)
		mw.Write(m.Sender, m.Date, m.Raw)
	}
	mw.Flush()
	f.Close()
	md, err := gen.CreateMaildir(filepath.Join(dir, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := md.Subfolder("Archive.2025")
	for i := 0; i < 500; i++ {
		m := g.Next(3000 + rand.IntN(8000))
		msgs = append(msgs, m.Raw)
		tokens = append(tokens, m.Token)
		target := md
		if i%2 == 1 {
			target = sub
		}
		target.Deliver(m.Raw, m.Date, "S")
	}
	out := mustCLI(t, dir, "import", "--custodian", "alice@example.com", "big.mbox", "Maildir")
	if !strings.Contains(out, "archived 2000,") {
		t.Fatalf("import: %s", out)
	}
	// Again: everything is recognised, nothing recorded twice.
	out = mustCLI(t, dir, "import", "--custodian", "alice@example.com", "big.mbox", "Maildir")
	if !strings.Contains(out, "archived 0,") || !strings.Contains(out, "already imported 2000") {
		t.Fatalf("second import: %s", out)
	}
	// Byte identity of all 2,000: each original's SHA-256 is in the index
	// (computed from the bytes as ingested), and verify --full proves the
	// stored bytes are the ingested ones; cairn cat reads back a sample.
	db, err := sql.Open("sqlite3", filepath.Join(dir, "cairn-data", "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range msgs {
		sum := sha256.Sum256(raw)
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM messages WHERE sha256 = ?`, sum[:]).Scan(&n); err != nil || n != 1 {
			t.Fatalf("message %d: its SHA-256 is not in the archive (%v)", i, err)
		}
	}
	db.Close()
	var sample [][]byte
	for i := 0; i < len(msgs); i += 10 {
		sample = append(sample, msgs[i])
	}
	catAll(t, dir, sample)
	if out := mustCLI(t, dir, "verify", "--full", "--quiet"); !strings.Contains(out, "2000 messages, 2000 deliveries") {
		t.Fatal(out)
	}
	// No plaintext of bodies anywhere under the data folder: each message's
	// unique body word is nowhere, in any case.
	filepath.Walk(filepath.Join(dir, "cairn-data"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		b = bytes.ToLower(b)
		for _, tok := range tokens {
			if bytes.Contains(b, []byte(strings.ToLower(tok))) {
				t.Errorf("body word %q found in plaintext in %s", tok, p)
			}
		}
		return nil
	})
}

func TestTamperExitCodes(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	mustCLI(t, dir, append([]string{"import"}, corpusFiles(t)[:20]...)...)
	mustCLI(t, dir, "verify", "--quiet")
	// Flip a byte of one message object where the store keeps it.
	flip := func() {
		path, off := objectOffset(t, filepath.Join(dir, "cairn-data"), 3)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		f.ReadAt(b[:], off)
		b[0] ^= 0x40
		f.WriteAt(b[:], off)
		f.Close()
	}
	flip()
	out, _, code := cli(t, dir, "verify", "--quiet")
	if code != 1 || !strings.Contains(out, "PROBLEM object-altered entry 3") {
		t.Fatalf("flipped byte: exit %d\n%s", code, out)
	}
	flip()
	mustCLI(t, dir, "verify", "--quiet")
	// Edit the index behind Cairn's back.
	db, err := sql.Open("sqlite3", filepath.Join(dir, "cairn-data", "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Exec(`UPDATE deliveries SET sender = 'nobody@example.com' WHERE seq = 3`)
	db.Close()
	out, _, code = cli(t, dir, "verify", "--quiet")
	if code != 1 || !strings.Contains(out, "PROBLEM index-altered entry 3") {
		t.Fatalf("edited index: exit %d\n%s", code, out)
	}
	// reindex repairs the index from the object store.
	mustCLI(t, dir, "reindex")
	mustCLI(t, dir, "verify", "--full", "--quiet")
}

func TestKill9DuringImport(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	g := gen.New(12)
	f, _ := os.Create(filepath.Join(dir, "in.mbox"))
	mw := gen.NewMboxWriter(f)
	const n = 3000
	want := make(map[[32]byte]bool)
	for i := 0; i < n; i++ {
		m := g.Next(4000 + i%5000)
		want[sha256.Sum256(m.Raw)] = true
		mw.Write(m.Sender, m.Date, m.Raw)
	}
	mw.Flush()
	f.Close()
	for round := 0; round < 4; round++ {
		cmd := exec.Command(cairnBin, "import", "in.mbox")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rand.IntN(900)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// Straight after a kill -9 the archive verifies.
		if out, _, code := cli(t, dir, "verify", "--quiet"); code != 0 {
			t.Fatalf("round %d: verify after kill -9: exit %d\n%s", round, code, out)
		}
	}
	out := mustCLI(t, dir, "import", "in.mbox")
	t.Log(out)
	db, err := sql.Open("sqlite3", filepath.Join(dir, "cairn-data", "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var messages, deliveries, distinct int
	db.QueryRow(`SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM deliveries), (SELECT COUNT(DISTINCT delivery_key) FROM deliveries)`).Scan(&messages, &deliveries, &distinct)
	if messages != len(want) || deliveries != n || distinct != n {
		t.Fatalf("after kills and a rerun: %d messages (want %d), %d deliveries, %d distinct keys (want %d)", messages, len(want), deliveries, distinct, n)
	}
	rows, _ := db.Query(`SELECT sha256 FROM messages`)
	for rows.Next() {
		var b []byte
		rows.Scan(&b)
		var k [32]byte
		copy(k[:], b)
		delete(want, k)
	}
	rows.Close()
	if len(want) != 0 {
		t.Fatalf("%d messages missing", len(want))
	}
	mustCLI(t, dir, "verify", "--full", "--quiet")
}

func TestConfigExampleAndCheck(t *testing.T) {
	dir := t.TempDir()
	out := mustCLI(t, dir, "config", "example")
	if !bytes.Equal([]byte(out), exampleYAML) {
		t.Fatal("config example differs from example.yaml")
	}
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(out), 0o600)
	mustCLI(t, dir, "--config", "c.yaml", "config", "check")
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("store:\n  type: floppy\n"), 0o600)
	if _, errs, code := cli(t, dir, "--config", "bad.yaml", "config", "check"); code == 0 || !strings.Contains(errs, `store.type "floppy"`) {
		t.Fatalf("bad store type: %d %s", code, errs)
	}
	os.WriteFile(filepath.Join(dir, "typo.yaml"), []byte("stor:\n  type: fs\n"), 0o600)
	if _, errs, code := cli(t, dir, "--config", "typo.yaml", "config", "check"); code == 0 || !strings.Contains(errs, "stor") {
		t.Fatalf("unknown key accepted: %d %s", code, errs)
	}
	cmd := exec.Command(cairnBin, "config", "check")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=loud")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), `log.level "loud"`) {
		t.Fatalf("environment not applied: %s", out)
	}
	// Without keys, commands say what to do.
	if _, errs, code := cli(t, dir, "verify"); code == 0 || !strings.Contains(errs, "cairn init") {
		t.Fatalf("uninitialised verify: %d %s", code, errs)
	}
}

// objectOffset finds the file and offset of a byte near the end of the
// message object of ledger entry seq, in either store layout.
func objectOffset(t *testing.T, data string, seq int) (string, int64) {
	t.Helper()
	ix, err := sql.Open("sqlite3", filepath.Join(data, "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	var key string
	if err := ix.QueryRow(`SELECT object FROM messages WHERE seq = ?`, seq).Scan(&key); err != nil {
		t.Fatal(err)
	}
	objects := filepath.Join(data, "objects")
	if _, err := os.Stat(filepath.Join(objects, "map.db")); err != nil {
		p := filepath.Join(objects, filepath.FromSlash(key))
		os.Chmod(p, 0o640)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return p, st.Size() - 5
	}
	// Through the volume store, as another process finds an object (its
	// map row may still be on its way).
	vs, err := volume.Open(objects)
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	path, off, size, err := vs.Locate(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return path, off + size - 5
}
