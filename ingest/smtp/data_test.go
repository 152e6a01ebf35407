package smtp

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// reference: the plain definition, byte by byte over the whole message.
func bareLineEnding(p []byte) bool {
	for i, c := range p {
		if c == '\n' && (i == 0 || p[i-1] != '\r') {
			return true
		}
		if c == '\r' && (i+1 == len(p) || p[i+1] != '\n') {
			return true
		}
	}
	return false
}

// chunkReader returns p in chunks of the given sizes (cycled).
type chunkReader struct {
	p     []byte
	sizes []int
	i     int
}

func (r *chunkReader) Read(b []byte) (int, error) {
	if len(r.p) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(r.sizes) > 0 {
		n = max(1, r.sizes[r.i%len(r.sizes)])
		r.i++
	}
	n = min(n, len(b), len(r.p))
	copy(b, r.p[:n])
	r.p = r.p[n:]
	return n, nil
}

func testServer(t testing.TB, maxBytes int64) *Server {
	s, err := New(Options{MaxMessageBytes: maxBytes}, &noopArchiver{}, Runtime{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReadMessage(t *testing.T) {
	s := testServer(t, 1<<20)
	for _, tc := range []struct {
		in  string
		bad bool
	}{
		{"", false},
		{"a\r\nb\r\n", false},
		{"a\nb\r\n", true},
		{"\n", true},
		{"a\rb\r\n", true},
		{"a\r", true},
		{"a\r\r\n", true},
		{"\r\n\r\n", false},
	} {
		for _, sizes := range [][]int{nil, {2}, {3, 1}, {1000}} {
			got, held, err := s.readMessage(&chunkReader{p: []byte(tc.in), sizes: sizes}, 0)
			s.budget.release(held)
			if tc.bad != errors.Is(err, errBareLineEnding) || (!tc.bad && err != nil) {
				t.Errorf("%q chunks %v: err %v", tc.in, sizes, err)
			}
			if !tc.bad && string(got) != tc.in {
				t.Errorf("%q: got %q", tc.in, got)
			}
		}
	}
	// Growth beyond the first buffer, with a reader that returns data and
	// EOF together.
	big := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 3000)
	got, held, err := s.readMessage(iotest.DataErrReader(bytes.NewReader(big)), 0)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big message: %v, %d bytes", err, len(got))
	}
	s.budget.release(held)
	if s.budget.used.Load() != 0 {
		t.Error("budget not returned")
	}
}

// FuzzLineEndings checks the chunked check against the plain definition,
// for any split of any input.
func FuzzLineEndings(f *testing.F) {
	for _, seed := range []string{"a\r\nb\r\n", "\n.\r\n", "\n.\n", "\r.\r\n", "\r\r\n.\r\r\n", "x\r", "\r\n.\r\n"} {
		f.Add([]byte(seed), uint8(1), uint8(3))
	}
	s := testServer(f, 1<<20)
	f.Fuzz(func(t *testing.T, p []byte, a, b uint8) {
		got, held, err := s.readMessage(&chunkReader{p: p, sizes: []int{int(a), int(b)}}, 0)
		s.budget.release(held)
		want := bareLineEnding(p)
		if want != errors.Is(err, errBareLineEnding) {
			t.Fatalf("%q: bare=%v but err=%v", p, want, err)
		}
		if !want && !bytes.Equal(got, p) {
			t.Fatalf("%q: read %q", p, got)
		}
	})
}

func TestStats(t *testing.T) {
	fa := &fakeArchiver{}
	s, addr := startServer(t, Options{AcceptRecipients: []string{"example.com"}}, fa, Runtime{})
	c := dial(t, addr)
	c.Hello(heloName)
	for i := 0; i < 3; i++ {
		c.deliver("a@example.com", []string{"b@example.com"}, message("s", "x\r\n"))
	}
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<x@elsewhere.example>\r\nRSET\r\n")
	c.Expect("250")
	c.Expect("550")
	c.Expect("250")
	st := s.Stats()
	size := uint64(len(message("s", "x\r\n")))
	if st.Accepted != 3 || st.AcceptedBytes != 3*size || st.Refused["recipient"] != 1 || st.SessionsOpen != 1 || st.Sessions != 1 {
		t.Errorf("stats %+v", st)
	}
	h := st.Latency
	if h.Count != 3 || h.Counts[len(h.Counts)-1] != 3 || len(h.UpperBounds) != len(h.Counts) || h.Sum <= 0 {
		t.Errorf("histogram %+v", h)
	}
	for i := 1; i < len(h.Counts); i++ {
		if h.Counts[i] < h.Counts[i-1] {
			t.Errorf("histogram not cumulative: %v", h.Counts)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (&Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	d := DefaultOptions()
	if err := d.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	bad := []Options{
		{Listen: "nonsense"},
		{TLSCert: "c.pem"},
		{AllowedNetworks: []string{"10.0.0.0/33"}},
		{AllowedNetworks: []string{"example.com"}},
		{AcceptRecipients: []string{"a b@example.com"}},
		{AcceptRecipients: []string{"user@"}},
		{MaxMessageBytes: -1},
		{MaxMessageBytes: 1 << 20, MaxBufferedBytes: 1 << 10},
		{MaxLineLength: 100},
		{MaxSessions: 10, MaxSessionsPerIP: 20},
		{CommandTimeout: 10},
	}
	for _, o := range bad {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v: want an error", o)
		}
	}
	// New refuses what needs a runtime piece it was not given.
	for _, o := range []Options{{TLSListen: "127.0.0.1:0"}, {AuthRequired: true}} {
		if _, err := New(o, &noopArchiver{}, Runtime{}); err == nil {
			t.Errorf("New(%+v): want an error", o)
		}
	}
	if _, err := New(Options{}, nil, Runtime{}); err == nil {
		t.Error("New with a nil archiver")
	}
}

// A SIZE= announcement cannot reserve more than maxInitialBuffer before the
// data arrives.
func TestSizeHintIsCapped(t *testing.T) {
	s := testServer(t, 64<<20)
	_, held, err := s.readMessage(&chunkReader{p: []byte("x\r\n")}, 60<<20)
	if err != nil || held > maxInitialBuffer {
		t.Fatalf("held %d bytes for a 3-byte message announced as 60 MiB (err %v)", held, err)
	}
	s.budget.release(held)
}

// Message buffers are reused (putBuffer after Archive): a reused buffer
// is charged to the budget at its capacity, and one that the budget cannot
// take gives way to a new buffer of the usual size. Each server has its
// own pool, so what other tests' sessions give back never reaches it.
func TestReadMessageReusesBuffers(t *testing.T) {
	s := testServer(t, 1<<20)
	big := bytes.Repeat([]byte("0123456789abcde\r\n"), 4000) // 68,000 bytes: grows past 16 KiB
	got, held, err := s.readMessage(&chunkReader{p: big, sizes: []int{5000}}, 0)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big message: %v", err)
	}
	s.budget.release(held)
	bigCap := cap(got)
	drain := func(s *Server) {
		for s.buffers.Get() != nil {
		}
	}

	// Put back alone, the big buffer is reused for the next message and
	// charged at its capacity. (sync.Pool may drop what it holds, on a GC
	// or, under the race detector, at random: a few tries.)
	small := []byte("Subject: x\r\n\r\nhi\r\n")
	reused := false
	for try := 0; try < 20 && !reused; try++ {
		drain(s) // the buffers the big one outgrew
		s.putBuffer(got[:0:bigCap])
		got, held, err = s.readMessage(&chunkReader{p: small, sizes: []int{7}}, 0)
		if err != nil || !bytes.Equal(got, small) {
			t.Fatalf("small message: %q %v", got, err)
		}
		if held != int64(cap(got)) {
			t.Fatalf("a buffer of %d bytes charged %d", cap(got), held)
		}
		reused = cap(got) == bigCap
		s.budget.release(held)
		if !reused {
			got = make([]byte, 0, bigCap)
		}
	}
	if !reused {
		t.Fatalf("the %d-byte buffer was never reused", bigCap)
	}

	// A budget that has room for a new buffer only.
	tight := testServer(t, 1<<20)
	tight.budget.limit = initialBuffer
	tight.putBuffer(make([]byte, 0, 100<<10))
	got, held, err = tight.readMessage(&chunkReader{p: small}, 0)
	if err != nil || !bytes.Equal(got, small) || held != initialBuffer || cap(got) != initialBuffer {
		t.Fatalf("tight budget: %q, held %d, cap %d, %v", got, held, cap(got), err)
	}
	tight.budget.release(held)
	if tight.budget.used.Load() != 0 {
		t.Fatalf("budget left at %d", tight.budget.used.Load())
	}
}
