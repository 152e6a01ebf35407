package s3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

func openFake(t *testing.T, mod func(*Options)) (*fakeS3, *Store) {
	t.Helper()
	f, srv := newFake(t)
	o := Options{
		Endpoint:  strings.TrimPrefix(srv.URL, "http://"),
		Region:    "us-east-1",
		Bucket:    "bucket",
		AccessKey: "a",
		SecretKey: "s",
		Lookup:    LookupPath,
		Timeout:   2 * time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = 10 * time.Millisecond
	return f, s
}

func (f *fakeS3) object(key string) (fakeObject, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objects[key]
	return o, ok
}

func (f *fakeS3) putCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts
}

var body = bytes.Repeat([]byte("cairn "), 2000)

// A PUT that stored the object but lost its answer is retried; the retry
// meets 412, finds its own token and reports success.
func TestPutRetryAfterLostAnswer(t *testing.T) {
	f, s := openFake(t, nil)
	f.onPut = func(n int) string {
		if n == 1 {
			return actStoreDrop
		}
		return actNormal
	}
	if err := s.Put(t.Context(), "k", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("Put = %v, want nil: the first attempt stored it", err)
	}
	if n := f.putCount(); n != 2 {
		t.Errorf("%d PUTs, want 2", n)
	}
	if o, _ := f.object("k"); !bytes.Equal(o.data, body) {
		t.Errorf("stored %d bytes, want %d", len(o.data), len(body))
	}
}

// Without a seekable body there is no retry, but the lost answer is still
// resolved by asking for the object.
func TestPutLostAnswerNoRewind(t *testing.T) {
	f, s := openFake(t, nil)
	f.onPut = func(int) string { return actStoreDrop }
	if err := s.Put(t.Context(), "k", io.MultiReader(bytes.NewReader(body)), int64(len(body))); err != nil {
		t.Fatalf("Put = %v, want nil: the object is stored and ours", err)
	}
	if n := f.putCount(); n != 1 {
		t.Errorf("%d PUTs of a body that cannot be rewound, want 1", n)
	}
}

// A 412 on a retry is ErrExist when the object is someone else's.
func TestPut412OnRetryNotOurs(t *testing.T) {
	f, s := openFake(t, nil)
	f.onPut = func(n int) string {
		if n == 1 {
			return actForeign503
		}
		return actNormal
	}
	err := s.Put(t.Context(), "k", bytes.NewReader(body), int64(len(body)))
	if !errors.Is(err, objstore.ErrExist) {
		t.Fatalf("Put = %v, want ErrExist", err)
	}
	if o, _ := f.object("k"); o.token != "other" {
		t.Errorf("the other writer's object was replaced")
	}
}

func TestPutRetriesTransient(t *testing.T) {
	f, s := openFake(t, nil)
	f.onPut = func(n int) string {
		if n <= 2 {
			return act503
		}
		return actNormal
	}
	if err := s.Put(t.Context(), "k", bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatalf("Put = %v", err)
	}
	if n := f.putCount(); n != 3 {
		t.Errorf("%d PUTs, want 3", n)
	}
}

func TestPutRetriesBounded(t *testing.T) {
	f, s := openFake(t, func(o *Options) { o.MaxRetries = 2 })
	f.onPut = func(int) string { return act503 }
	err := s.Put(t.Context(), "k", bytes.NewReader(body), int64(len(body)))
	if err == nil || errors.Is(err, objstore.ErrExist) {
		t.Fatalf("Put = %v, want the 503", err)
	}
	if n := f.putCount(); n != 3 {
		t.Errorf("%d PUTs with MaxRetries 2, want 3", n)
	}
	if _, ok := f.object("k"); ok {
		t.Errorf("object stored")
	}
	// Without retries: one attempt.
	f2, s2 := openFake(t, func(o *Options) { o.MaxRetries = -1 })
	f2.onPut = func(int) string { return act503 }
	s2.Put(t.Context(), "k", bytes.NewReader(body), int64(len(body)))
	if n := f2.putCount(); n != 1 {
		t.Errorf("%d PUTs with MaxRetries -1, want 1", n)
	}
}

// A server that never answers costs each attempt one Timeout, no more.
func TestPutHangBounded(t *testing.T) {
	f, s := openFake(t, func(o *Options) { o.Timeout, o.MaxRetries = 300*time.Millisecond, 1 })
	f.onPut = func(int) string { return actHang }
	start := time.Now()
	err := s.Put(t.Context(), "k", bytes.NewReader(body), int64(len(body)))
	took := time.Since(start)
	if err == nil {
		t.Fatal("Put against a hanging server succeeded")
	}
	// 2 attempts + the ownership check (answered at once here) + backoff.
	if took > 2*time.Second {
		t.Errorf("Put took %v", took)
	}
	t.Logf("Put gave up after %v: %v", took, err)
}

// A Get stream whose server stalls fails within the Timeout.
func TestGetStallBounded(t *testing.T) {
	f, s := openFake(t, func(o *Options) { o.Timeout = 300 * time.Millisecond })
	big := bytes.Repeat([]byte("x"), 1<<20)
	if err := s.Put(t.Context(), "k", bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatal(err)
	}
	f.onGet = func() string { return actHalfHang }
	rc, err := s.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, rc)
	if err == nil {
		t.Fatalf("read of a stalled stream ended without error after %d bytes", n)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stalled read took %v", took)
	}
}

func TestExactReader(t *testing.T) {
	cases := []struct {
		data string
		size int64
		ok   bool
	}{
		{"hello", 5, true},
		{"", 0, true},
		{"hell", 5, false},
		{"hello!", 5, false},
		{"x", 0, false},
	}
	for _, c := range cases {
		e := &exactReader{r: strings.NewReader(c.data), size: c.size}
		var err error
		if c.size == 0 {
			err = e.probe()
		} else {
			var got []byte
			got, err = io.ReadAll(e)
			if err == nil && string(got) != c.data {
				t.Errorf("%q/%d: read %q", c.data, c.size, got)
			}
			if !c.ok && int64(len(got)) >= c.size {
				t.Errorf("%q/%d: all %d bytes passed on before the error", c.data, c.size, len(got))
			}
		}
		if (err == nil) != c.ok {
			t.Errorf("%q/%d: err = %v, want ok=%v", c.data, c.size, err, c.ok)
		}
	}
	// Bytes held back one at a time still count.
	e := &exactReader{r: io.MultiReader(strings.NewReader("ab"), strings.NewReader("c")), size: 2}
	if b, err := io.ReadAll(e); err == nil || len(b) >= 2 {
		t.Errorf("3 bytes announced as 2: read %q, %v", b, err)
	}
}

func TestValidate(t *testing.T) {
	good := Options{Endpoint: "s3.example.com", Bucket: "cairn-archive", AccessKey: "a", SecretKey: "s"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	bad := map[string]func(*Options){
		"no endpoint":    func(o *Options) { o.Endpoint = "" },
		"scheme":         func(o *Options) { o.Endpoint = "https://s3.example.com" },
		"path":           func(o *Options) { o.Endpoint = "s3.example.com/x" },
		"no bucket":      func(o *Options) { o.Bucket = "" },
		"bad bucket":     func(o *Options) { o.Bucket = "Cairn_Archive" },
		"no secret":      func(o *Options) { o.SecretKey = "" },
		"ca w/o tls":     func(o *Options) { o.CAFile = "/etc/ca.pem" },
		"bad prefix":     func(o *Options) { o.Prefix = "/abs" },
		"upper prefix":   func(o *Options) { o.Prefix = "Prod" },
		"long prefix":    func(o *Options) { o.Prefix = strings.Repeat("p", 200) + "/" + strings.Repeat("q", 100) },
		"lookup":         func(o *Options) { o.Lookup = "virtual" },
		"negative limit": func(o *Options) { o.Timeout = -time.Second },
	}
	for name, mod := range bad {
		o := good
		mod(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
	o := good
	o.Prefix = "cairn/prod/"
	if err := o.Validate(); err != nil {
		t.Errorf("prefix with trailing slash: %v", err)
	}
	if d := o.withDefaults(); d.Prefix != "cairn/prod" || d.MaxRetries != DefaultMaxRetries || d.Timeout != DefaultTimeout || d.Lookup != LookupAuto {
		t.Errorf("withDefaults = %+v", d)
	}
}

// frozenServer is a raw TCP server that answers HEAD at once and never
// answers a PUT, like a service that froze after reading a request's head.
// It counts the body bytes that reach it anyway.
type frozenServer struct {
	addr      string
	bodyBytes atomic.Int64
}

func newFrozenServer(t *testing.T) *frozenServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &frozenServer{addr: ln.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns { // the client's idle keep-alive ones too
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { f.serve(c) })
		}
	})
	return f
}

func (f *frozenServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if req.Method != http.MethodPut {
			status := "200 OK" // the bucket exists
			if strings.Count(strings.Trim(req.URL.Path, "/"), "/") > 0 {
				status = "404 Not Found" // no object
			}
			fmt.Fprintf(c, "HTTP/1.1 %s\r\nContent-Length: 0\r\n\r\n", status)
			continue
		}
		// Never send 100 Continue nor an answer; count what arrives
		// until the client hangs up.
		n, _ := io.Copy(io.Discard, br)
		f.bodyBytes.Add(n)
		return
	}
}

// A Put to a service that never sends 100 Continue must not send its body:
// a body sitting in the socket buffers would be stored whenever the service
// came back, long after Put had reported failure. The wait for the 100 has
// to outlast the attempt, which once ended in a tie the body could win
// (TestIntegrationServerStopped saw the object appear after resume).
func TestPutFrozenServerGetsNoBody(t *testing.T) {
	f := newFrozenServer(t)
	s, err := Open(t.Context(), Options{
		Endpoint: f.addr, Region: "us-east-1", Bucket: "bucket",
		AccessKey: "a", SecretKey: "s", Lookup: LookupPath,
		Timeout: 50 * time.Millisecond, MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.backoff = time.Millisecond
	small := bytes.Repeat([]byte("s"), 10<<10)
	for i := range 20 {
		key := fmt.Sprintf("k%d", i)
		if err := s.Put(t.Context(), key, bytes.NewReader(small), int64(len(small))); err == nil {
			t.Fatalf("Put %s succeeded against a frozen server", key)
		}
	}
	// Let the server's readers see the last hang-ups.
	time.Sleep(100 * time.Millisecond)
	if n := f.bodyBytes.Load(); n != 0 {
		t.Errorf("the frozen server received %d body bytes; a failed Put must not have sent any", n)
	}
}

// cancelMidway cancels a context once n bytes were read through it.
type cancelMidway struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelMidway) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// A Put canceled while its body is being sent stores nothing, however fast
// the server reads: the body gives no byte after the cancellation, and
// never its last ones, so the request cannot complete.
func TestPutCanceledMidwayStoresNothing(t *testing.T) {
	f, s := openFake(t, nil)
	big := bytes.Repeat([]byte("m"), 4<<20)
	for i := range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		key := fmt.Sprintf("mid%d", i)
		err := s.Put(ctx, key, &cancelMidway{r: bytes.NewReader(big), n: len(big) / 2, cancel: cancel}, int64(len(big)))
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Put canceled midway: %v, want context.Canceled", err)
		}
		time.Sleep(20 * time.Millisecond) // let the server finish what it got
		if _, ok := f.object(key); ok {
			t.Fatalf("attempt %d: the server stored a Put canceled midway", i)
		}
	}
}
