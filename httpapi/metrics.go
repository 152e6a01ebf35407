package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/ingest/harvest"
	"github.com/cairn-archive/cairn/ingest/smtp"
)

// MetricsSources are where /metrics reads the services' state, at each
// scrape. A nil source is left out (its service is not running).
type MetricsSources struct {
	// Archive: messages and bytes archived, ledger entries by kind
	// (disposals and erasures among them), group commits.
	Archive *archive.Store
	// Audit: the audit chain, its sealing and every sink's delivery; its
	// events are also counted by service, action and outcome (the IMAP
	// view's commands among them).
	Audit *audit.Log
	// SMTP returns the receiver's counters; false while it is not running.
	SMTP func() (smtp.Stats, bool)
	// IMAPConnections returns the IMAP view's open connections.
	IMAPConnections func() (int, bool)
	// Harvest returns the harvester's status; false while none runs.
	Harvest func(ctx context.Context) ([]harvest.SourceStatus, bool, error)
	// Verify returns the outcome of the last `cairn verify`, or nil.
	Verify func() (*VerifyStatus, error)
	// Now is the clock (harvest lag); default time.Now.
	Now func() time.Time
}

// VerifyStatus is the outcome of the last `cairn verify`, which the
// command writes beside the index for the metrics.
type VerifyStatus struct {
	Time     time.Time `json:"time"` // when it finished
	Full     bool      `json:"full"` // --full: messages decrypted and rehashed
	OK       bool      `json:"ok"`
	Problems int       `json:"problems"`
	Entries  uint64    `json:"entries"`
	Messages uint64    `json:"messages"`
	Disposed int       `json:"disposed"`
	Seconds  float64   `json:"seconds"`
}

// Metrics is the Prometheus registry of /metrics. Counters marked "since
// start" begin at zero when cairn serve starts, as Prometheus expects of
// counters (rate() spans restarts).
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler
	src     MetricsSources

	mu       sync.Mutex
	cursor   uint64            // last ledger entry counted
	started  bool              // cursor set
	kinds    map[string]uint64 // ledger entries by kind since start
	messages uint64
	bytes    uint64
	events   map[eventKey]uint64 // audit events since start

	auditFrom audit.Seq // the first audit event Run counts
}

type eventKey struct{ service, action, outcome string }

// NewMetrics builds the registry: Cairn's collector, the Go runtime's and
// the process's.
func NewMetrics(src MetricsSources) *Metrics {
	if src.Now == nil {
		src.Now = time.Now
	}
	m := &Metrics{reg: prometheus.NewRegistry(), src: src, kinds: map[string]uint64{}, events: map[eventKey]uint64{}}
	m.reg.MustRegister(m, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	if src.Audit != nil {
		m.auditFrom = src.Audit.Head() + 1
	}
	if src.Archive != nil {
		// Counting starts at the ledger's present end.
		if last, err := lastEntry(context.Background(), src.Archive); err == nil {
			m.cursor, m.started = last, true
		}
	}
	return m
}

// Registry is the registry, for tests and other collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Run counts audit events as they are committed, until ctx ends.
func (m *Metrics) Run(ctx context.Context) {
	l := m.src.Audit
	if l == nil {
		return
	}
	from := m.auditFrom
	for ctx.Err() == nil {
		err := l.Events(ctx, audit.Query{From: from, Follow: true}, func(e *audit.Entry) error {
			ev := &e.Event
			m.mu.Lock()
			m.events[eventKey{ev.Source.Service, string(ev.Action), string(ev.Outcome)}]++
			m.mu.Unlock()
			from = e.Seq + 1
			return nil
		})
		if err != nil && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func lastEntry(ctx context.Context, st *archive.Store) (uint64, error) {
	var last int64
	err := st.Index().DB().QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), -1) FROM entries`).Scan(&last)
	return uint64(last + 1), err // one past the last: entries from here are new
}

// Describe sends nothing: the collector is unchecked (its label sets
// depend on the services running).
func (m *Metrics) Describe(chan<- *prometheus.Desc) {}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func gauge(ch chan<- prometheus.Metric, name, help string, v float64, lv ...string) {
	labels := labelNames[name]
	ch <- prometheus.MustNewConstMetric(desc(name, help, labels...), prometheus.GaugeValue, v, lv...)
}

func counter(ch chan<- prometheus.Metric, name, help string, v float64, lv ...string) {
	labels := labelNames[name]
	ch <- prometheus.MustNewConstMetric(desc(name, help, labels...), prometheus.CounterValue, v, lv...)
}

// labelNames are the label names of each labelled metric.
var labelNames = map[string][]string{
	"cairn_ledger_entries_total":                          {"kind"},
	"cairn_archive_commit_seconds_total":                  {"stage"},
	"cairn_smtp_replies_total":                            {"code", "reason"},
	"cairn_ingest_latency_seconds":                        {"source"},
	"cairn_imap_commands_total":                           {"action", "outcome"},
	"cairn_audit_events_total":                            {"service", "action", "outcome"},
	"cairn_audit_sink_lag_events":                         {"sink"},
	"cairn_audit_sink_delivered_total":                    {"sink"},
	"cairn_audit_sink_failures":                           {"sink"},
	"cairn_audit_sink_last_success_timestamp_seconds":     {"sink"},
	"cairn_audit_sink_last_error_timestamp_seconds":       {"sink"},
	"cairn_audit_sink_last_error_info":                    {"sink", "error"},
	"cairn_harvest_source_connected":                      {"source"},
	"cairn_harvest_source_failures":                       {"source"},
	"cairn_harvest_source_errors_total":                   {"source"},
	"cairn_harvest_source_last_success_timestamp_seconds": {"source"},
	"cairn_harvest_lag_seconds":                           {"source", "folder"},
	"cairn_harvest_folder_messages":                       {"source", "folder"},
	"cairn_harvest_folder_archived_total":                 {"source", "folder"},
	"cairn_harvest_folder_bytes_total":                    {"source", "folder"},
	"cairn_harvest_folder_skipped_total":                  {"source", "folder"},
	"cairn_verify_last_run_timestamp_seconds":             {"mode"},
}

// smtpCodes is the reply code of each of the receiver's Stats reasons
// (ingest/smtp/replies.go).
var smtpCodes = map[string]string{
	"network": "554", "sessions": "421", "sessions_per_ip": "421", "shutdown": "421",
	"recipient": "550", "auth_required": "530", "auth_failed": "535", "size": "552",
	"line_ending": "554", "line_length": "500", "archive_refused": "554", "archive": "451",
	"memory": "452", "timeout": "421", "aborted": "451",
}

func ts(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// Collect reads every source.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if st := m.src.Archive; st != nil {
		m.collectArchive(ctx, ch, st)
	}
	if m.src.SMTP != nil {
		if s, ok := m.src.SMTP(); ok {
			collectSMTP(ch, s)
		}
	}
	if m.src.IMAPConnections != nil {
		if n, ok := m.src.IMAPConnections(); ok {
			gauge(ch, "cairn_imap_sessions_open", "IMAP view connections open now.", float64(n))
		}
	}
	m.collectEvents(ch)
	if l := m.src.Audit; l != nil {
		collectAudit(ch, l)
	}
	if m.src.Harvest != nil {
		sources, ok, err := m.src.Harvest(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(desc("cairn_harvest_error", "harvest status unreadable"), err)
		} else if ok {
			m.collectHarvest(ch, sources)
		}
	}
	if m.src.Verify != nil {
		v, err := m.src.Verify()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(desc("cairn_verify_error", "verify status unreadable"), err)
		} else if v != nil {
			collectVerify(ch, v)
		}
	}
}

// collectArchive counts the ledger entries and messages committed since
// the last scrape (a range of the index's primary keys: cheap however
// large the archive).
func (m *Metrics) collectArchive(ctx context.Context, ch chan<- prometheus.Metric, st *archive.Store) {
	m.mu.Lock()
	err := m.advance(ctx, st)
	kinds := map[string]uint64{}
	for k, v := range m.kinds {
		kinds[k] = v
	}
	msgs, bytes := m.messages, m.bytes
	m.mu.Unlock()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(desc("cairn_archive_error", "index unreadable"), err)
		return
	}
	counter(ch, "cairn_archive_messages_archived_total", "New messages archived (distinct bytes) since start.", float64(msgs))
	counter(ch, "cairn_archive_message_bytes_archived_total", "Size of the new messages archived since start, as received.", float64(bytes))
	for _, k := range []string{ledger.KindMessage, ledger.KindDelivery, ledger.KindDispose, ledger.KindErase, ledger.KindEvent} {
		counter(ch, "cairn_ledger_entries_total", "Ledger entries appended since start, by kind.", float64(kinds[k]), k)
	}
	counter(ch, "cairn_retention_disposed_total", "Messages disposed under the retention policy since start (ledger dispose entries).", float64(kinds[ledger.KindDispose]))
	counter(ch, "cairn_retention_erased_total", "Messages erased on request since start (ledger erase entries).", float64(kinds[ledger.KindErase]))
	if state, err := st.Index().LedgerState(); err == nil {
		gauge(ch, "cairn_ledger_size", "Ledger entries the index holds.", float64(state.Size))
	}
	cs := st.Stats()
	counter(ch, "cairn_archive_group_commits_total", "Group commits (one ledger segment each) since start.", float64(cs.Batches))
	counter(ch, "cairn_archive_index_commits_total", "Index transactions since start; one lists one group commit or, under SMTP load, several.", float64(cs.IndexCommits))
	counter(ch, "cairn_archive_commit_entries_total", "Entries committed by group commits since start.", float64(cs.Entries))
	counter(ch, "cairn_archive_commit_seconds_total", "Time group commits spent, by stage: segment (objects made durable, segment written) and index (gathering batches included).", cs.SegmentTime.Seconds(), "segment")
	counter(ch, "cairn_archive_commit_seconds_total", "Time group commits spent, by stage: segment (objects made durable, segment written) and index (gathering batches included).", cs.IndexTime.Seconds(), "index")
}

// advance counts what the index committed after the cursor. Called with
// m.mu held.
func (m *Metrics) advance(ctx context.Context, st *archive.Store) error {
	db := st.Index().DB()
	if !m.started {
		last, err := lastEntry(ctx, st)
		if err != nil {
			return err
		}
		m.cursor, m.started = last, true
		return nil
	}
	end, err := lastEntry(ctx, st)
	if err != nil || end <= m.cursor {
		return err
	}
	rows, err := db.QueryContext(ctx, `SELECT kind, COUNT(*) FROM entries WHERE seq >= ? AND seq < ? GROUP BY kind`, int64(m.cursor), int64(end))
	if err != nil {
		return err
	}
	add := map[string]uint64{}
	for rows.Next() {
		var k string
		var n uint64
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return err
		}
		add[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var n, b uint64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(size), 0) FROM messages WHERE seq >= ? AND seq < ?`, int64(m.cursor), int64(end)).Scan(&n, &b); err != nil {
		return err
	}
	for k, v := range add {
		m.kinds[k] += v
	}
	m.messages += n
	m.bytes += b
	m.cursor = end
	return nil
}

func collectSMTP(ch chan<- prometheus.Metric, s smtp.Stats) {
	gauge(ch, "cairn_smtp_sessions_open", "SMTP sessions open now.", float64(s.SessionsOpen))
	counter(ch, "cairn_smtp_sessions_total", "SMTP sessions accepted since start.", float64(s.Sessions))
	const help = "SMTP replies that end a message or a connection, by code and reason, since start (250 accepted: archived)."
	counter(ch, "cairn_smtp_replies_total", help, float64(s.Accepted), "250", "accepted")
	for _, m := range []map[string]uint64{s.Refused, s.TempFailures} {
		for reason, n := range m {
			code := smtpCodes[reason]
			if code == "" {
				code = "unknown"
			}
			counter(ch, "cairn_smtp_replies_total", help, float64(n), code, reason)
		}
	}
	counter(ch, "cairn_smtp_accepted_bytes_total", "Bytes of the messages answered 250, as received, since start.", float64(s.AcceptedBytes))
	h := s.Latency
	buckets := make(map[float64]uint64, len(h.UpperBounds))
	for i, ub := range h.UpperBounds {
		buckets[ub] = h.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(desc("cairn_ingest_latency_seconds",
		"Time from the end of a message's data to its acknowledgement (durably archived), by source.", "source"),
		h.Count, h.Sum, buckets, "smtp")
}

func (m *Metrics) collectEvents(ch chan<- prometheus.Metric) {
	if m.src.Audit == nil {
		return
	}
	m.mu.Lock()
	events := make(map[eventKey]uint64, len(m.events))
	for k, v := range m.events {
		events[k] = v
	}
	m.mu.Unlock()
	imap := map[[2]string]uint64{}
	for k, v := range events {
		counter(ch, "cairn_audit_events_total", "Audit events recorded since start, by service, action and outcome.", float64(v), k.service, k.action, k.outcome)
		if k.service == "imap" {
			imap[[2]string{k.action, k.outcome}] += v
		}
	}
	// The IMAP view audits every login, SELECT, FETCH, SEARCH and STORE
	// (pipelined FETCHes as one event per burst): its commands, by action.
	for _, a := range []audit.Action{audit.ActionLogin, audit.ActionLoginFailure, audit.ActionSelect, audit.ActionFetch, audit.ActionSearch, audit.ActionFlag} {
		for _, o := range []audit.Outcome{audit.OutcomeSuccess, audit.OutcomeFailure} {
			counter(ch, "cairn_imap_commands_total", "IMAP view commands audited since start, by audit action and outcome.",
				float64(imap[[2]string{string(a), string(o)}]), string(a), string(o))
		}
	}
}

// maxErrorLabel bounds the error text carried as a label.
const maxErrorLabel = 200

func errorLabel(s string) string {
	if len(s) <= maxErrorLabel {
		return s
	}
	s = s[:maxErrorLabel]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

func collectAudit(ch chan<- prometheus.Metric, l *audit.Log) {
	seal := l.SealStatus()
	gauge(ch, "cairn_audit_head_seq", "Sequence number of the newest audit event.", float64(seal.Head))
	gauge(ch, "cairn_audit_unsealed_events", "Audit events not yet sealed into a signed segment in the object store.", float64(seal.Head-seal.Sealed))
	failing := 0.0
	if seal.LastError != "" {
		failing = 1
	}
	gauge(ch, "cairn_audit_seal_failing", "1 while sealing audit segments into the object store fails.", failing)
	for _, s := range l.SinkStatus() {
		gauge(ch, "cairn_audit_sink_lag_events", "Audit events a sink has not acknowledged.", float64(s.Lag), s.Name)
		counter(ch, "cairn_audit_sink_delivered_total", "Audit events a sink acknowledged since start.", float64(s.Delivered), s.Name)
		gauge(ch, "cairn_audit_sink_failures", "Consecutive failed deliveries of a sink (0 when healthy).", float64(s.Failures), s.Name)
		gauge(ch, "cairn_audit_sink_last_success_timestamp_seconds", "When a sink last delivered without error.", ts(s.LastSuccess), s.Name)
		gauge(ch, "cairn_audit_sink_last_error_timestamp_seconds", "When a sink last failed (0: never).", ts(s.LastErrorAt), s.Name)
		if s.LastError != "" {
			gauge(ch, "cairn_audit_sink_last_error_info", "A sink's last error, as a label; present while the sink is failing.", 1, s.Name, errorLabel(s.LastError))
		}
	}
}

func (m *Metrics) collectHarvest(ch chan<- prometheus.Metric, sources []harvest.SourceStatus) {
	now := m.src.Now()
	for _, s := range sources {
		if !s.Configured {
			continue
		}
		connected := 0.0
		if s.Connected {
			connected = 1
		}
		gauge(ch, "cairn_harvest_source_connected", "1 while the harvester holds a session to the source.", connected, s.Name)
		gauge(ch, "cairn_harvest_source_failures", "Consecutive failed attempts of a source (0 once a pass succeeds).", float64(s.Failures), s.Name)
		counter(ch, "cairn_harvest_source_errors_total", "Failures of a source, ever.", float64(s.Errors), s.Name)
		gauge(ch, "cairn_harvest_source_last_success_timestamp_seconds", "End of the newest complete pass over a source's folders.", ts(s.LastSuccess), s.Name)
		for _, f := range s.Folders {
			if !f.Present {
				continue
			}
			if !f.LastRun.IsZero() {
				gauge(ch, "cairn_harvest_lag_seconds", "Time since a folder was last read to its end: new mail there is at most this old in the archive.",
					max(0, now.Sub(f.LastRun).Seconds()), s.Name, f.Name)
			}
			gauge(ch, "cairn_harvest_folder_messages", "Messages the server reported in a folder at its last run.", float64(f.Messages), s.Name, f.Name)
			counter(ch, "cairn_harvest_folder_archived_total", "Messages harvested from a folder, ever.", float64(f.Archived), s.Name, f.Name)
			counter(ch, "cairn_harvest_folder_bytes_total", "Bytes harvested from a folder, ever.", float64(f.Bytes), s.Name, f.Name)
			counter(ch, "cairn_harvest_folder_skipped_total", "Messages of a folder skipped (reported, not archived), ever.", float64(f.Skipped), s.Name, f.Name)
		}
	}
}

func collectVerify(ch chan<- prometheus.Metric, v *VerifyStatus) {
	mode := "objects"
	if v.Full {
		mode = "full"
	}
	ok := 0.0
	if v.OK {
		ok = 1
	}
	gauge(ch, "cairn_verify_last_run_timestamp_seconds", "When the last cairn verify finished, by mode (full: --full).", ts(v.Time), mode)
	gauge(ch, "cairn_verify_last_success", "1 when the last cairn verify found nothing wrong.", ok)
	gauge(ch, "cairn_verify_last_problems", "Problems the last cairn verify found.", float64(v.Problems))
	gauge(ch, "cairn_verify_last_messages", "Messages the last cairn verify checked.", float64(v.Messages))
	gauge(ch, "cairn_verify_last_duration_seconds", "How long the last cairn verify took.", v.Seconds)
}

// Names lists the metric families Cairn itself exports (for the docs and
// their test).
func Names() []string {
	return []string{
		"cairn_archive_messages_archived_total", "cairn_archive_message_bytes_archived_total", "cairn_ledger_entries_total",
		"cairn_ledger_size", "cairn_retention_disposed_total", "cairn_retention_erased_total",
		"cairn_archive_group_commits_total", "cairn_archive_commit_entries_total", "cairn_archive_index_commits_total",
		"cairn_archive_commit_seconds_total",
		"cairn_smtp_sessions_open", "cairn_smtp_sessions_total", "cairn_smtp_replies_total", "cairn_smtp_accepted_bytes_total",
		"cairn_ingest_latency_seconds", "cairn_imap_sessions_open", "cairn_imap_commands_total", "cairn_audit_events_total",
		"cairn_audit_head_seq", "cairn_audit_unsealed_events", "cairn_audit_seal_failing", "cairn_audit_sink_lag_events",
		"cairn_audit_sink_delivered_total", "cairn_audit_sink_failures", "cairn_audit_sink_last_success_timestamp_seconds",
		"cairn_audit_sink_last_error_timestamp_seconds", "cairn_audit_sink_last_error_info",
		"cairn_harvest_source_connected", "cairn_harvest_source_failures", "cairn_harvest_source_errors_total",
		"cairn_harvest_source_last_success_timestamp_seconds", "cairn_harvest_lag_seconds", "cairn_harvest_folder_messages",
		"cairn_harvest_folder_archived_total", "cairn_harvest_folder_bytes_total", "cairn_harvest_folder_skipped_total",
		"cairn_verify_last_run_timestamp_seconds", "cairn_verify_last_success", "cairn_verify_last_problems",
		"cairn_verify_last_messages", "cairn_verify_last_duration_seconds",
		"cairn_http_requests_total", "cairn_http_request_duration_seconds", "cairn_http_auth_failures_total",
	}
}
