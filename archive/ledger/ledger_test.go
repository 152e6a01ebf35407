package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore/fs"
)

func newLog(t *testing.T) (*fs.Store, note.Signer, note.Verifier) {
	t.Helper()
	objs, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, _ := note.GenerateKey(nil, "example.com/log")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return objs, s, v
}

func event(i int) *Entry {
	return &Entry{Kind: KindEvent, Event: &Event{Type: "test", Fields: map[string]string{"i": string(rune('a' + i%26))}}}
}

func TestAppendReopenReplay(t *testing.T) {
	ctx := context.Background()
	objs, s, v := newLog(t)
	lg, err := Open(ctx, objs, "l", s, v, State{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var states []State
	for b := 0; b < 5; b++ {
		var batch []*Entry
		for i := 0; i <= b; i++ {
			batch = append(batch, event(i))
		}
		_, st, err := lg.Append(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, st)
	}
	if lg.Size() != 15 {
		t.Fatalf("size %d", lg.Size())
	}
	want := lg.Checkpoint()
	// Reopen from each intermediate state: the replay sees exactly the
	// entries after it, and the log ends where it was.
	for i, st := range append([]State{{}}, states...) {
		var seen []uint64
		lg2, err := Open(ctx, objs, "l", s, v, st, func(es []*Entry, lines [][]byte, after State) error {
			for _, e := range es {
				seen = append(seen, e.Seq)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("state %d: %v", i, err)
		}
		if lg2.Checkpoint() != want {
			t.Fatalf("state %d: checkpoint differs", i)
		}
		if uint64(len(seen)) != 15-st.Size || (len(seen) > 0 && seen[0] != st.Size) {
			t.Fatalf("state %d: replayed %v", i, seen)
		}
	}
	// Verify agrees and finds the published checkpoint.
	if _, _, err := lg.PublishCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var problems []Problem
	res, err := Verify(ctx, objs, "l", v, nil, func(p Problem) { problems = append(problems, p) })
	if err != nil || len(problems) > 0 || res.Size != 15 || res.Checkpoints != 1 || res.Root != want.Root {
		t.Fatalf("verify: %+v %v %v", res, problems, err)
	}
}

func TestOpenRefusesDivergedStore(t *testing.T) {
	ctx := context.Background()
	objs, s, v := newLog(t)
	lg, _ := Open(ctx, objs, "l", s, v, State{}, nil)
	lg.Append(ctx, []*Entry{event(0)})
	_, st, _ := lg.Append(ctx, []*Entry{event(1), event(2)})
	// The last segment disappears: a writer must not continue.
	os.Remove(filepath.Join(objs.Dir(), SegmentKey("l", 1)))
	if _, err := Open(ctx, objs, "l", s, v, st, func([]*Entry, [][]byte, State) error { return nil }); !errors.Is(err, ErrDiverged) {
		t.Fatalf("truncated store accepted: %v", err)
	}
	// Two writers on one log id: the second cannot overwrite a segment.
	nop := func([]*Entry, [][]byte, State) error { return nil }
	a, err := Open(ctx, objs, "l", s, v, State{}, nop)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctx, objs, "l", s, v, State{}, nop)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Append(ctx, []*Entry{event(3)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Append(ctx, []*Entry{event(4)}); !errors.Is(err, ErrDiverged) {
		t.Fatalf("second writer: %v", err)
	}
}

func TestCheckpointParse(t *testing.T) {
	for _, bad := range []string{"", "o\n1\n", "o\nx\nAAAA\n", "o\n01\n" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "o\n1\nshort\n"} {
		if _, err := ParseCheckpoint(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	c := Checkpoint{Origin: "o", Size: 7}
	c.Root[0] = 1
	got, err := ParseCheckpoint(c.Text() + "extension line\n")
	if err != nil || got != c {
		t.Fatalf("round trip: %+v %v", got, err)
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":0,"kind":"event","time":"2026-01-01T00:00:00Z","prev":"0000000000000000000000000000000000000000000000000000000000000000","event":{"type":"x"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseEntry(line)
		if err != nil {
			return
		}
		// Canonical: what parses re-encodes to the same bytes.
		again, err := e.Marshal()
		if err != nil || string(again) != string(line) {
			t.Fatalf("accepted a non-canonical line %q", line)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add("example.com/log\n3\nZrsvBNxcZB5Yzq3lEicsvjuNSNyJPPHMe2m6pIE9q4Q=\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCheckpoint(s)
		if err != nil {
			return
		}
		if _, err := ParseCheckpoint(c.Text()); err != nil {
			t.Fatalf("own text does not parse: %v", err)
		}
	})
}

// Segment signatures are checked ahead of the loop that parses them, on
// other cores: each failure is still named by its own segment, and only
// those fail.
func TestVerifyNamesEachSegmentWhoseSignatureFails(t *testing.T) {
	ctx := context.Background()
	objs, s, v := newLog(t)
	lg, err := Open(ctx, objs, "l", s, v, State{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var firsts []uint64
	for b := 0; b < 40; b++ {
		firsts = append(firsts, lg.Size())
		if _, _, err := lg.Append(ctx, []*Entry{event(b), event(b + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// The same text signed with another key, in three segments.
	okey, _, _ := note.GenerateKey(nil, "example.com/log")
	other, _ := note.NewSigner(okey)
	forged := map[string]bool{}
	for _, i := range []int{3, 17, 38} {
		key := SegmentKey("l", firsts[i])
		path := filepath.Join(objs.Dir(), key)
		msg, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text, _ := splitNote(msg)
		signed, err := note.Sign(&note.Note{Text: string(text)}, other)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, signed, 0o600); err != nil {
			t.Fatal(err)
		}
		forged[key] = true
	}
	var problems []Problem
	res, err := Verify(ctx, objs, "l", v, nil, func(p Problem) { problems = append(problems, p) })
	if err != nil || res.Size != 80 {
		t.Fatalf("verify: size %d, %v", res.Size, err)
	}
	for _, p := range problems {
		if p.Kind != ProblemSegmentSignature || !forged[p.Key] {
			t.Errorf("unexpected problem %v", p)
		}
		delete(forged, p.Key)
	}
	if len(forged) > 0 {
		t.Fatalf("forged segments not reported: %v", forged)
	}
}

// parseCanonical is a fast path: whatever it returns for a line that
// re-encodes to itself, encoding/json returns too, and it takes every
// canonical line without escapes.
func FuzzParseCanonical(f *testing.F) {
	ref := uint64(7)
	at := time.Date(2026, 11, 27, 15, 4, 5, 123456789, time.UTC)
	for _, e := range []*Entry{
		{V: Version, Seq: 12, Kind: KindMessage, Time: at, Prev: strings.Repeat("ab", 32),
			Message:  &Message{Content: strings.Repeat("cd", 32), Size: 10240, Object: "messages/ab/cd/x-1", ObjectSHA256: strings.Repeat("ef", 32), ObjectSize: 10300, KeyObject: "keys/ab/cd/x-1"},
			Delivery: &Delivery{Envelope: "QUJD", EnvelopeCommit: strings.Repeat("01", 32)}},
		{V: Version, Seq: 13, Kind: KindDelivery, Time: at, Prev: strings.Repeat("ab", 32), Ref: &ref,
			Delivery: &Delivery{Envelope: "QUJD", EnvelopeCommit: "c", Evidence: "evidence/x", EvidenceSHA256: "d"}},
		{V: Version, Seq: 14, Kind: KindErase, Time: at.In(time.FixedZone("x", 3600)), Prev: strings.Repeat("ab", 32), Ref: &ref,
			Event: &Event{Type: "erase", Fields: map[string]string{"at": "now", "reason": "gdpr <art. 17>"}}},
		{V: Version, Kind: KindEvent, Event: &Event{Type: "hold"}},
	} {
		l, err := e.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(l)
	}
	f.Add([]byte(`{"v":1,"seq":01,"kind":"event","time":"2026-01-01T00:00:00Z","prev":"","event":{"type":"x"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		strict, serr := parseStrict(line)
		fast, ok := parseCanonical(line)
		if ok && fast.V == Version {
			if again, err := fast.Marshal(); err == nil && bytes.Equal(again, line) {
				if serr != nil {
					t.Fatalf("fast path took %q, encoding/json refuses it: %v", line, serr)
				}
				if !reflect.DeepEqual(fast, strict) {
					t.Fatalf("fast path and encoding/json differ on %q:\n%+v\n%+v", line, fast, strict)
				}
			}
		}
		if serr == nil && !bytes.Contains(line, []byte(`\`)) {
			if !ok {
				t.Fatalf("fast path refused the canonical line %q", line)
			}
			if again, err := fast.Marshal(); err != nil || !bytes.Equal(again, line) {
				t.Fatalf("fast path misread the canonical line %q as %+v", line, fast)
			}
		}
	})
}

// A prepared segment carries each line's leaf hash, which the group commit
// hands to the index instead of hashing the line again, and Write appends
// those leaves: a log reopened from the store (which hashes the lines it
// reads) has the same root and chain.
func TestPreparedLeavesAreTheLinesLeaves(t *testing.T) {
	ctx := context.Background()
	objs, s, v := newLog(t)
	lg, err := Open(ctx, objs, "l", s, v, State{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 3; b++ {
		seg, err := lg.Prepare([]*Entry{event(b), event(b + 1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(seg.Leaves) != len(seg.Lines) {
			t.Fatalf("%d leaves for %d lines", len(seg.Leaves), len(seg.Lines))
		}
		for i, line := range seg.Lines {
			if seg.Leaves[i] != LeafHash(line) {
				t.Fatalf("segment %d: leaf %d is not the line's", b, i)
			}
		}
		if _, err := lg.Write(ctx, seg); err != nil {
			t.Fatal(err)
		}
	}
	lg2, err := Open(ctx, objs, "l", s, v, State{}, func([]*Entry, [][]byte, State) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if lg2.Checkpoint() != lg.Checkpoint() || lg2.State().Last != lg.State().Last {
		t.Fatalf("reopened: %+v %x, written: %+v %x", lg2.Checkpoint(), lg2.State().Last, lg.Checkpoint(), lg.State().Last)
	}
}

// Marshal writes an entry without reflection; its bytes must be exactly
// json.Marshal's, which the ledger's lines have always been (and which
// ParseEntry's canonical check relies on).
func FuzzEntryMarshal(f *testing.F) {
	f.Add([]byte(`{"v":1,"seq":12,"kind":"message","time":"2026-11-27T15:04:05.123456789Z","prev":"ab","message":{"content":"cd","size":10240,"object":"messages/x","object_sha256":"ef","object_size":10300,"key_object":"keys/x"},"delivery":{"envelope":"QUJD","envelope_commit":"01"}}`))
	f.Add([]byte(`{"v":1,"seq":13,"kind":"delivery","time":"2026-11-27T15:04:05+01:00","prev":"ab","ref":7,"delivery":{"envelope":"QUJD","envelope_commit":"c","evidence":"evidence/x","evidence_sha256":"d"}}`))
	f.Add([]byte(`{"v":-3,"seq":18446744073709551615,"kind":"<erase> & \u2028","time":"0001-01-01T00:00:00Z","prev":"\u0000\ufffd","event":{"type":"hold","fields":{"b":"\"","a":"é","":"\\"}}}`))
	f.Add([]byte(`{"event":{"type":"x","fields":{}},"message":{},"delivery":{}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			return
		}
		want, werr := json.Marshal(&e)
		got, gerr := e.Marshal()
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Marshal of %+v:\n got %s, %v\nwant %s, %v", e, got, gerr, want, werr)
		}
	})
}
