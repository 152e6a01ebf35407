package audit

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors from the current code")

// The test vectors pin the on-disk and on-wire formats: a segment of three
// entries, the checkpoint over them, and their CEF, LEEF and syslog
// renderings. They are made from fixed events and a fixed signing key; a
// change to any byte is a format change (and needs SchemaVersion or a
// migration note in docs/AUDIT.md).
const (
	vectorSKey = "PRIVATE+KEY+cairn.test+f6fd3825+AUDhSn9z7DkWLcXihpg/BChFG/TttXSt0K8f0OrbQNip"
	vectorVKey = "cairn.test+f6fd3825+AaKxuWtdyWTSwrc2qlVd1fnZulu4Yoq0DXqCAlcXlB/u"
)

func vectorEvents() []Event {
	t0 := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	return []Event{
		{ID: "019abf11-5e00-7000-8000-000000000001", Time: t0, Action: ActionLogin, Outcome: OutcomeSuccess,
			Actor:  Actor{User: "ann@example.com", Role: "auditor", Session: "imap-1", AuthMech: "PLAIN"},
			Source: Source{IP: "192.0.2.7", Port: 51234, TLS: true, Service: "imap"}},
		{ID: "019abf11-5e00-7000-8000-000000000002", Time: t0.Add(time.Second), Action: ActionSearch, Outcome: OutcomeSuccess,
			Actor:   Actor{User: "ann@example.com", Role: "auditor", Session: "imap-1"},
			Source:  Source{IP: "192.0.2.7", Port: 51234, TLS: true, Service: "imap"},
			Target:  Target{Folder: "Journal", UIDValidity: 3},
			Details: Details{QueryHMAC: QueryHMAC([]byte("0123456789abcdef"), `FROM "x|y=z"`), Count: 2}},
		{ID: "019abf11-5e00-7000-8000-000000000003", Time: t0.Add(2 * time.Second), Action: ActionLoginFailure, Outcome: OutcomeFailure,
			Reason: "bad password\nfor \"mallory|admin\" = \\root",
			Actor:  Actor{User: "mallory|admin=x", AuthMech: "LOGIN"},
			Source: Source{IP: "2001:db8::9", Port: 40000, Service: "imap"}},
	}
}

func TestFormatVectors(t *testing.T) {
	signer, err := note.NewSigner(vectorSKey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vectorVKey)
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	dir := t.TempDir()
	l, err := Open(Options{Path: filepath.Join(dir, "audit.db"), Origin: "cairn.test/audit", Store: st, Signer: signer,
		QueryKey: []byte("0123456789abcdef"), SegmentInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, ev := range vectorEvents() {
		if _, err := l.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seg, _ := getAll(context.Background(), st, SegmentKey("cairn.test/audit", 1))
	files := map[string][]byte{"segment.seg": seg, "checkpoint.cp": cp}
	for _, f := range []Format{FormatCEF, FormatLEEF, FormatSyslog} {
		r, _ := NewRenderer(f, RenderOptions{Hostname: "archive01"})
		var b bytes.Buffer
		if _, err := l.Export(context.Background(), &b, Query{}, r); err != nil {
			t.Fatal(err)
		}
		files["entries."+string(f)] = b.Bytes()
	}
	vdir := filepath.Join("testdata", "vectors")
	if *update {
		os.MkdirAll(vdir, 0o755)
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(vdir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range files {
		want, err := os.ReadFile(filepath.Join(vdir, name))
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s changed:\n got %s\nwant %s", name, b, want)
		}
	}
	// The committed checkpoint verifies with the committed key and its root
	// is RFC 9162's over the committed segment's entries.
	want, _ := os.ReadFile(filepath.Join(vdir, "checkpoint.cp"))
	c, err := OpenCheckpoint(want, verifier)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][]byte
	segb, _ := os.ReadFile(filepath.Join(vdir, "segment.seg"))
	for _, line := range strings.Split(strings.TrimSuffix(string(segb), "\n"), "\n") {
		en, err := ParseLine([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, hasher.HashLeaf(en.Bytes))
	}
	if c.Size != 3 || !bytes.Equal(mth(leaves), c.Root[:]) {
		t.Fatalf("checkpoint %+v does not match the segment", c)
	}
}
