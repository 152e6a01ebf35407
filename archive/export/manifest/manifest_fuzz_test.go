package manifest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func fuzzSeeds(f *testing.F) {
	for _, dir := range []string{"eml", "mbox"} {
		b, err := os.ReadFile(filepath.Join("testdata", dir, FileManifest))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"cairn-export/v1","id":"x","layout":"eml","messages":[]}`))
	f.Add([]byte(`{"format":"cairn-export/v1","layout":"mbox","messages":[{"seq":1,"mbox":{"offset":0,"length":1},"entries":[{"seq":1,"proof":["00"]}]}]}`))
}

func writeManifest(t *testing.T, m *Manifest) []byte {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &m.Header)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Messages {
		if err := w.Add(&m.Messages[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzParse: Parse never panics, and what it accepts Writer writes back
// in a form Parse reads to the same manifest.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		once := writeManifest(t, m)
		m2, err := Parse(once)
		if err != nil {
			t.Fatalf("Parse refuses what Writer wrote: %v\n%s", err, once)
		}
		if twice := writeManifest(t, m2); !bytes.Equal(once, twice) {
			t.Fatalf("not stable:\n%s\n%s", once, twice)
		}
	})
}

// FuzzVerifyManifest: whatever manifest.json holds, Verify neither panics
// nor passes an export whose manifest is not the signed one. Coverage here
// is not deterministic (goroutines, timers), so run it with a short
// -fuzzminimizetime (2s): the default minute of minimising each
// "interesting" input otherwise takes the whole run.
func FuzzVerifyManifest(f *testing.F) {
	fuzzSeeds(f)
	key := testKey(f)
	dir := f.TempDir()
	copyTree(f, filepath.Join("testdata", "eml"), dir)
	orig, _ := os.ReadFile(filepath.Join(dir, FileManifest))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, FileManifest), b, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rep, err := Verify(ctx, dir, key, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() != bytes.Equal(b, orig) {
			t.Fatalf("OK %v for a manifest equal to the signed one: %v; problems %v", rep.OK(), bytes.Equal(b, orig), rep.Problems)
		}
	})
}

// FuzzReadMboxRecord: what a record reads as, written again, reads the same.
func FuzzReadMboxRecord(f *testing.F) {
	f.Add([]byte("From a Thu Nov 26 10:00:00 2026\nx\n>From y\n\n"), false)
	f.Add([]byte("From a Thu Nov 26 10:00:00 2026\r\nx\r\n\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, rec []byte, added bool) {
		raw, err := ReadMboxRecord(rec, added)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		_, added2, err := WriteMboxRecord(&buf, "a", time.Unix(0, 0), raw)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ReadMboxRecord(buf.Bytes(), added2)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%q: %q then %q, %v", rec, raw, again, err)
		}
	})
}
