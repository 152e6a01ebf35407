package httpapi

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/harvest"
	"github.com/cairn-archive/cairn/ingest/smtp"
)

func parseMetrics(t *testing.T, body []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses /metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	if _, ok := fams[name]; !ok {
		t.Fatalf("no family %s", name)
	}
	v, ok := lookup(fams, name, want)
	if !ok {
		t.Fatalf("%s has no sample with labels %v", name, want)
	}
	return v
}

// lookup is value without failing: false if there is no such sample.
func lookup(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	h := newHarness(t, func(o *Options) {
		o.Metrics = NewMetrics(MetricsSources{
			Archive: o.Archive, Audit: o.Audit.(*switchRecorder).l,
			SMTP: func() (smtp.Stats, bool) {
				return smtp.Stats{SessionsOpen: 2, Sessions: 10, Accepted: 7, AcceptedBytes: 7000,
					Refused: map[string]uint64{"recipient": 1}, TempFailures: map[string]uint64{"archive": 3},
					Latency: smtp.Histogram{UpperBounds: []float64{0.01, 0.1}, Counts: []uint64{5, 7}, Count: 7, Sum: 0.2}}, true
			},
			IMAPConnections: func() (int, bool) { return 4, true },
			Harvest: func(context.Context) ([]harvest.SourceStatus, bool, error) {
				return []harvest.SourceStatus{{Name: "journal", Configured: true, Connected: true, LastSuccess: now.Add(-time.Minute),
					Folders: []harvest.FolderStatus{{Name: "INBOX", Present: true, Messages: 12, Archived: 11, Bytes: 1100, LastRun: now.Add(-90 * time.Second)}}}}, true, nil
			},
			Verify: func() (*VerifyStatus, error) {
				return &VerifyStatus{Time: now.Add(-time.Hour), Full: true, OK: true, Messages: 3, Seconds: 1.5}, nil
			},
			Now: func() time.Time { return now },
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.srv.opts.Metrics.Run(ctx)

	code, _, body := h.do("GET", "/metrics", "metrics", nil)
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	fams := parseMetrics(t, body)
	if v := value(t, fams, "cairn_archive_messages_archived_total", nil); v != 0 {
		t.Fatalf("messages archived before any new one: %v", v)
	}
	// Archive two messages (one new, one more delivery), dispose one, and
	// make some audited calls.
	env := &ingest.Envelope{Source: ingest.SourceSMTP, Sender: "x@example.com", ReceivedAt: now,
		Recipients: []ingest.Recipient{{Address: "y@example.com", Kind: ingest.KindTo}}}
	raw := msg("x@example.com", "y@example.com", "metrics", "counted")
	rc, err := h.st.Archive(ctx, env, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.Archive(ctx, env, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.Dispose(ctx, rc.MessageSeq, ledger.KindDispose, map[string]string{"policy": "test"}); err != nil {
		t.Fatal(err)
	}
	h.alog.Record(ctx, audit.Event{Action: audit.ActionFetch, Outcome: audit.OutcomeSuccess, Source: audit.Source{Service: "imap"}})
	h.do("GET", "/api/v1/whoami", "auditor", nil)
	// The audit counters come from Metrics.Run, which follows the audit log
	// in its own goroutine: scrape until it has counted the events above
	// (the IMAP fetch, and the logins of the first scrape and of whoami).
	// The other counters are read at scrape time and need no wait.
	fetch := map[string]string{"action": "message.fetch", "outcome": "success"}
	login := map[string]string{"service": "http", "action": "auth.login", "outcome": "success"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, body = h.do("GET", "/metrics", "admin", nil)
		if code != 200 {
			t.Fatalf("/metrics as admin: %d", code)
		}
		fams = parseMetrics(t, body)
		fetches, _ := lookup(fams, "cairn_imap_commands_total", fetch)
		logins, _ := lookup(fams, "cairn_audit_events_total", login)
		if fetches >= 1 && logins >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit follower counted %v fetches and %v logins in 10s, want 1 and 2", fetches, logins)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"cairn_archive_messages_archived_total", nil, 1},
		{"cairn_archive_message_bytes_archived_total", nil, float64(len(raw))},
		{"cairn_ledger_entries_total", map[string]string{"kind": "message"}, 1},
		{"cairn_ledger_entries_total", map[string]string{"kind": "delivery"}, 1},
		{"cairn_ledger_entries_total", map[string]string{"kind": "dispose"}, 1},
		{"cairn_retention_disposed_total", nil, 1},
		{"cairn_smtp_replies_total", map[string]string{"code": "250", "reason": "accepted"}, 7},
		{"cairn_smtp_replies_total", map[string]string{"code": "451", "reason": "archive"}, 3},
		{"cairn_smtp_replies_total", map[string]string{"code": "550", "reason": "recipient"}, 1},
		{"cairn_ingest_latency_seconds", map[string]string{"source": "smtp"}, 7},
		{"cairn_imap_sessions_open", nil, 4},
		{"cairn_imap_commands_total", map[string]string{"action": "message.fetch", "outcome": "success"}, 1},
		{"cairn_audit_events_total", map[string]string{"service": "http", "action": "auth.login", "outcome": "success"}, 2},
		{"cairn_harvest_lag_seconds", map[string]string{"source": "journal", "folder": "INBOX"}, 90},
		{"cairn_harvest_folder_archived_total", map[string]string{"source": "journal", "folder": "INBOX"}, 11},
		{"cairn_harvest_source_connected", map[string]string{"source": "journal"}, 1},
		{"cairn_verify_last_success", nil, 1},
		{"cairn_verify_last_run_timestamp_seconds", map[string]string{"mode": "full"}, float64(now.Add(-time.Hour).Unix())},
		{"cairn_http_requests_total", map[string]string{"route": "/api/v1/whoami", "code": "200"}, 1},
	} {
		got := value(t, fams, c.name, c.labels)
		if c.name == "cairn_audit_events_total" && got >= c.want {
			continue // the scrapes' own logins may be counted already
		}
		if got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if fams["cairn_ingest_latency_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Error("ingest latency is not a histogram")
	}
	value(t, fams, "cairn_audit_head_seq", nil)
	value(t, fams, "go_goroutines", nil)
	// Every family Cairn exports is documented in Names, and the names
	// exported here are among them.
	names := map[string]bool{}
	for _, n := range Names() {
		names[n] = true
	}
	for n := range fams {
		if strings.HasPrefix(n, "cairn_") && !names[n] {
			t.Errorf("family %s is not in Names()", n)
		}
	}
	// The metrics role reads nothing else.
	if code, _, _ := h.do("POST", "/api/v1/search", "metrics", map[string]any{"query": "ALL"}); code != 403 {
		t.Errorf("metrics token searched: %d", code)
	}
}

func TestMetricsPublic(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MetricsPublic = true })
	head := h.alog.Head()
	if code, _, body := h.do("GET", "/metrics", "", nil); code != 200 {
		t.Fatalf("public metrics: %d %s", code, body)
	}
	if evs := h.events(head); len(evs) != 0 {
		t.Fatalf("anonymous scrape audited: %+v", evs)
	}
}
