package retention

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// The operations the HTTP API mounts (issue 8) are plain functions taking
// a Caller, and return values that encode as JSON with snake_case keys.
func TestReportsEncodeAsJSON(t *testing.T) {
	h := newHarness(t, rulesPolicy(), nil)
	ctx := context.Background()
	seq := h.archive(msg("Fri, 01 Mar 2019 10:00:00 +0000", "a@finra.example", "b@x.example", "j1", "x"), envelope("", "a@finra.example", []string{"b@x.example"}))
	hr, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"b@x.example"}, From: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	x, err := h.m.Explain(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.set(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	run, err := h.m.Run(ctx, SystemCaller, true)
	if err != nil {
		t.Fatal(err)
	}
	run.Failed = append(run.Failed, Failure{Seq: 7, Err: errors.New("boom")})
	er, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: "a@finra.example", Reason: "req 1", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		v    any
		want []string
	}{
		{hr, []string{`"case":"C-1"`, `"custodians":["b@x.example"]`, `"from":"2019-01-01T00:00:00Z"`, `"messages":1`, `"placed_by":"tester"`}},
		{x, []string{`"rule":{"name":"finra","keep":"6y","from":"date","basis":"SEC 17a-4(b)(4)"`, `"matched":["domain finra.example"]`, `"expiry":"2025-03-01T10:00:00Z"`, `"holds":[{"id":`}},
		{run, []string{`"dry_run":true`, `"held":1`, `{"seq":7,"error":"boom"}`}},
		{er, []string{`"kept":[{"seq":0,`, `"why":"litigation hold of case C-1`}},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range c.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s\nlacks %s", b, w)
			}
		}
	}
	var p Period
	if err := json.Unmarshal([]byte(`"1y6m"`), &p); err != nil || p != (Period{Years: 1, Months: 6}) {
		t.Fatalf("period from JSON: %+v %v", p, err)
	}
}
