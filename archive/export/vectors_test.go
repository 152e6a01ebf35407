package export

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/export/manifest"
	"github.com/cairn-archive/cairn/retention"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite the export test vectors in manifest/testdata")

// vector is one entry of manifest/testdata/vectors.json: an export folder
// and the kinds of problem a verifier must report for it (none: it
// verifies).
type vector struct {
	Dir         string   `json:"dir"`
	Description string   `json:"description"`
	Problems    []string `json:"problems"`
}

// TestWriteVectors makes the committed test vectors: a tiny export of a
// case in each layout, and tampered copies. Run with -update-vectors.
func TestWriteVectors(t *testing.T) {
	if !*updateVectors {
		t.Skip("run with -update-vectors to rewrite manifest/testdata")
	}
	td := filepath.Join("manifest", "testdata")
	os.RemoveAll(td)
	h := newHarness(t)
	ctx := context.Background()
	a := []byte("Date: Thu, 26 Nov 2026 09:00:00 +0000\nFrom: Alice <alice@example.com>\nTo: bob@example.com\nSubject: Q3 figures\nMessage-ID: <a1@example.com>\n\nBob,\nFrom now on the figures go to legal first.\n>From the archive's point of view, this line is quoted once more.\n")
	b := []byte("Date: Thu, 26 Nov 2026 09:30:00 +0000\r\nFrom: bob@example.com\r\nTo: alice@example.com\r\nSubject: =?UTF-8?Q?Re=3A_Q3_figures_=E2=82=AC?=\r\nMessage-ID: <b2@example.com>\r\n\r\nNoted.\r\n")
	c := []byte("Date: Thu, 26 Nov 2026 10:00:00 +0000\nFrom: carol@example.com\nTo: alice@example.com\nSubject: =cmd|' /C calc'!A0\n\nA message without a final line ending.")
	h.archive(a, delivery("alice@example.com", "alice@example.com"))
	h.archive(b, delivery("bob@example.com", "alice@example.com"))
	h.archive(a, delivery("alice@example.com", "bob@example.com"))
	h.archive(c, delivery("carol@example.com", "alice@example.com"))
	if _, err := h.m.PlaceHold(ctx, tester, retention.HoldSpec{Case: "C-2026-17", Reason: "Acme v. Corp", Custodians: []string{"alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	var vs []vector
	for _, layout := range []string{FormatEML, FormatMbox} {
		opts := h.options(filepath.Join(td, layout))
		opts.Case, opts.Format = "C-2026-17", layout
		h.export(opts)
		vs = append(vs, vector{Dir: layout, Description: "an untouched export of case C-2026-17 (" + layout + " layout)"})
	}
	if err := os.WriteFile(filepath.Join(td, "ledger.key.pub"), []byte(h.signing.VerifierKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tamper := func(src, name, desc string, problems []string, edit func(dir string)) {
		dir := filepath.Join(td, "tampered", name)
		copyDir(t, filepath.Join(td, src), dir)
		edit(dir)
		vs = append(vs, vector{Dir: "tampered/" + name, Description: desc, Problems: problems})
	}
	emlFile := func(dir string, i int) string {
		m := readManifest(t, dir)
		return filepath.Join(dir, filepath.FromSlash(m.Messages[i].File))
	}
	flip := func(path string, at int) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if at < 0 {
			at += len(b)
		}
		b[at] ^= 0x20
		os.WriteFile(path, b, 0o600)
	}
	tamper("eml", "eml-flipped-byte", "one byte of a message changed", []string{"altered"}, func(dir string) {
		flip(emlFile(dir, 0), -10)
	})
	tamper("eml", "eml-removed-message", "a message file deleted", []string{"missing"}, func(dir string) {
		os.Remove(emlFile(dir, 1))
	})
	tamper("eml", "eml-added-message", "a message file added", []string{"extra"}, func(dir string) {
		sum := sha256.Sum256([]byte("Subject: planted\n\nplanted\n"))
		os.WriteFile(filepath.Join(dir, manifest.EMLName(99, hex.EncodeToString(sum[:]))), []byte("Subject: planted\n\nplanted\n"), 0o600)
	})
	tamper("eml", "eml-edited-manifest", "a subject edited in manifest.json", []string{"csv", "manifest"}, func(dir string) {
		editManifest(t, dir, func(m *manifest.Manifest) { m.Messages[0].Subject = "nothing to see" })
	})
	tamper("eml", "eml-edited-csv", "a subject edited in manifest.csv", []string{"altered", "csv"}, func(dir string) {
		p := filepath.Join(dir, manifest.FileCSV)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte("Q3 figures"), []byte("Q4 figures"), 1), 0o600)
	})
	tamper("eml", "eml-edited-proof", "one hash of an inclusion proof changed", []string{"manifest", "proof"}, func(dir string) {
		editManifest(t, dir, func(m *manifest.Manifest) {
			p := m.Messages[0].Entries[0].Proof
			p[0] = strings.Repeat("0", 64)
		})
	})
	tamper("eml", "eml-edited-envelope", "a recipient added to an envelope", []string{"envelope", "manifest"}, func(dir string) {
		editManifest(t, dir, func(m *manifest.Manifest) {
			e := &m.Messages[0].Entries[0]
			e.Envelope = strings.Replace(e.Envelope, `"recipients":[`, `"recipients":[{"addr":"mallory@example.com","kind":"cc"},`, 1)
		})
	})
	tamper("eml", "eml-edited-checkpoint", "the checkpoint's root changed", []string{"checkpoint", "manifest"}, func(dir string) {
		editManifest(t, dir, func(m *manifest.Manifest) {
			lines := strings.SplitN(m.Checkpoint.Signed, "\n", 4)
			lines[2] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			m.Checkpoint.Signed = strings.Join(lines, "\n")
		})
	})
	tamper("eml", "eml-forged-signature", "a subject edited in manifest.json and manifest.csv, the manifest signed again with another key of the same name", []string{"signature"}, func(dir string) {
		p := filepath.Join(dir, manifest.FileCSV)
		csvb, _ := os.ReadFile(p)
		csvb = bytes.Replace(csvb, []byte("Q3 figures"), []byte("Q4 figures"), 1)
		os.WriteFile(p, csvb, 0o600)
		sum := sha256.Sum256(csvb)
		digest := editManifest(t, dir, func(m *manifest.Manifest) {
			m.Messages[0].Subject = "Q4 figures"
			m.Files[0].SHA256, m.Files[0].Size = hex.EncodeToString(sum[:]), int64(len(csvb))
		})
		skey, _, err := note.GenerateKey(rand.Reader, h.signing.Origin())
		if err != nil {
			t.Fatal(err)
		}
		signer, _ := note.NewSigner(skey)
		m := readManifest(t, dir)
		sig, err := manifest.Sign(m.ID, digest, signer)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, manifest.FileSignature), sig, 0o600)
	})
	tamper("mbox", "mbox-flipped-byte", "one byte of a message changed in messages.mbox", []string{"altered"}, func(dir string) {
		m := readManifest(t, dir)
		sp := m.Messages[0].Mbox
		flip(filepath.Join(dir, manifest.FileMbox), int(sp.Offset+sp.Length-12))
	})
	tamper("mbox", "mbox-removed-message", "the last message cut from messages.mbox", []string{"altered", "mbox"}, func(dir string) {
		m := readManifest(t, dir)
		sp := m.Messages[len(m.Messages)-1].Mbox
		os.Truncate(filepath.Join(dir, manifest.FileMbox), sp.Offset)
	})
	tamper("mbox", "mbox-added-message", "a message appended to messages.mbox", []string{"altered", "mbox"}, func(dir string) {
		f, _ := os.OpenFile(filepath.Join(dir, manifest.FileMbox), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("From mallory@example.com Thu Nov 26 12:00:00 2026\nSubject: planted\n\nplanted\n\n")
		f.Close()
	})

	// Each vector is what it claims, with the verifier of this tree.
	for _, v := range vs {
		rep := verifyExport(t, h, filepath.Join(td, filepath.FromSlash(v.Dir)))
		if got := kinds(rep); !slices.Equal(got, v.Problems) {
			t.Fatalf("%s: problems %v, want %v: %v", v.Dir, got, v.Problems, rep.Problems)
		}
	}
	b2, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.WriteFile(filepath.Join(td, "vectors.json"), append(b2, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	// Committed files are readable by anyone checking out the repository.
	filepath.WalkDir(td, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			if d.IsDir() {
				os.Chmod(p, 0o755)
			} else {
				os.Chmod(p, 0o644)
			}
		}
		return nil
	})
}

// kinds is the sorted set of a report's problem kinds.
func kinds(rep *manifest.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		if !slices.Contains(out, p.Kind) {
			out = append(out, p.Kind)
		}
	}
	slices.Sort(out)
	return out
}

// editManifest rewrites manifest.json with edit applied (as the exporter
// writes it) and returns its new digest; manifest.sig is left alone.
func editManifest(t *testing.T, dir string, edit func(*manifest.Manifest)) [32]byte {
	t.Helper()
	m := readManifest(t, dir)
	edit(m)
	var buf bytes.Buffer
	w, err := manifest.NewWriter(&buf, &m.Header)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Messages {
		w.Add(&m.Messages[i])
	}
	w.Close()
	if err := os.WriteFile(filepath.Join(dir, manifest.FileManifest), buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(buf.Bytes())
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
