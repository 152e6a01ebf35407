package harvest

// In-process test fixtures: a real go-imap v2 server (imapmemserver) on
// 127.0.0.1:0 and an in-memory Archiver with the archive's DeliveryKey and
// deduplication semantics. Fast checks only; the proof is the Dovecot
// integration suite (integration_test.go).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/cairn-archive/cairn/ingest"
)

const (
	testUser = "alice@example.com"
	testPass = "secret"
)

type memServer struct {
	t    testing.TB
	mem  *imapmemserver.Server
	caps imap.CapSet
	user *imapmemserver.User
	srv  *imapserver.Server
	ln   net.Listener
	port int
}

// fullCaps is what Dovecot offers that matters here.
func fullCaps() imap.CapSet {
	return imap.CapSet{
		imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}, imap.CapMove: {}, imap.CapESearch: {},
		imap.CapListStatus: {}, imap.CapListExtended: {}, imap.CapIdle: {}, imap.CapUnselect: {},
	}
}

// newMemServer starts an in-memory IMAP server with one user and an INBOX.
// tlsCfg, when set, makes the listener speak implicit TLS.
func newMemServer(t testing.TB, caps imap.CapSet, tlsCfg *tls.Config) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	u := imapmemserver.NewUser(testUser, testPass)
	mem.AddUser(u)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	srv := newIMAPServer(mem, caps)
	var ln net.Listener
	var err error
	if tlsCfg != nil {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsCfg)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &memServer{t: t, mem: mem, caps: caps, user: u, srv: srv, ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
}

func newIMAPServer(mem *imapmemserver.Server, caps imap.CapSet) *imapserver.Server {
	return imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       nopLogger{},
	})
}

// restartOnPort serves m's mailboxes again on m's port (after m.srv.Close).
func restartOnPort(t testing.TB, m *memServer) *imapserver.Server {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", m.port)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := newIMAPServer(m.mem, m.caps)
	go srv.Serve(ln)
	return srv
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

type literal struct {
	*bytes.Reader
	n int64
}

func (l literal) Size() int64 { return l.n }

// add appends raw to folder (created if missing) and returns its UID.
func (m *memServer) add(folder string, raw []byte, flags ...imap.Flag) uint32 {
	m.t.Helper()
	m.user.Create(folder, nil)
	d, err := m.user.Append(folder, literal{bytes.NewReader(raw), int64(len(raw))},
		&imap.AppendOptions{Time: time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), Flags: flags})
	if err != nil {
		m.t.Fatal(err)
	}
	return uint32(d.UID)
}

// client logs in as the test user, for checks from the side of a mail user.
func (m *memServer) client() *imapclient.Client {
	m.t.Helper()
	c, err := imapclient.DialInsecure(fmt.Sprintf("127.0.0.1:%d", m.port), nil)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := c.Login(testUser, testPass).Wait(); err != nil {
		m.t.Fatal(err)
	}
	m.t.Cleanup(func() { c.Close() })
	return c
}

// folderState returns UID → flags of a folder.
func (m *memServer) folderState(folder string) map[uint32][]imap.Flag {
	m.t.Helper()
	c := m.client()
	defer c.Logout()
	if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		m.t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		m.t.Fatal(err)
	}
	out := map[uint32][]imap.Flag{}
	for _, msg := range msgs {
		out[uint32(msg.UID)] = msg.Flags
	}
	return out
}

func (m *memServer) source(name string) Source {
	pwFile := filepath.Join(m.t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte(testPass+"\n"), 0o600)
	return Source{
		Name:         name,
		Host:         "127.0.0.1",
		Port:         m.port,
		TLS:          TLSNone,
		User:         testUser,
		PasswordFile: pwFile,
		PollInterval: time.Hour,
	}
}

// memArchiver keeps deliveries in memory with the archive's semantics: a
// known DeliveryKey is Replayed, known bytes are a Duplicate.
type memArchiver struct {
	mu       sync.Mutex
	byKey    map[string]uint64
	bySHA    map[[32]byte]uint64
	raws     map[uint64][]byte
	envs     []*ingest.Envelope // one per delivery, in order
	calls    int
	inflight int64
	maxHeld  int64
	// hook, when set, runs before each Archive; an error is returned as is.
	hook  func(env *ingest.Envelope, raw []byte) error
	delay time.Duration
}

func newMemArchiver() *memArchiver {
	return &memArchiver{byKey: map[string]uint64{}, bySHA: map[[32]byte]uint64{}, raws: map[uint64][]byte{}}
}

func (a *memArchiver) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	var rc ingest.Receipt
	if err := env.Validate(); err != nil {
		return rc, err
	}
	a.mu.Lock()
	a.calls++
	a.inflight += int64(len(raw))
	a.maxHeld = max(a.maxHeld, a.inflight)
	hook, delay := a.hook, a.delay
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.inflight -= int64(len(raw))
		a.mu.Unlock()
	}()
	if delay > 0 {
		time.Sleep(delay)
	}
	if hook != nil {
		if err := hook(env, raw); err != nil {
			return rc, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	rc.SHA256 = sha256.Sum256(raw)
	if seq, ok := a.byKey[env.DeliveryKey]; ok && env.DeliveryKey != "" {
		rc.Seq, rc.Replayed, rc.Duplicate = seq, true, true
		return rc, nil
	}
	seq := uint64(len(a.envs))
	a.envs = append(a.envs, env)
	if env.DeliveryKey != "" {
		a.byKey[env.DeliveryKey] = seq
	}
	if m, ok := a.bySHA[rc.SHA256]; ok {
		rc.Duplicate, rc.MessageSeq = true, m
	} else {
		a.bySHA[rc.SHA256] = seq
		a.raws[seq] = bytes.Clone(raw)
		rc.MessageSeq = seq
	}
	rc.Seq = seq
	if bytes.Contains(raw, []byte("MALFORMED")) {
		rc.Problems = []string{"test: malformed"}
	}
	return rc, nil
}

func (a *memArchiver) deliveries() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.envs)
}

// has reports whether raw was archived.
func (a *memArchiver) has(raw []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq, ok := a.bySHA[sha256.Sum256(raw)]
	return ok && bytes.Equal(a.raws[seq], raw)
}

// folders returns folder → UIDs of the deliveries recorded.
func (a *memArchiver) folders() map[string][]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]int{}
	for _, e := range a.envs {
		uid, _ := strconv.Atoi(e.Meta["uid"])
		out[e.Meta["folder"]] = append(out[e.Meta["folder"]], uid)
	}
	for _, u := range out {
		sort.Ints(u)
	}
	return out
}

var errTemporary = errors.New("test: archive unavailable")

func testMessage(i int, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: sender%d@example.com\r\nTo: alice@example.com\r\nSubject: message %d\r\nMessage-ID: <m%d@example.com>\r\nDate: Fri, 01 Mar 2024 12:00:00 +0000\r\n\r\n", i, i, i)
	for b.Len() < size {
		fmt.Fprintf(&b, "line %d of message %d, padding text for the body.\r\n", b.Len(), i)
	}
	return b.Bytes()
}

func newTestHarvester(t testing.TB, a ingest.Archiver, opts Options, sources ...Source) *Harvester {
	t.Helper()
	opts.Archiver = a
	if opts.StatePath == "" {
		opts.StatePath = filepath.Join(t.TempDir(), "harvest.db")
	}
	opts.Sources = sources
	if opts.MinBackoff == 0 {
		opts.MinBackoff = 20 * time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 200 * time.Millisecond
	}
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Logger == nil {
		var w io.Writer = io.Discard
		if os.Getenv("CAIRN_TEST_LOG") != "" {
			w = os.Stderr
		}
		opts.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func runOnce(t testing.TB, h *Harvester, names ...string) []PassResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.RunOnce(ctx, names...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func folderStatus(t testing.TB, h *Harvester, source, folder string) FolderStatus {
	t.Helper()
	st, err := h.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Name != source {
			continue
		}
		for _, f := range s.Folders {
			if f.Name == folder {
				return f
			}
		}
	}
	t.Fatalf("no status for %s %s: %+v", source, folder, st)
	return FolderStatus{}
}
