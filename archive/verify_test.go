package archive

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// tamperHarness archives n messages, 8 writers at once so segments hold
// several entries, and closes the store (publishing a checkpoint).
func tamperHarness(t *testing.T, n int) (*harness, []uint64) {
	h := newHarness(t)
	g := gen.New(42)
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next(3000 + 100*i).Raw
	}
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				rc, err := h.st.Archive(context.Background(), env("alice@example.com"), msgs[i])
				if err != nil {
					t.Error(err)
				}
				seqs[i] = rc.Seq
			}
		}(w)
	}
	wg.Wait()
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	if err := h.st.Close(); err != nil {
		t.Fatal(err)
	}
	h.st = nil
	if rep := h.verifyRO(true); !rep.OK() {
		t.Fatalf("clean archive fails verification: %v", rep.Problems)
	}
	return h, seqs
}

func (h *harness) verifyRO(full bool) *VerifyReport {
	h.t.Helper()
	opts := h.options()
	opts.ReadOnly = true
	st, err := Open(context.Background(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	defer st.CloseWithoutCheckpoint()
	rep, err := st.Verify(context.Background(), VerifyOptions{Full: full})
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

func (h *harness) keys(prefix string) []string {
	var out []string
	h.objs.List(context.Background(), prefix, func(i objstore.Info) error {
		out = append(out, i.Key)
		return nil
	})
	return out
}

func (h *harness) entryOf(seq uint64) *ledger.Entry {
	h.t.Helper()
	var found *ledger.Entry
	ledger.Scan(context.Background(), h.objs, "test", func(e *ledger.Entry, line []byte) error {
		if e.Seq == seq {
			found = e
		}
		return nil
	})
	if found == nil {
		h.t.Fatalf("entry %d not in the ledger", seq)
	}
	return found
}

// segmentWith returns the key of the segment holding entry seq and its text
// lines (without the signature).
func (h *harness) segmentWith(seq uint64) (string, [][]byte, []byte) {
	h.t.Helper()
	segs := h.keys("ledger/test/")
	for i, key := range segs {
		var first, next uint64
		fmt.Sscanf(key[strings.LastIndexByte(key, '/')+1:], "%020d.seg", &first)
		next = 1 << 62
		if i+1 < len(segs) {
			fmt.Sscanf(segs[i+1][strings.LastIndexByte(segs[i+1], '/')+1:], "%020d.seg", &next)
		}
		if first <= seq && seq < next {
			msg := h.read(key)
			j := bytes.LastIndex(msg, []byte("\n\n"))
			lines := bytes.Split(bytes.TrimSuffix(msg[:j+1], []byte("\n")), []byte("\n"))
			return key, lines, msg[j+1:]
		}
	}
	h.t.Fatalf("no segment holds %d", seq)
	return "", nil, nil
}

func joinLines(lines [][]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

// expect asserts that rep names a problem of kind for seq (seq -1: any).
func expect(t *testing.T, rep *VerifyReport, kind string, seq int64) {
	t.Helper()
	if rep.OK() {
		t.Fatalf("damage not detected (want %s at %d)", kind, seq)
	}
	for _, p := range rep.Problems {
		if p.Kind == kind && (seq < 0 || p.Seq == seq) {
			return
		}
	}
	t.Fatalf("want a %s problem at entry %d, got:\n%v", kind, seq, rep.Problems)
}

func TestTamperBattery(t *testing.T) {
	// Windows of 5 entries: every case crosses their edges.
	old := indexWindowSize
	indexWindowSize = 5
	defer func() { indexWindowSize = old }()
	cases := []struct {
		name   string
		tamper func(t *testing.T, h *harness, seqs []uint64) (kind string, seq int64)
	}{
		{"byte flipped in a message object", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			e := h.entryOf(seqs[3])
			b := h.read(e.Message.Object)
			b[len(b)/2] ^= 0x01
			h.rewrite(e.Message.Object, b)
			return ProblemObjectAltered, int64(seqs[3])
		}},
		{"message object deleted", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			e := h.entryOf(seqs[4])
			os.Remove(h.path(e.Message.Object))
			return ProblemObjectMissing, int64(seqs[4])
		}},
		{"key object deleted", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			e := h.entryOf(seqs[5])
			os.Remove(h.path(e.Message.KeyObject))
			return ProblemKeyMissing, int64(seqs[5])
		}},
		{"object replaced by another message's object", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			a, b := h.entryOf(seqs[6]), h.entryOf(seqs[7])
			h.rewrite(a.Message.Object, h.read(b.Message.Object))
			return ProblemObjectReplaced, int64(seqs[6])
		}},
		{"key object swapped with another message's", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			a, b := h.entryOf(seqs[6]), h.entryOf(seqs[7])
			h.rewrite(a.Message.KeyObject, h.read(b.Message.KeyObject))
			return ProblemKeyAltered, int64(seqs[6])
		}},
		{"ledger entry edited", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			key, lines, sig := h.segmentWith(seqs[8])
			for i, l := range lines {
				if bytes.Contains(l, []byte(fmt.Sprintf(`"seq":%d,`, seqs[8]))) {
					lines[i] = bytes.Replace(l, []byte(`"size":`), []byte(`"size":1`), 1)
				}
			}
			h.rewrite(key, append(joinLines(lines), sig...))
			return ProblemIndexAltered, int64(seqs[8])
		}},
		{"ledger entry deleted", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			h.deleteLedgerEntry(seqs[9])
			return ledger.ProblemEntryMissing, -1
		}},
		{"ledger entry deleted, the index still lists it", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			h.deleteLedgerEntry(seqs[10])
			return ProblemIndexExtra, int64(seqs[10])
		}},
		{"ledger segments reordered", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			segs := h.keys("ledger/test/")
			a, b := h.read(segs[1]), h.read(segs[2])
			h.rewrite(segs[1], b)
			h.rewrite(segs[2], a)
			return ledger.ProblemSegmentName, -1
		}},
		{"ledger entries reordered within a segment", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			for _, seq := range seqs {
				key, lines, sig := h.segmentWith(seq)
				if len(lines) >= 2 {
					lines[0], lines[1] = lines[1], lines[0]
					h.rewrite(key, append(joinLines(lines), sig...))
					return ledger.ProblemEntryOrder, -1
				}
			}
			t.Skip("no segment with two entries")
			return "", 0
		}},
		{"ledger entry appended by hand", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			// A well-formed entry, chained to the last one, in a new
			// segment signed with a key that is not the ledger's.
			last := seqs[len(seqs)-1]
			_, lines, _ := h.segmentWith(last)
			prev := ledger.EntryHash(lines[len(lines)-1])
			forged := &ledger.Entry{V: 1, Seq: last + 1, Kind: ledger.KindMessage, Prev: prev.String(), Time: h.entryOf(last).Time,
				Message: h.entryOf(last).Message, Delivery: h.entryOf(last).Delivery}
			line, _ := forged.Marshal()
			skey, _, _ := note.GenerateKey(nil, "test.example/cairn")
			signer, _ := note.NewSigner(skey)
			msg, _ := note.Sign(&note.Note{Text: string(line) + "\n"}, signer)
			if err := h.objs.Put(context.Background(), ledger.SegmentKey("test", last+1), bytes.NewReader(msg), int64(len(msg))); err != nil {
				t.Fatal(err)
			}
			return ledger.ProblemSegmentSignature, int64(last + 1)
		}},
		{"ledger truncated", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			segs := h.keys("ledger/test/")
			os.Remove(h.path(segs[len(segs)-1]))
			return ledger.ProblemTruncated, -1
		}},
		{"checkpoint with a bad signature", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			ck := h.keys("checkpoints/test/")
			b := h.read(ck[len(ck)-1])
			lines := bytes.SplitN(b, []byte("\n"), 4)
			lines[1] = []byte(fmt.Sprint(len(seqs) + 5)) // claim a larger tree
			h.rewrite(ck[len(ck)-1], bytes.Join(lines, []byte("\n")))
			return ledger.ProblemCheckpointSignature, -1
		}},
		{"every checkpoint deleted", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			for _, k := range h.keys("checkpoints/test/") {
				os.Remove(h.path(k))
			}
			return ledger.ProblemCheckpointMissing, -1
		}},
		{"index row edited", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			h.execIndex(`UPDATE messages SET subject = 'nothing to see' WHERE seq = ?`, seqs[2])
			return ProblemIndexAltered, int64(seqs[2])
		}},
		{"index entry deleted", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			h.execIndex(`DELETE FROM entries WHERE seq = ?`, seqs[1])
			return ProblemIndexMissing, int64(seqs[1])
		}},
		{"index message row deleted", func(t *testing.T, h *harness, seqs []uint64) (string, int64) {
			h.execIndex(`DELETE FROM messages WHERE seq = ?`, seqs[20])
			return ProblemIndexMissing, int64(seqs[20])
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, seqs := tamperHarness(t, 24)
			kind, seq := c.tamper(t, h, seqs)
			rep := h.verifyRO(false)
			expect(t, rep, kind, seq)
			for _, p := range rep.Problems {
				t.Logf("%s", p)
			}
		})
	}
}

func TestFullVerifyFindsContentSwap(t *testing.T) {
	// Two messages whose objects and key objects are both swapped: each
	// object still opens with the key object beside it, so only the
	// ledger's hashes can tell; --full also checks the content commitment.
	h, seqs := tamperHarness(t, 8)
	a, b := h.entryOf(seqs[1]), h.entryOf(seqs[2])
	objA, objB := h.read(a.Message.Object), h.read(b.Message.Object)
	h.rewrite(a.Message.Object, objB)
	h.rewrite(b.Message.Object, objA)
	rep := h.verifyRO(true)
	expect(t, rep, ProblemObjectReplaced, int64(seqs[1]))
}

// execIndex runs a statement on index.db behind the archive's back.
func (h *harness) execIndex(query string, args ...any) {
	h.t.Helper()
	db, err := sql.Open("sqlite3", h.dir+"/index.db")
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		h.t.Fatal(err)
	}
}

// deleteLedgerEntry removes entry seq's line from its segment (the segment
// too, when it held only that line).
func (h *harness) deleteLedgerEntry(seq uint64) {
	h.t.Helper()
	key, lines, sig := h.segmentWith(seq)
	var keep [][]byte
	for _, l := range lines {
		if !bytes.Contains(l, []byte(fmt.Sprintf(`"seq":%d,`, seq))) {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		os.Remove(h.path(key))
	} else {
		h.rewrite(key, append(joinLines(keep), sig...))
	}
}
