package audit

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastDelivery keeps retries quick in tests.
var fastDelivery = Delivery{BatchSize: 100, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 20 * time.Millisecond}

// waitCursor waits until the named sink's durable cursor reaches seq.
func waitCursor(t testing.TB, l *Log, name string, seq Seq, timeout time.Duration) SinkStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range l.SinkStatus() {
			if s.Name == name && s.Cursor >= seq {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sink %s did not reach seq %d in %v: %+v", name, seq, timeout, l.SinkStatus())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStatus waits until cond holds for every sink's status and returns
// those statuses; after timeout it fails the test with the last ones seen.
// The pumps update their status in their own goroutines, so a test waits
// for the state it expects instead of sleeping and hoping it came.
func waitStatus(t testing.TB, l *Log, what string, timeout time.Duration, cond func(SinkStatus) bool) []SinkStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sts := l.SinkStatus()
		if !slices.ContainsFunc(sts, func(s SinkStatus) bool { return !cond(s) }) {
			return sts
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last status %+v", timeout, what, sts)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStream checks a received sequence of seqs: after dropping repeats,
// it is exactly 1..n in order; it returns how many were repeats.
func checkStream(t testing.TB, got []Seq, n Seq) int {
	t.Helper()
	var next Seq = 1
	dups := 0
	for i, s := range got {
		switch {
		case s == next:
			next++
		case s < next:
			dups++ // a resend from the cursor
		default:
			t.Fatalf("position %d: seq %d arrived before %d (gap)", i, s, next)
		}
	}
	if next != n+1 {
		t.Fatalf("received up to seq %d, want %d", next-1, n)
	}
	return dups
}

func readLines(t testing.TB, paths ...string) [][]byte {
	t.Helper()
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
			if len(l) > 0 {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestFileSinkRotatesAndResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	mk := func() *FileSink {
		s, err := NewFileSink(FileConfig{Name: "file", Path: path, MaxBytes: 64 << 10, MaxFiles: 0})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{mk()}; o.Delivery = fastDelivery })
	recordParallel(t, e.log, 600)
	waitCursor(t, e.log, "file", 600, 10*time.Second)
	e.log.Close()
	e.open(func(o *Options) { o.Sinks = []Sink{mk()}; o.Delivery = fastDelivery })
	recordParallel(t, e.log, 400)
	st := waitCursor(t, e.log, "file", 1000, 10*time.Second)
	if st.Lag != 0 || st.LastError != "" || st.Delivered != 400 {
		t.Fatalf("status %+v", st)
	}
	e.log.Close()

	rotated, _ := filepath.Glob(path + ".*")
	slices.Sort(rotated)
	if len(rotated) < 3 {
		t.Fatalf("expected rotation at 64 KiB, got %v", rotated)
	}
	var got []Seq
	for _, l := range readLines(t, append(rotated, path)...) {
		en, err := ParseLine(l)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, en.Seq)
	}
	if dups := checkStream(t, got, 1000); dups != 0 {
		t.Fatalf("%d duplicates after a clean restart", dups)
	}
	for _, p := range rotated {
		if fi, _ := os.Stat(p); fi.Size() > 64<<10 {
			t.Errorf("%s is %d bytes, over max_bytes", p, fi.Size())
		}
	}
}

func TestFileSinkCutsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.cef")
	os.WriteFile(path, []byte("CEF:0|whole line\nCEF:0|torn li"), 0o600)
	s, err := NewFileSink(FileConfig{Path: path, Format: FormatCEF})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{s}; o.Delivery = fastDelivery })
	record(t, e.log, 3)
	waitCursor(t, e.log, s.Name(), 3, 5*time.Second)
	e.log.Close()
	lines := readLines(t, path)
	if len(lines) != 4 || string(lines[0]) != "CEF:0|whole line" || !bytes.HasPrefix(lines[1], []byte("CEF:0|Cairn|")) {
		t.Fatalf("lines: %q", lines)
	}
}

// blockSink never completes a Send until its context ends: a SIEM that
// accepts the connection and then hangs.
type blockSink struct{ calls chan struct{} }

func (b *blockSink) Name() string { return "block" }
func (b *blockSink) Send(ctx context.Context, _ []Entry) (Seq, error) {
	select {
	case b.calls <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return 0, ctx.Err()
}
func (b *blockSink) Sync(ctx context.Context) (Seq, error) { return 0, nil }
func (b *blockSink) Reset()                                {}
func (b *blockSink) Close() error                          { return nil }

func TestHungSinkDoesNotBlockRecord(t *testing.T) {
	b := &blockSink{calls: make(chan struct{}, 1)}
	d := fastDelivery
	d.AttemptTimeout = 200 * time.Millisecond
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{b}; o.Delivery = d })
	record(t, e.log, 1)
	<-b.calls
	start := time.Now()
	recordParallel(t, e.log, 2000)
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("2000 records took %v with a hung sink", el)
	}
	// The first attempt fails only when its AttemptTimeout ends, in the
	// pump's goroutine: wait for that rather than for a fixed time.
	st := waitStatus(t, e.log, "the hung attempt to fail", 10*time.Second, func(s SinkStatus) bool {
		return s.LastError != "" && s.Failures > 0
	})[0]
	if st.Cursor != 0 || st.Lag != 2001 {
		t.Fatalf("status of a hung sink: %+v", st)
	}
}

// syslogServer is an in-process RFC 6587 octet-counting receiver.
type syslogServer struct {
	t    testing.TB
	ln   net.Listener
	addr string
	mu   sync.Mutex
	msgs []string
	wg   sync.WaitGroup
	conn []net.Conn
}

func startSyslogServer(t testing.TB, addr string) *syslogServer {
	s := &syslogServer{t: t, addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *syslogServer) start() {
	var err error
	for range 50 {
		if s.ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // the port is released by the previous run
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = s.ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conn = append(s.conn, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				br := bufio.NewReader(c)
				for {
					// RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG
					ls, err := br.ReadString(' ')
					if err != nil {
						return
					}
					n, err := strconv.Atoi(strings.TrimSuffix(ls, " "))
					if err != nil {
						s.t.Errorf("bad frame length %q", ls)
						return
					}
					b := make([]byte, n)
					if _, err := io.ReadFull(br, b); err != nil {
						return
					}
					s.mu.Lock()
					s.msgs = append(s.msgs, string(b))
					s.mu.Unlock()
				}
			}()
		}
	}()
}

func (s *syslogServer) stop() {
	if s.ln == nil {
		return
	}
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conn {
		c.Close()
	}
	s.conn = nil
	s.mu.Unlock()
	s.wg.Wait()
	s.ln = nil
}

func (s *syslogServer) seqs(t testing.TB) []Seq {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Seq
	for _, m := range s.msgs {
		p, err := parseSyslog(m)
		if err != nil {
			t.Fatal(err)
		}
		en, err := ParseLine([]byte(p.Msg))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, en.Seq)
	}
	return out
}

func TestSyslogSinkSurvivesReceiverRestart(t *testing.T) {
	srv := startSyslogServer(t, "127.0.0.1:0")
	sink, err := NewSyslogSink(SyslogConfig{Name: "syslog", Address: srv.addr, ConfirmAfter: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{sink}; o.Delivery = fastDelivery })
	recordParallel(t, e.log, 500)
	waitCursor(t, e.log, "syslog", 500, 10*time.Second)
	srv.stop()
	recordParallel(t, e.log, 500)
	// Wait until the pump has noticed the receiver is gone and failed a few
	// retries (Failures counts consecutive failures, so none succeeded in
	// between): the cursor must not have moved past what was confirmed.
	st := waitStatus(t, e.log, "delivery to fail while the receiver is down", 10*time.Second, func(s SinkStatus) bool {
		return s.LastError != "" && s.Failures >= 3
	})[0]
	if st.Cursor != 500 {
		t.Fatalf("while down: %+v", st)
	}
	srv.start()
	waitCursor(t, e.log, "syslog", 1000, 10*time.Second)
	dups := checkStream(t, srv.seqs(t), 1000)
	t.Logf("duplicates after the outage: %d", dups)
}

// hecServer implements the Splunk HEC event and ack endpoints: tokens,
// channels, one ackId per accepted request, acks that turn true after a
// poll, and optionally lost acks and busy answers.
type hecServer struct {
	*httptest.Server
	mu       sync.Mutex
	events   []Seq
	nextAck  uint64
	acks     map[uint64]int // ackId -> polls until true
	lose     map[uint64]bool
	busy     int // answer this many event posts with 503
	polls    int
	token    string
	channels map[string]bool
}

func newHECServer(t testing.TB) *hecServer {
	h := &hecServer{acks: map[uint64]int{}, lose: map[uint64]bool{}, token: "11111111-2222-3333-4444-555555555555", channels: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /services/collector/event", h.event)
	mux.HandleFunc("POST /services/collector/ack", h.ack)
	h.Server = httptest.NewServer(mux)
	t.Cleanup(h.Close)
	return h
}

func (h *hecServer) auth(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Splunk "+h.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"text":"Invalid token","code":4}`)
		return false
	}
	if r.Header.Get("X-Splunk-Request-Channel") == "" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"text":"Data channel is missing","code":10}`)
		return false
	}
	return true
}

func (h *hecServer) event(w http.ResponseWriter, r *http.Request) {
	if !h.auth(w, r) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy > 0 {
		h.busy--
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"text":"Server is busy","code":9}`)
		return
	}
	dec := json.NewDecoder(r.Body)
	var batch []Seq
	for {
		var ev struct {
			Time   float64           `json:"time"`
			Event  json.RawMessage   `json:"event"`
			Fields map[string]string `json:"fields"`
		}
		if err := dec.Decode(&ev); err == io.EOF {
			break
		} else if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Invalid data format","code":6}`)
			return
		}
		en, err := ParseLine(ev.Event)
		if err != nil || ev.Fields["seq"] != strconv.FormatUint(uint64(en.Seq), 10) || ev.Fields["hash"] != en.Hash.String() {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"text":"Invalid data format","code":6}`)
			return
		}
		batch = append(batch, en.Seq)
	}
	h.events = append(h.events, batch...)
	h.channels[r.Header.Get("X-Splunk-Request-Channel")] = true
	id := h.nextAck
	h.nextAck++
	h.acks[id] = 1
	fmt.Fprintf(w, `{"text":"Success","code":0,"ackId":%d}`, id)
}

func (h *hecServer) ack(w http.ResponseWriter, r *http.Request) {
	if !h.auth(w, r) {
		return
	}
	var q struct {
		Acks []uint64 `json:"acks"`
	}
	if err := json.NewDecoder(r.Body).Decode(&q); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.polls++
	out := map[string]bool{}
	for _, id := range q.Acks {
		n, ok := h.acks[id]
		done := ok && n <= 0 && !h.lose[id]
		if ok && n > 0 {
			h.acks[id] = n - 1 // indexed by the next poll
		}
		if done {
			delete(h.acks, id) // Splunk forgets an ack once it reported it
		}
		out[strconv.FormatUint(id, 10)] = done
	}
	json.NewEncoder(w).Encode(map[string]any{"acks": out})
}

func TestHECSinkWithAcks(t *testing.T) {
	h := newHECServer(t)
	h.lose[2] = true // the third batch's ack never comes back
	h.busy = 1       // and the first post is refused
	sink, err := NewHECSink(HECConfig{Name: "hec", URL: h.URL, Token: h.token, Ack: true, AckTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{sink}; o.Delivery = fastDelivery })
	record(t, e.log, 350) // sequential: batches arrive as the events do
	st := waitCursor(t, e.log, "hec", 350, 15*time.Second)
	h.mu.Lock()
	got := slices.Clone(h.events)
	polls := h.polls
	h.mu.Unlock()
	dups := checkStream(t, got, 350)
	if dups == 0 {
		t.Fatal("the lost ack did not cause a resend")
	}
	if polls == 0 || st.LastError != "" {
		t.Fatalf("polls %d, status %+v", polls, st)
	}
	t.Logf("events received %d (duplicates %d from the lost ack), ack polls %d", len(got), dups, polls)
}

func TestHECSinkCursorWaitsForAck(t *testing.T) {
	h := newHECServer(t)
	for i := range uint64(100) {
		h.lose[i] = true
	}
	sink, err := NewHECSink(HECConfig{Name: "hec", URL: h.URL, Token: h.token, Ack: true, AckTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{sink}; o.Delivery = fastDelivery })
	record(t, e.log, 20)
	// All 20 posted (Sent is set once the collector accepted the post)...
	waitStatus(t, e.log, "all 20 events sent", 10*time.Second, func(s SinkStatus) bool { return s.Sent == 20 })
	// ...and the acks polled a few times since, each poll asking for every
	// pending batch: the collector answered false each time.
	polls := func() int {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.polls
	}
	p0 := polls()
	deadline := time.Now().Add(10 * time.Second)
	for polls() < p0+3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d ack polls in 10s after all were sent, want 3; status %+v", polls()-p0, e.log.SinkStatus())
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := e.log.SinkStatus()[0]
	if st.Cursor != 0 || st.Sent != 20 || st.Lag != 20 {
		t.Fatalf("cursor moved without acks: %+v", st)
	}
}

func TestHECSinkBadToken(t *testing.T) {
	h := newHECServer(t)
	sink, _ := NewHECSink(HECConfig{Name: "hec", URL: h.URL, Token: "wrong"})
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{sink}; o.Delivery = fastDelivery })
	record(t, e.log, 1)
	st := waitStatus(t, e.log, "the post to be refused with 401", 10*time.Second, func(s SinkStatus) bool {
		return strings.Contains(s.LastError, "401")
	})[0]
	if st.Cursor != 0 || st.Delivered != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestSinkConfigValidate(t *testing.T) {
	for name, err := range map[string]error{
		"file no path":      (&FileConfig{}).Validate(),
		"file bad format":   (&FileConfig{Path: "x", Format: "xml"}).Validate(),
		"syslog no address": (&SyslogConfig{}).Validate(),
		"syslog half cert":  (&SyslogConfig{Address: "h:1", TLS: &TLSConfig{CertFile: "c"}}).Validate(),
		"hec no token":      (&HECConfig{URL: "https://h:8088"}).Validate(),
		"hec bad url":       (&HECConfig{URL: "h:8088", Token: "t"}).Validate(),
		"render sd id":      (&RenderOptions{SDID: "bad id"}).Validate(),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Open(Options{Path: "x", Origin: testOrigin}); err == nil || !strings.Contains(err.Error(), "QueryKey") {
		t.Errorf("Open without QueryKey: %v", err)
	}
	_ = errors.New
}

// TestCursorSavesRateLimited: events that come one at a time, each
// delivered before the next (an IMAP client fetching message by message),
// cost a cursor commit at most every cursorSaveEvery, not one each; and
// the durable cursor still reaches the last event within about that time.
func TestCursorSavesRateLimited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := NewFileSink(FileConfig{Name: "file", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Sinks = []Sink{s}; o.Delivery = fastDelivery })
	p := e.log.pumps[0]
	start := time.Now()
	const n = 40
	for i := range n {
		seq, err := e.log.Record(context.Background(), sampleEvent(i))
		if err != nil {
			t.Fatal(err)
		}
		waitCursor(t, e.log, "file", seq, 5*time.Second) // delivered: the pump is idle again
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	saves := p.saves.Load()
	if limit := uint64(elapsed/cursorSaveEvery) + 2; saves > limit {
		t.Fatalf("%d cursor commits for %d events delivered one by one in %v; at most %d expected", saves, n, elapsed, limit)
	}
	// The last one becomes durable once cursorSaveEvery has passed.
	deadline := time.Now().Add(cursorSaveEvery + time.Second)
	for {
		var durable int64
		if err := e.log.wdb.QueryRow(`SELECT seq FROM cursors WHERE sink = 'file'`).Scan(&durable); err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if Seq(durable) == e.log.Head() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("durable cursor %d, head %d, %v after the last delivery", durable, e.log.Head(), cursorSaveEvery+time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d events one by one in %v: %d cursor commits", n, elapsed.Round(time.Millisecond), saves)
}
