package smtptest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/smtp"
	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

type memArchive struct {
	mu       sync.Mutex
	byID     map[string][]byte
	seq      uint64
	failNext int
}

func (m *memArchive) Archive(_ context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failNext > 0 {
		m.failNext--
		return ingest.Receipt{}, errors.New("store down")
	}
	i := bytes.Index(raw, []byte("Message-ID: <"))
	id := string(raw[i+13 : i+bytes.IndexByte(raw[i:], '>')])
	m.seq++
	m.byID[id] = append([]byte(nil), raw...)
	return ingest.Receipt{Seq: m.seq, MessageSeq: m.seq}, nil
}

func serve(t *testing.T, a ingest.Archiver) (*smtp.Server, string) {
	s, err := smtp.New(smtp.Options{}, a, smtp.Runtime{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return s, l.Addr().String()
}

func checkAcked(t *testing.T, m *memArchive, run string, res smtptest.Result) {
	t.Helper()
	seqs := map[uint64]bool{}
	for _, a := range res.Acked {
		got, ok := m.byID[a.MessageID]
		if !ok {
			t.Errorf("message %d acknowledged (%q) but not archived", a.N, a.Reply)
			continue
		}
		if !bytes.Equal(got, smtptest.Message(run, a.N, 2000)) {
			t.Errorf("message %d archived with different bytes", a.N)
		}
		if a.Seq == 0 || seqs[a.Seq] {
			t.Errorf("message %d: seq %d missing or repeated", a.N, a.Seq)
		}
		seqs[a.Seq] = true
	}
}

func TestLoad(t *testing.T) {
	m := &memArchive{byID: map[string][]byte{}}
	_, addr := serve(t, m)
	for _, perSession := range []bool{false, true} {
		run := "plain"
		if perSession {
			run = "persession"
		}
		res, err := smtptest.Load(context.Background(), smtptest.LoadOptions{
			Addr: addr, Sessions: 4, Messages: 200, BodySize: 2000, Run: run, PerSession: perSession,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Acked) != 200 || len(res.Unacknowledged) != 0 || len(res.Refused) != 0 {
			t.Fatalf("%s: acked %d, unacknowledged %d, refused %d", run, len(res.Acked), len(res.Unacknowledged), len(res.Refused))
		}
		checkAcked(t, m, run, res)
	}
}

// With Retry, Load behaves like a sending MTA: 451 replies are retried
// until the archive takes the message.
func TestLoadRetries(t *testing.T) {
	m := &memArchive{byID: map[string][]byte{}, failNext: 30}
	_, addr := serve(t, m)
	res, err := smtptest.Load(context.Background(), smtptest.LoadOptions{
		Addr: addr, Sessions: 3, Messages: 60, BodySize: 2000, Run: "retry", Retry: true, RetryDelay: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Acked) != 60 || res.TempFailures != 30 {
		t.Fatalf("acked %d, temporary failures %d", len(res.Acked), res.TempFailures)
	}
	checkAcked(t, m, "retry", res)
}

// The server goes away mid-load: every message is either acknowledged (and
// archived) or reported unacknowledged.
func TestLoadServerGone(t *testing.T) {
	m := &memArchive{byID: map[string][]byte{}}
	s, addr := serve(t, m)
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Close()
	}()
	res, err := smtptest.Load(context.Background(), smtptest.LoadOptions{
		Addr: addr, Sessions: 4, Messages: 5000, BodySize: 2000, Run: "gone", Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Acked)+len(res.Unacknowledged)+len(res.Refused) != 5000 || len(res.Unacknowledged) == 0 {
		t.Fatalf("acked %d, unacknowledged %d, refused %d", len(res.Acked), len(res.Unacknowledged), len(res.Refused))
	}
	checkAcked(t, m, "gone", res)
}

func TestParseSeq(t *testing.T) {
	if n, ok := smtptest.ParseSeq("250 2.0.0 Archived as seq 42 (content already archived as seq 7)"); !ok || n != 42 {
		t.Errorf("%d %v", n, ok)
	}
	if _, ok := smtptest.ParseSeq("250 2.0.0 OK"); ok {
		t.Error("seq found in a reply without one")
	}
}
