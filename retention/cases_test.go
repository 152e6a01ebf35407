package retention

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// The IMAP view's Cases/ folders come from Cases and Members: the cases
// of active holds, and exactly the messages their holds keep (those Held
// reports for that case), including mail archived after the hold; a
// released case disappears.
func TestCaseSource(t *testing.T) {
	h := newHarness(t, testPolicy(), nil)
	ctx := context.Background()
	old := "Mon, 01 Jan 2018 09:00:00 +0000"
	var all []uint64
	for i, c := range []struct{ from, to, body string }{
		{"alice@corp.example", "bob@corp.example", "merger plans"},
		{"carol@corp.example", "bob@corp.example", "weekly report"},
		{"erin@corp.example", "dave@corp.example", "lunch"},
		{"erin@corp.example", "alice@corp.example", "the report"},
	} {
		all = append(all, h.archive(msg(old, c.from, c.to, fmt.Sprint("s", i), c.body), envelope("", c.from, []string{c.to})))
	}
	if cs, err := h.m.Cases(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("cases before any hold: %v %v", cs, err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-2", Reason: "r", Custodians: []string{"alice@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-2", Reason: "r", Query: "BODY report"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"dave@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	all = append(all, h.archive(msg(old, "alice@corp.example", "zed@corp.example", "later", "more"), envelope("", "alice@corp.example", []string{"zed@corp.example"})))

	cs, err := h.m.Cases(ctx)
	if err != nil || !slices.Equal(cs, []string{"C-1", "C-2"}) {
		t.Fatalf("cases: %v %v", cs, err)
	}
	members := func(id string) []uint64 {
		t.Helper()
		q, args, err := h.m.Members(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := h.m.ix.QueryContext(ctx, `SELECT k, msg FROM (`+q+`) ORDER BY k`, args...)
		if err != nil {
			t.Fatalf("members of %s: %v\n%s", id, err, q)
		}
		defer rows.Close()
		var out []uint64
		for rows.Next() {
			var k, m uint64
			if err := rows.Scan(&k, &m); err != nil {
				t.Fatal(err)
			}
			if k != m {
				t.Fatalf("member %d numbered %d", m, k)
			}
			out = append(out, m)
		}
		return out
	}
	want := map[string][]uint64{"C-1": {all[2]}, "C-2": {all[0], all[1], all[3], all[4]}}
	for id, w := range want {
		if got := members(id); !slices.Equal(got, w) {
			t.Errorf("case %s: members %v, want %v", id, got, w)
		}
	}
	// The folders show exactly what the disposal run keeps.
	for _, seq := range all {
		held, _, err := h.m.Held(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		inCase := slices.Contains(want["C-1"], seq) || slices.Contains(want["C-2"], seq)
		if held != inCase {
			t.Errorf("message %d: held %v, in a case folder %v", seq, held, inCase)
		}
	}
	if got := members("no-such-case"); len(got) != 0 {
		t.Errorf("unknown case: %v", got)
	}
	if _, err := h.m.ReleaseHold(ctx, tester, "C-1", "settled"); err != nil {
		t.Fatal(err)
	}
	if cs, _ := h.m.Cases(ctx); !slices.Equal(cs, []string{"C-2"}) {
		t.Errorf("cases after releasing C-1: %v", cs)
	}
	if got := members("C-1"); len(got) != 0 {
		t.Errorf("released case C-1 still has members %v", got)
	}

	// Epoch counts each case's placements and releases, never less.
	epoch := func(id string) uint32 {
		t.Helper()
		n, err := h.m.Epoch(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if e1, e2, e0 := epoch("C-1"), epoch("C-2"), epoch("no-such-case"); e1 != 2 || e2 != 2 || e0 != 0 {
		t.Errorf("epochs C-1 %d (placed, released), C-2 %d (two placed), unknown %d; want 2 2 0", e1, e2, e0)
	}
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "reopened", Custodians: []string{"bob@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	if e := epoch("C-1"); e != 3 {
		t.Errorf("C-1 reopened: epoch %d, want 3", e)
	}
}
