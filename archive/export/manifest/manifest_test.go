package manifest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func testKey(t testing.TB) note.Verifier {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ledger.key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type vector struct {
	Dir         string   `json:"dir"`
	Description string   `json:"description"`
	Problems    []string `json:"problems"`
}

// TestVectors verifies the committed exports: the untouched ones pass,
// each tampered copy fails with exactly the kinds of problem listed in
// testdata/vectors.json (archive/export's TestWriteVectors makes them).
func TestVectors(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < 10 {
		t.Fatalf("only %d vectors", len(vs))
	}
	key := testKey(t)
	for _, v := range vs {
		t.Run(v.Dir, func(t *testing.T) {
			rep, err := Verify(context.Background(), filepath.Join("testdata", filepath.FromSlash(v.Dir)), key, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range rep.Problems {
				if !slices.Contains(got, p.Kind) {
					got = append(got, p.Kind)
				}
				if p.Seq < 0 && p.File == "" {
					t.Errorf("a problem that names nothing: %s", p)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, v.Problems) {
				t.Fatalf("%s: problems %v, want %v:\n%v", v.Description, got, v.Problems, rep.Problems)
			}
			if len(v.Problems) == 0 && (rep.Messages != 3 || rep.Entries != 4 || rep.Size == 0) {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

// TestVerifyWrongKey: another key, even of the same name, verifies nothing.
func TestVerifyWrongKey(t *testing.T) {
	_, vkey, err := note.GenerateKey(rand.Reader, testKey(t).Name())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	rep, err := Verify(context.Background(), filepath.Join("testdata", "eml"), v, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, p := range rep.Problems {
		kinds = append(kinds, p.Kind)
	}
	if !slices.Contains(kinds, ProblemSignature) || !slices.Contains(kinds, ProblemCheckpoint) || !slices.Contains(kinds, ProblemManifest) {
		t.Fatalf("with another key: %v", rep.Problems)
	}
}

// TestVerifyRefusesLinks: a symbolic link in the folder is reported, not
// followed, even where a listed file should be.
func TestVerifyRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, filepath.Join("testdata", "eml"), dir)
	m := parseFile(t, filepath.Join(dir, FileManifest))
	target := filepath.Join(dir, filepath.FromSlash(m.Messages[0].File))
	b, _ := os.ReadFile(target)
	elsewhere := filepath.Join(t.TempDir(), "x.eml")
	os.WriteFile(elsewhere, b, 0o600)
	os.Remove(target)
	if err := os.Symlink(elsewhere, target); err != nil {
		t.Skip(err)
	}
	rep, err := Verify(context.Background(), dir, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() {
		t.Fatal("a symbolic link to the right bytes verified")
	}
}

func parseFile(t *testing.T, p string) *Manifest {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func copyTree(t testing.TB, src, dst string) {
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

// TestWriterRoundTrip: what Writer writes, Parse reads back the same, and
// the committed manifests are byte for byte what Writer makes of them.
func TestWriterRoundTrip(t *testing.T) {
	for _, dir := range []string{"eml", "mbox"} {
		orig, err := os.ReadFile(filepath.Join("testdata", dir, FileManifest))
		if err != nil {
			t.Fatal(err)
		}
		m, err := Parse(orig)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, &m.Header)
		if err != nil {
			t.Fatal(err)
		}
		for i := range m.Messages {
			w.Add(&m.Messages[i])
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), orig) {
			t.Fatalf("%s: Writer's output differs from the committed manifest", dir)
		}
		again, err := Parse(buf.Bytes())
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("%s: round trip: %v", dir, err)
		}
	}
	// An empty export.
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, &Header{Format: Format, ID: "x", Layout: LayoutEML})
	w.Close()
	m, err := Parse(buf.Bytes())
	if err != nil || len(m.Messages) != 0 {
		t.Fatalf("empty manifest: %v\n%s", err, buf.Bytes())
	}
}

// TestDecodeStrict: the manifest's shape is fixed.
func TestDecodeStrict(t *testing.T) {
	good := `{"format":"cairn-export/v1","id":"x","layout":"eml","messages":[]}`
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		``,
		`[]`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml"}`,
		`{"format":"cairn-export/v2","id":"x","layout":"eml","messages":[]}`,
		`{"format":"cairn-export/v1","id":"x","layout":"pst","messages":[]}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":null}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":{}}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","extra":1,"messages":[]}`,
		`{"format":"cairn-export/v1","id":"x","id":"y","layout":"eml","messages":[]}`,
		`{"format":"cairn-export/v1","layout":"eml","messages":[],"id":"x"}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":[{"seq":1,"bogus":2}]}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":[{"seq":-1}]}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":[]} {}`,
		`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":[]`,
	} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestMboxRecord: records round-trip, including lines to quote, CRLF, an
// empty message and a missing final line ending.
func TestMboxRecord(t *testing.T) {
	date := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, raw := range []string{
		"Subject: a\n\nbody\n",
		"Subject: a\r\n\r\nFrom here\r\n>From there\r\n",
		"From the first line\n>>>From deep\n\n",
		"no final line ending",
		"ends in CR\r",
		"Subject: crlf then lf\r\n\r\nmixed\n",
		"",
		"\n",
		"From ",
	} {
		var buf bytes.Buffer
		n, added, err := WriteMboxRecord(&buf, "a b@example.com", date, []byte(raw))
		if err != nil || n != int64(buf.Len()) {
			t.Fatalf("%q: %v", raw, err)
		}
		if added != (raw != "" && !strings.HasSuffix(raw, "\n")) {
			t.Fatalf("%q: eol_added %v", raw, added)
		}
		if !strings.HasPrefix(buf.String(), "From a_b@example.com Thu Nov 26 10:00:00 2026") {
			t.Fatalf("From_ line: %q", buf.String())
		}
		got, err := ReadMboxRecord(buf.Bytes(), added)
		if err != nil || string(got) != raw {
			t.Fatalf("%q: read back %q, %v", raw, got, err)
		}
	}
	for _, bad := range []string{"", "Subject: x\n\n", "From x", "From x\nbody\n", "From x\nFrom y\n\n", "From x\r\nbody\n"} {
		if _, err := ReadMboxRecord([]byte(bad), false); err == nil {
			t.Errorf("%q read as a record", bad)
		}
	}
}

func TestCSVRecordEscapes(t *testing.T) {
	m := &Message{Seq: 7, File: EMLName(7, strings.Repeat("a", 64)), SHA256: strings.Repeat("a", 64), Size: 10,
		Subject: "=HYPERLINK(\"x\")", From: "-x@example.com", MessageID: "@id", Custodians: []string{"+a@example.com", "b@example.com"},
		Entries: []Entry{{Seq: 7}, {Seq: 9}}}
	r := CSVRecord(m)
	if got := CSVRecord(&Message{Subject: "two\r\nlines\rand\nmore"})[8]; got != "two lines and more" {
		t.Fatalf("line breaks: %q", got)
	}
	if len(r) != len(CSVHeader) || r[0] != "7" || r[8] != "'=HYPERLINK(\"x\")" || r[7] != "'-x@example.com" || r[9] != "'@id" ||
		r[10] != "'+a@example.com;b@example.com" || r[11] != "7 9" || r[2] != "" {
		t.Fatalf("%q", r)
	}
}

func TestCustodians(t *testing.T) {
	got, err := Custodians([][]byte{
		[]byte(`{"source":"smtp","recipients":[{"addr":"X@example.com","kind":"to"}],"custodians":["Bob@example.com "]}`),
		[]byte(`{"source":"import","recipients":[{"addr":"Carol@Example.com","kind":"to"},{"addr":"","kind":"cc"}]}`),
		[]byte(`{"source":"import","custodians":["bob@example.com"]}`),
	})
	if err != nil || !slices.Equal(got, []string{"bob@example.com", "carol@example.com"}) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := Custodians([][]byte{[]byte("not json")}); err == nil {
		t.Fatal("not JSON accepted")
	}
}

func TestSignature(t *testing.T) {
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example/origin")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	d := [32]byte{1, 2, 3}
	sig, err := Sign("id-1", d, s)
	if err != nil {
		t.Fatal(err)
	}
	id, got, err := OpenSignature(sig, v)
	if err != nil || id != "id-1" || got != d {
		t.Fatalf("%q %x %v", id, got, err)
	}
	// A checkpoint by the same key is not a manifest signature.
	ck, _ := note.Sign(&note.Note{Text: "example/origin\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, s)
	if _, _, err := OpenSignature(ck, v); err == nil {
		t.Fatal("a checkpoint read as a manifest signature")
	}
	if _, err := Sign("a\nb", d, s); err == nil {
		t.Fatal("an id with a newline signed")
	}
}

// TestDependencies: the verifier is what a court's expert audits and runs,
// so it depends on the standard library, the note format and the Merkle
// proofs only, never on the archive.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(p, "/")
		switch {
		case !strings.Contains(first, "."), // the standard library
			p == "github.com/cairn-archive/cairn/archive/export/manifest",
			strings.HasPrefix(p, "golang.org/x/mod/sumdb/note"),
			strings.HasPrefix(p, "github.com/transparency-dev/merkle"):
		default:
			t.Errorf("the verifier depends on %s", p)
		}
	}
}
