package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/objstore"
)

func TestSealWritesSegmentsAndCheckpoints(t *testing.T) {
	e := newEnv(t, nil) // 100 events per segment
	record(t, e.log, 250)
	cp, err := e.log.Seal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCheckpoint(cp, e.keys.verifier)
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin != testOrigin || c.Size != 250 {
		t.Fatalf("checkpoint %+v", c)
	}
	for _, k := range []string{
		"audit/cairn.test-audit/00000000000000000001.seg",
		"audit/cairn.test-audit/00000000000000000101.seg",
		"audit/cairn.test-audit/00000000000000000201.seg",
		"audit/cairn.test-audit/checkpoint/00000000000000000100.cp",
		"audit/cairn.test-audit/checkpoint/00000000000000000200.cp",
		"audit/cairn.test-audit/checkpoint/00000000000000000250.cp",
	} {
		if _, err := e.store.Stat(context.Background(), k); err != nil {
			t.Errorf("missing %s: %v", k, err)
		}
	}
	// A segment line is exactly the entry's line form.
	seg, _ := getAll(context.Background(), e.store, "audit/cairn.test-audit/00000000000000000101.seg")
	first, _, _ := bytes.Cut(seg, []byte("\n"))
	en, err := ParseLine(first)
	if err != nil || en.Seq != 101 {
		t.Fatalf("segment first line: seq %d, %v", en.Seq, err)
	}
	// The root is RFC 9162's over the stored bytes: recompute it by hand.
	var leaves [][]byte
	e.log.Events(context.Background(), Query{}, func(en *Entry) error {
		leaves = append(leaves, hasher.HashLeaf(en.Bytes))
		return nil
	})
	if root := mth(leaves); !bytes.Equal(root, c.Root[:]) {
		t.Fatalf("checkpoint root %x, RFC 9162 MTH %x", c.Root, root)
	}
	if r := e.verify(); !r.OK() || r.Checkpoint != 250 || r.Sealed != 250 || r.Segments != 3 {
		t.Fatalf("verify: %+v", r)
	}
	// Sealing survives a reopen: the next checkpoint extends the same tree.
	e.log.Close()
	e.open(nil)
	record(t, e.log, 30)
	if _, err := e.log.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := e.verify(); !r.OK() || r.Checkpoint != 280 {
		t.Fatalf("verify after reopen: %+v", r)
	}
}

// mth is RFC 9162 §2.1.1's MTH, written out recursively as the spec does.
func mth(leaves [][]byte) []byte {
	switch len(leaves) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return leaves[0]
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(mth(leaves[:k]))
	h.Write(mth(leaves[k:]))
	return h.Sum(nil)
}

func TestSealAdoptsSegmentAfterCrash(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 40)
	if _, err := e.log.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	record(t, e.log, 10)
	if _, err := e.log.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash after the segment and checkpoint were written but
	// before the seals row: drop the row, record more, reopen and seal.
	e.log.Close()
	if _, err := e.db().Exec(`DELETE FROM seals WHERE last = 50`); err != nil {
		t.Fatal(err)
	}
	e.open(nil)
	record(t, e.log, 5)
	if _, err := e.log.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := e.verify(); !r.OK() || r.Checkpoint != 55 {
		t.Fatalf("verify: %+v", r)
	}
}

func TestSealRetriesWhileStoreDown(t *testing.T) {
	e := newEnv(t, nil)
	e.store.setDown(true)
	record(t, e.log, 10)
	if _, err := e.log.Seal(context.Background()); err == nil {
		t.Fatal("Seal succeeded with the store down")
	}
	if st := e.log.SealStatus(); st.LastError == "" || st.Sealed != 0 || st.Head != 10 {
		t.Fatalf("seal status %+v", st)
	}
	e.store.setDown(false)
	if _, err := e.log.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.log.SealStatus(); st.LastError != "" || st.Sealed != 10 {
		t.Fatalf("seal status %+v", st)
	}
}

// tamperCase damages a sealed log of 300 events (3 segments, checkpoints
// at 100, 200, 300) plus 20 unsealed ones, and says what Verify must name.
type tamperCase struct {
	name   string
	damage func(t *testing.T, e *testEnv)
	want   []Problem // each must be reported (Seq, Kind, Where prefix)
}

func TestVerifyTamperBattery(t *testing.T) {
	exec := func(t *testing.T, e *testEnv, q string, args ...any) {
		t.Helper()
		if _, err := e.db().Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	body := func(t *testing.T, e *testEnv, seq int) []byte {
		t.Helper()
		var b []byte
		if err := e.db().QueryRow(`SELECT body FROM events WHERE seq = ?`, seq).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	seg2 := "audit/cairn.test-audit/00000000000000000101.seg"
	cases := []tamperCase{
		{"sqlite edit, hash column kept", func(t *testing.T, e *testEnv) {
			exec(t, e, `UPDATE events SET body = replace(body, '"role":"auditor"', '"role":"admin"') WHERE seq = 150`)
		}, []Problem{{Seq: 150, Kind: DamageEdited, Where: "sqlite"}}},

		{"sqlite edit, hash recomputed", func(t *testing.T, e *testEnv) {
			b := bytes.Replace(body(t, e, 150), []byte(`"role":"auditor"`), []byte(`"role":"legal"`), 1)
			h := sha256.Sum256(b)
			exec(t, e, `UPDATE events SET body = ?, hash = ? WHERE seq = 150`, b, h[:])
		}, []Problem{{Seq: 150, Kind: DamageEdited, Where: "sqlite"}, {Seq: 151, Kind: DamageBrokenLink, Where: "sqlite"}}},

		{"sqlite edit of an unsealed event, hash kept", func(t *testing.T, e *testEnv) {
			exec(t, e, `UPDATE events SET body = replace(body, 'INBOX', 'Sent') WHERE seq = 310`)
		}, []Problem{{Seq: 310, Kind: DamageEdited, Where: "sqlite"}}},

		{"sqlite delete", func(t *testing.T, e *testEnv) {
			exec(t, e, `DELETE FROM events WHERE seq = 42`)
		}, []Problem{{Seq: 42, Kind: DamageMissing, Where: "sqlite"}}},

		{"sqlite delete of an unsealed event", func(t *testing.T, e *testEnv) {
			exec(t, e, `DELETE FROM events WHERE seq = 305`)
		}, []Problem{{Seq: 305, Kind: DamageMissing, Where: "sqlite"}}},

		{"sqlite truncation below the checkpoint", func(t *testing.T, e *testEnv) {
			exec(t, e, `DELETE FROM events WHERE seq > 290`)
		}, []Problem{{Seq: 291, Kind: DamageMissing, Where: "sqlite"}}},

		{"sqlite reorder", func(t *testing.T, e *testEnv) {
			a, b := body(t, e, 77), body(t, e, 78)
			ha, hb := sha256.Sum256(a), sha256.Sum256(b)
			exec(t, e, `UPDATE events SET body = ?, hash = ? WHERE seq = 77`, b, hb[:])
			exec(t, e, `UPDATE events SET body = ?, hash = ? WHERE seq = 78`, a, ha[:])
		}, []Problem{{Seq: 77, Kind: DamageReordered, Where: "sqlite"}}},

		{"sqlite insert", func(t *testing.T, e *testEnv) {
			// Shift rows 120.. up by one and put a forged event at 120
			// that links to 119, as an attacker would.
			exec(t, e, `UPDATE events SET seq = -seq WHERE seq >= 120`)
			exec(t, e, `UPDATE events SET seq = 1 - seq WHERE seq < 0`)
			var prev Hash
			p := body(t, e, 119)
			prev = sha256.Sum256(p)
			ev := sampleEvent(999)
			ev.ID = "01936b2e-8a4c-7def-8123-456789abcdef"
			ev.Actor.User = "nobody-saw-this"
			eb, _ := marshalEvent(&ev)
			forged := entryBytes(nil, 120, prev, eb)
			h := sha256.Sum256(forged)
			exec(t, e, `INSERT INTO events(seq, time, action, hash, body) VALUES(120, 0, 'message.fetch', ?, ?)`, h[:], forged)
		}, []Problem{{Seq: 120, Kind: DamageInserted, Where: "sqlite"}}},

		{"sqlite insert of a forged unsealed event", func(t *testing.T, e *testEnv) {
			exec(t, e, `UPDATE events SET seq = -seq WHERE seq >= 312`)
			exec(t, e, `UPDATE events SET seq = 1 - seq WHERE seq < 0`)
			prev := sha256.Sum256(body(t, e, 311))
			ev := sampleEvent(999)
			ev.ID = "01936b2e-8a4c-7def-8123-456789abcdef"
			eb, _ := marshalEvent(&ev)
			forged := entryBytes(nil, 312, prev, eb)
			h := sha256.Sum256(forged)
			exec(t, e, `INSERT INTO events(seq, time, action, hash, body) VALUES(312, 0, 'message.fetch', ?, ?)`, h[:], forged)
		}, []Problem{{Seq: 312, Kind: DamageInserted, Where: "sqlite"}}},

		{"segment byte edited", func(t *testing.T, e *testEnv) {
			e.store.tamper(seg2, func(b []byte) []byte {
				lines := bytes.SplitAfter(b, []byte("\n"))
				lines[29] = bytes.Replace(lines[29], []byte(`"INBOX"`), []byte(`"INBOY"`), 1) // seq 130
				return bytes.Join(lines, nil)
			})
		}, []Problem{{Seq: 130, Kind: DamageEdited, Where: seg2}}},

		{"segment line made unparsable", func(t *testing.T, e *testEnv) {
			e.store.tamper(seg2, func(b []byte) []byte {
				return bytes.Replace(b, []byte(`"seq":130,`), []byte(`"seq":130, `), 1)
			})
		}, []Problem{{Seq: 130, Kind: DamageMalformed, Where: seg2}}},

		{"segment line rewritten with its hash", func(t *testing.T, e *testEnv) {
			e.store.tamper(seg2, func(b []byte) []byte {
				lines := bytes.SplitAfter(b, []byte("\n"))
				en, _ := ParseLine(lines[9]) // seq 110
				nb := bytes.Replace(en.Bytes, []byte(`"INBOX"`), []byte(`"Trash"`), 1)
				lines[9] = append(AppendLine(nil, nb, sha256.Sum256(nb)), '\n')
				return bytes.Join(lines, nil)
			})
		}, []Problem{{Seq: 110, Kind: DamageEdited, Where: seg2}, {Seq: 111, Kind: DamageBrokenLink, Where: seg2}}},

		{"segment removed", func(t *testing.T, e *testEnv) {
			e.store.Delete(context.Background(), seg2)
		}, []Problem{{Seq: 101, Kind: DamageMissing, Where: "segments"}}},

		{"checkpoint forged", func(t *testing.T, e *testEnv) {
			k := "audit/cairn.test-audit/checkpoint/00000000000000000200.cp"
			e.store.tamper(k, func(b []byte) []byte {
				return bytes.Replace(b, []byte("\n200\n"), []byte("\n199\n"), 1)
			})
		}, []Problem{{Seq: 0, Kind: DamageCheckpoint, Where: "audit/cairn.test-audit/checkpoint/00000000000000000200.cp"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			recordParallel(t, e.log, 300)
			if _, err := e.log.Seal(context.Background()); err != nil {
				t.Fatal(err)
			}
			recordParallel(t, e.log, 20)
			e.log.Close()
			if r := e.verify(); !r.OK() {
				t.Fatalf("clean log: %v", r.Problems)
			}
			c.damage(t, e)
			r := e.verify()
			if r.OK() {
				t.Fatal("damage not detected")
			}
			for _, w := range c.want {
				found := false
				for _, p := range r.Problems {
					if p.Seq == w.Seq && p.Kind == w.Kind && strings.HasPrefix(p.Where, w.Where) {
						found = true
					}
				}
				if !found {
					t.Errorf("want %s at seq %d in %s; got:\n%s", w.Kind, w.Seq, w.Where, problems(r))
				}
			}
			if len(r.Problems) > 6 {
				t.Errorf("too many findings for one damage:\n%s", problems(r))
			}
			t.Logf("findings:\n%s", problems(r))
		})
	}
}

func problems(r *Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "\t%s\n", p)
	}
	return b.String()
}

func TestVerifyWrongKey(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 10)
	e.log.Seal(context.Background())
	other := newKeys(t)
	r, err := Verify(context.Background(), VerifyOptions{Path: e.path, Origin: testOrigin, Store: e.store, Verifiers: []note.Verifier{other.verifier}})
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() || r.Problems[0].Kind != DamageCheckpoint {
		t.Fatalf("checkpoint signed by another key accepted: %+v", r)
	}
}

func TestParseLineRejects(t *testing.T) {
	e := newEnv(t, nil)
	record(t, e.log, 1)
	var line []byte
	e.log.Events(context.Background(), Query{}, func(en *Entry) error { line = en.Line(); return nil })
	for name, l := range map[string][]byte{
		"no hash":      line[:len(line)-80],
		"flipped byte": bytes.Replace(line, []byte("INBOX"), []byte("INBOY"), 1),
		"spaced":       bytes.Replace(line, []byte(`"seq":1,`), []byte(`"seq": 1,`), 1),
	} {
		if _, err := ParseLine(l); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name == "flipped byte" && !errors.Is(err, ErrHashMismatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSealOnFilesystemStore(t *testing.T) {
	opts, st, keys := fsLogOptions(t)
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recordParallel(t, l, 120)
	// The sealer seals full segments by itself.
	deadline := time.Now().Add(10 * time.Second)
	for l.SealStatus().Sealed < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("not sealed: %+v", l.SealStatus())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := l.Seal(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := Verify(context.Background(), VerifyOptions{Path: opts.Path, Origin: testOrigin, Store: st, Verifiers: []note.Verifier{keys.verifier}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Segments != 3 || r.Checkpoint != 120 {
		t.Fatalf("verify: %+v\n%s", r, problems(r))
	}
	// Write-once: a segment cannot be replaced through the store.
	if err := st.Put(context.Background(), SegmentKey(testOrigin, 1), strings.NewReader("x"), 1); !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("second Put: %v", err)
	}
}
