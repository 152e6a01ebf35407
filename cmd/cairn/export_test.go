package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// exportManifest is what the tests read of a manifest.json.
type exportManifest struct {
	Messages []struct {
		Seq     uint64 `json:"seq"`
		File    string `json:"file"`
		Entries []struct {
			Proof []string `json:"proof"`
		} `json:"entries"`
	} `json:"messages"`
}

func readExportManifest(t *testing.T, dir string) exportManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m exportManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o600)
}

// TestExportCommands: cairn export of a case and of a query from a
// generated archive; cairn verify-export passes them with the public key
// alone, and names each tampering with exit status 1.
func TestExportCommands(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	f, _ := os.Create(filepath.Join(dir, "a.mbox"))
	w := gen.NewMboxWriter(f)
	g := gen.New(11)
	for range 120 {
		m := g.Next(3000)
		w.Write(m.Sender, m.Date, m.Raw)
	}
	w.Flush()
	f.Close()
	mustCLI(t, dir, "import", "--custodian", "alice@example.com", "a.mbox")
	mustCLI(t, dir, "hold", "place", "--case", "C-7", "--reason", "Acme v. Corp", "--custodian", "alice@example.com", "--from", "2024-01-01")
	held := regexp.MustCompile(`messages\s+(\d+)`).FindStringSubmatch(mustCLI(t, dir, "hold", "show", "C-7"))[1]

	out := mustCLI(t, dir, "export", "--case", "C-7", "--out", "exports/c7")
	if !strings.Contains(out, "exported "+held+" messages") {
		t.Fatalf("export of %s held messages: %s", held, out)
	}
	key := filepath.Join(dir, "cairn-data", "keys", "ledger.key.pub")
	// Elsewhere: a folder with nothing of the archive.
	away := t.TempDir()
	verify := func(exp string, args ...string) (string, string, int) {
		return cli(t, away, append([]string{"verify-export", exp, "--key", key, "--quiet"}, args...)...)
	}
	c7 := filepath.Join(dir, "exports", "c7")
	if o, e, code := verify(c7); code != 0 || !strings.Contains(o, "export verification passed") || !strings.Contains(o, "of case C-7") {
		t.Fatalf("verify-export: %d\n%s%s", code, o, e)
	}
	// The key as a string; on the archive's machine, the key by default.
	pub, _ := os.ReadFile(key)
	if o, e, code := cli(t, away, "verify-export", c7, "--key", strings.TrimSpace(string(pub))); code != 0 {
		t.Fatalf("verify-export with the key string: %d\n%s%s", code, o, e)
	}
	if o, e, code := cli(t, dir, "verify-export", "exports/c7"); code != 0 || !strings.Contains(e, "ledger.key.pub") {
		t.Fatalf("verify-export with the archive's key: %d\n%s%s", code, o, e)
	}
	if _, e, code := cli(t, away, "verify-export", c7); code != 2 || !strings.Contains(e, "--key") {
		t.Fatalf("verify-export without a key: %d %s", code, e)
	}
	if _, _, code := verify(filepath.Join(away, "nonesuch")); code != 2 {
		t.Fatalf("verify-export of no folder: %d", code)
	}

	// Each tampering is named, with exit status 1.
	m := readExportManifest(t, c7)
	if len(m.Messages) < 3 {
		t.Fatalf("only %d messages exported", len(m.Messages))
	}
	first := m.Messages[0].File
	cases := []struct {
		name   string
		edit   func(d string)
		expect []string // in the output
	}{
		{"flipped byte", func(d string) {
			p := filepath.Join(d, first)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
		}, []string{"PROBLEM altered message", first}},
		{"removed message", func(d string) { os.Remove(filepath.Join(d, m.Messages[1].File)) }, []string{"PROBLEM missing message", m.Messages[1].File}},
		{"added message", func(d string) {
			os.WriteFile(filepath.Join(d, "messages", "0000000999-planted.eml"), []byte("Subject: x\n\nx\n"), 0o600)
		}, []string{"PROBLEM extra messages/0000000999-planted.eml"}},
		{"edited manifest.json", func(d string) {
			replaceIn(t, filepath.Join(d, "manifest.json"), `"user": "`, `"user": "someone else, not `)
		}, []string{"PROBLEM manifest manifest.json", "changed after it was signed"}},
		{"edited manifest.csv", func(d string) {
			replaceIn(t, filepath.Join(d, "manifest.csv"), "alice@example.com", "mallory@example.com")
		}, []string{"PROBLEM altered manifest.csv", "PROBLEM csv message"}},
		{"edited proof", func(d string) {
			replaceIn(t, filepath.Join(d, "manifest.json"), m.Messages[2].Entries[0].Proof[0], strings.Repeat("ab", 32))
		}, []string{"PROBLEM proof message", "inclusion proof"}},
		{"edited checkpoint", func(d string) {
			replaceIn(t, filepath.Join(d, "manifest.json"), `"signed": "`, `"signed": "x`)
		}, []string{"PROBLEM checkpoint manifest.json"}},
		{"removed signature", func(d string) { os.Remove(filepath.Join(d, "manifest.sig")) }, []string{"PROBLEM missing manifest.sig"}},
	}
	for _, tc := range cases {
		d := filepath.Join(t.TempDir(), "copy")
		copyTree(t, c7, d)
		tc.edit(d)
		o, e, code := verify(d)
		if code != 1 || !strings.Contains(e, "export verification FAILED") {
			t.Fatalf("%s: exit %d\n%s%s", tc.name, code, o, e)
		}
		for _, want := range tc.expect {
			if !strings.Contains(o, want) {
				t.Fatalf("%s: the output does not say %q:\n%s", tc.name, want, o)
			}
		}
	}

	// A query, as one mbox file.
	out = mustCLI(t, dir, "export", "--query", "FROM example SUBJECT re", "--out", "q", "--format", "mbox")
	if !regexp.MustCompile(`exported [1-9]\d* messages`).MatchString(out) {
		t.Fatalf("export by query: %s", out)
	}
	if o, e, code := verify(filepath.Join(dir, "q")); code != 0 || !strings.Contains(o, "(mbox)") {
		t.Fatalf("verify-export of the mbox export: %d\n%s%s", code, o, e)
	}
	// Refusals: an existing folder, no selection, both.
	for _, args := range [][]string{
		{"export", "--query", "ALL", "--out", "q"},
		{"export", "--out", "z"},
		{"export", "--case", "C-7", "--query", "ALL", "--out", "z"},
		{"export", "--case", "C-404", "--out", "z"},
		{"export", "--query", "ALL", "--out", "z", "--format", "pst"},
	} {
		if _, _, code := cli(t, dir, args...); code != 2 {
			t.Fatalf("%v: exit %d", args, code)
		}
	}
	// Both exports are audited.
	tail := mustCLI(t, dir, "audit", "tail", "-n", "50")
	if n := strings.Count(tail, `"action":"export.create"`); n != 2 {
		t.Fatalf("%d export.create events:\n%s", n, tail)
	}
	if !strings.Contains(tail, `"case":"C-7"`) || !strings.Contains(tail, `"format":"mbox"`) {
		t.Fatalf("audit events lack the case or the format:\n%s", tail)
	}
	// The archive is intact after all this.
	mustCLI(t, dir, "verify")
}

// TestVerifyExportVectors: the committed export vectors, through the CLI.
func TestVerifyExportVectors(t *testing.T) {
	td, _ := filepath.Abs("../../archive/export/manifest/testdata")
	b, err := os.ReadFile(filepath.Join(td, "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Dir      string   `json:"dir"`
		Problems []string `json:"problems"`
	}
	json.Unmarshal(b, &vs)
	away := t.TempDir()
	for _, v := range vs {
		o, e, code := cli(t, away, "verify-export", filepath.Join(td, v.Dir), "--key", filepath.Join(td, "ledger.key.pub"))
		want := 0
		if len(v.Problems) > 0 {
			want = 1
		}
		if code != want {
			t.Fatalf("%s: exit %d, want %d\n%s%s", v.Dir, code, want, o, e)
		}
		for _, k := range v.Problems {
			if !strings.Contains(o, "PROBLEM "+k+" ") {
				t.Fatalf("%s: no %s problem:\n%s", v.Dir, k, o)
			}
		}
	}
}

// TestExportWhileServing: while another process holds the archive (as
// cairn serve does), cairn export proves against the checkpoints that
// process publishes, waiting for one that covers what it exports.
func TestExportWhileServing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("data_dir: "+filepath.Join(dir, "data")+"\nledger:\n  checkpoint_interval: 1s\n"), 0o600)
	cfg, err := loadConfig(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := initArchive(ctx, cfg, "test.example/serving"); err != nil {
		t.Fatal(err)
	}
	objs, err := openObjects(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer closeObjects(objs)
	k, err := loadKeys(ctx, cfg, objs)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openArchiveWith(ctx, cfg, objs, k, readWrite, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := gen.New(21)
	for range 15 {
		m := g.Next(3000)
		if _, err := st.Archive(ctx, &ingest.Envelope{Source: ingest.SourceSMTP, Sender: m.Sender,
			Recipients: []ingest.Recipient{{Address: "alice@example.com", Kind: ingest.KindTo}}, ReceivedAt: time.Now()}, m.Raw); err != nil {
			t.Fatal(err)
		}
	}
	out, errs, code := cli(t, dir, "--config", "c.yaml", "export", "--query", "ALL", "--out", "x", "--quiet")
	if code != 0 || !strings.Contains(out, "exported 15 messages") {
		t.Fatalf("export while serving: %d\n%s%s", code, out, errs)
	}
	key := filepath.Join(dir, "data", "keys", "ledger.key.pub")
	if o, e, code := cli(t, t.TempDir(), "verify-export", filepath.Join(dir, "x"), "--key", key); code != 0 {
		t.Fatalf("verify-export: %d\n%s%s", code, o, e)
	}
}
