package smtp

// Tests of the Cairn patches (CAIRN-PATCHES.md): each patched reader must
// give exactly what the upstream byte-at-a-time code gives, for any input
// and any split of it into reads.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// refData is upstream's dataReader loop, unpatched.
func refData(in []byte, limit int64) ([]byte, error) {
	r := bufio.NewReader(bytes.NewReader(in))
	var out []byte
	state := 0
	const (
		stateBeginLine = iota
		stateDot
		stateDotCR
		stateCR
		stateData
		stateEOF
	)
	for state != stateEOF {
		// Upstream stops a Read once the limit's bytes are out, and the
		// next Read refuses: too large, even if the end marker follows.
		if limit > 0 && int64(len(out)) >= limit {
			return out, ErrDataTooLarge
		}
		c, err := r.ReadByte()
		if err != nil {
			return out, io.ErrUnexpectedEOF
		}
		switch state {
		case stateBeginLine:
			if c == '.' {
				state = stateDot
				continue
			}
			if c == '\r' {
				state = stateCR
				break
			}
			state = stateData
		case stateDot:
			if c == '\r' {
				state = stateDotCR
				continue
			}
			state = stateData
		case stateDotCR:
			if c == '\n' {
				state = stateEOF
				continue
			}
			state = stateData
		case stateCR:
			if c == '\n' {
				state = stateBeginLine
				break
			}
			state = stateData
		case stateData:
			if c == '\r' {
				state = stateCR
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// patchedData reads in through the patched dataReader with a small bufio
// buffer and reads of the given sizes.
func patchedData(in []byte, bufSize int, sizes []byte, limit int64) ([]byte, error) {
	dr := &dataReader{r: bufio.NewReaderSize(bytes.NewReader(in), bufSize)}
	if limit > 0 {
		dr.limited, dr.n = true, limit
	}
	var out []byte
	for i := 0; ; i++ {
		sz := 7
		if len(sizes) > 0 {
			sz = int(sizes[i%len(sizes)])%64 + 1
		}
		p := make([]byte, sz)
		n, err := dr.Read(p)
		out = append(out, p[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func FuzzDataReaderPatch(f *testing.F) {
	for _, s := range []string{
		"hello\r\n.\r\n",
		"a\r\n..dot\r\n.\r\n",
		"bare\nlf\n.\n.\r\n",
		"x\r.\r\nsmuggle\r\n.\r\n",
		"\r\r\n.\r\r\n.\r\n",
		"no end",
		"long line without cr " + string(bytes.Repeat([]byte("z"), 300)) + "\r\n.\r\n",
	} {
		f.Add([]byte(s), uint8(16), []byte{3, 60, 1}, uint16(0))
		f.Add([]byte(s), uint8(1), []byte{0}, uint16(5))
	}
	f.Fuzz(func(t *testing.T, in []byte, buf uint8, sizes []byte, limit uint16) {
		bufSize := int(buf)%64 + 16 // bufio's minimum is 16
		want, wantErr := refData(in, int64(limit))
		got, gotErr := patchedData(in, bufSize, sizes, int64(limit))
		if wantErr == ErrDataTooLarge || gotErr == ErrDataTooLarge {
			// Both refuse; how much was read before differs by design
			// (upstream too reads up to the limit).
			if wantErr != gotErr {
				t.Fatalf("limit %d: error %v, upstream %v", limit, gotErr, wantErr)
			}
			return
		}
		if !bytes.Equal(got, want) || gotErr != wantErr {
			t.Fatalf("input %q:\n got %q, %v\nwant %q, %v", in, got, gotErr, want, wantErr)
		}
	})
}

// refLineLimit is upstream's lineLimitReader count, unpatched.
func refLineLimit(chunks [][]byte, limit int) (int, error) {
	cur, total := 0, 0
	for _, c := range chunks {
		if cur > limit {
			return total, ErrTooLongLine
		}
		for _, chr := range c {
			if chr == '\n' {
				cur = 0
			}
			cur++
			if cur > limit {
				return total, ErrTooLongLine
			}
		}
		total += len(c)
	}
	return total, nil
}

func FuzzLineLimitPatch(f *testing.F) {
	f.Add([]byte("abc\ndefgh\nij"), uint8(4), uint8(3))
	f.Add([]byte("\n\n\n"), uint8(1), uint8(1))
	f.Add([]byte("abcdef"), uint8(5), uint8(6))
	f.Fuzz(func(t *testing.T, in []byte, limit, chunk uint8) {
		lim := int(limit)%20 + 1
		cs := int(chunk)%16 + 1
		var chunks [][]byte
		for i := 0; i < len(in); i += cs {
			j := i + cs
			if j > len(in) {
				j = len(in)
			}
			chunks = append(chunks, in[i:j])
		}
		want, wantErr := refLineLimit(chunks, lim)
		r := &lineLimitReader{R: &chunkReader{chunks: chunks}, LineLimit: lim}
		total := 0
		var err error
		for {
			var n int
			p := make([]byte, cs)
			n, err = r.Read(p)
			total += n
			if err != nil {
				break
			}
		}
		if err == io.EOF {
			err = nil
		}
		if err != wantErr || (err == nil && total != want) {
			t.Fatalf("input %q limit %d chunk %d: %d, %v; upstream %d, %v", in, lim, cs, total, err, want, wantErr)
		}
	})
}

// chunkReader returns its chunks one Read each.
type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks = c.chunks[1:]
	return n, nil
}

// writeCounter records each Write on the server's side of a connection.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

type patchBackend struct{}

func (patchBackend) NewSession(*Conn) (Session, error) { return patchSession{}, nil }

type patchSession struct{}

func (patchSession) Reset()                          {}
func (patchSession) Logout() error                   { return nil }
func (patchSession) Mail(string, *MailOptions) error { return nil }
func (patchSession) Rcpt(string, *RcptOptions) error { return nil }
func (patchSession) Data(r io.Reader) error          { _, err := io.Copy(io.Discard, r); return err }

// Patch 3: a reply of several lines (EHLO's capabilities) reaches the
// connection in one Write, whole and in order; a one-line reply too.
func TestReplyIsOneWrite(t *testing.T) {
	s := NewServer(patchBackend{})
	s.Domain = "cairn.test"
	s.EnableSMTPUTF8 = true
	s.MaxMessageBytes = 1 << 20
	server, client := net.Pipe()
	defer client.Close()
	wc := &writeCounter{Conn: server}
	done := make(chan error, 1)
	go func() { done <- s.handleConn(newConn(wc, s)) }()

	r := bufio.NewReader(client)
	readReply := func() []string {
		t.Helper()
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading a reply: %v (so far %q)", err, lines)
			}
			lines = append(lines, line)
			if len(line) < 4 || line[3] != '-' {
				return lines
			}
		}
	}
	send := func(cmd string) {
		t.Helper()
		if _, err := io.WriteString(client, cmd+"\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		wc.mu.Lock()
		defer wc.mu.Unlock()
		return len(wc.writes)
	}

	banner := readReply()
	if len(banner) != 1 || count() != 1 {
		t.Fatalf("banner %q in %d writes, want 1 line in 1", banner, count())
	}
	send("EHLO client.test")
	ehlo := readReply()
	if len(ehlo) < 4 {
		t.Fatalf("EHLO reply %q: want the capability lines", ehlo)
	}
	if count() != 2 {
		t.Fatalf("EHLO's %d lines came in %d writes, want 1", len(ehlo), count()-1)
	}
	wc.mu.Lock()
	got := wc.writes[1]
	wc.mu.Unlock()
	if want := strings.Join(ehlo, ""); got != want {
		t.Fatalf("EHLO write %q, read %q", got, want)
	}
	if !strings.HasPrefix(ehlo[0], "250-") || !strings.HasPrefix(ehlo[len(ehlo)-1], "250 ") {
		t.Fatalf("EHLO reply %q: want 250- lines ending in a 250 line", ehlo)
	}
	for _, l := range ehlo {
		if !strings.HasSuffix(l, "\r\n") || strings.Count(l, "\r") != 1 {
			t.Fatalf("EHLO line %q: want one CRLF at its end", l)
		}
	}
	send("NOOP")
	if reply := readReply(); len(reply) != 1 || reply[0] != "250 2.0.0 I have successfully done nothing\r\n" || count() != 3 {
		t.Fatalf("NOOP reply %q in %d writes", reply, count()-2)
	}
	send("QUIT")
	readReply()
	client.Close()
	<-done
}

// readCounter counts Read calls on the server's side of a connection.
type readCounter struct {
	net.Conn
	mu    sync.Mutex
	reads int
}

func (r *readCounter) Read(p []byte) (int, error) {
	r.mu.Lock()
	r.reads++
	r.mu.Unlock()
	return r.Conn.Read(p)
}

type sizeBackend struct{ got chan []byte }

func (b sizeBackend) NewSession(*Conn) (Session, error) { return sizeSession(b), nil }

type sizeSession sizeBackend

func (sizeSession) Reset()                          {}
func (sizeSession) Logout() error                   { return nil }
func (sizeSession) Mail(string, *MailOptions) error { return nil }
func (sizeSession) Rcpt(string, *RcptOptions) error { return nil }
func (s sizeSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.got <- b
	return err
}

// Patch 4: a 1 MiB message sent in 256 KiB writes is read in 64 KiB reads
// (upstream's 4 KiB buffer took 256 and more), and arrives whole.
func TestDataReadInLargeReads(t *testing.T) {
	be := sizeBackend{got: make(chan []byte, 1)}
	s := NewServer(be)
	s.Domain = "cairn.test"
	s.MaxMessageBytes = 4 << 20
	server, client := net.Pipe()
	defer client.Close()
	rc := &readCounter{Conn: server}
	go s.handleConn(newConn(rc, s))

	r := bufio.NewReader(client)
	expect := func(code string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", code, err)
			}
			if !strings.HasPrefix(line, code) {
				t.Fatalf("got %q, want %s", line, code)
			}
			if line[3] == ' ' {
				return
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(client, s); err != nil {
			t.Fatal(err)
		}
	}
	expect("220")
	send("HELO client.test\r\n")
	expect("250")
	send("MAIL FROM:<a@example.com>\r\n")
	expect("250")
	send("RCPT TO:<b@example.com>\r\n")
	expect("250")
	send("DATA\r\n")
	expect("354")
	rc.mu.Lock()
	before := rc.reads
	rc.mu.Unlock()

	line := strings.Repeat("x", 78) + "\r\n"
	var msg strings.Builder
	for msg.Len() < 1<<20 {
		msg.WriteString(line)
	}
	body := msg.String()
	go func() {
		for i := 0; i < len(body); i += 256 << 10 {
			end := i + 256<<10
			if end > len(body) {
				end = len(body)
			}
			io.WriteString(client, body[i:end])
		}
		io.WriteString(client, ".\r\n")
	}()
	got := <-be.got
	expect("250")
	rc.mu.Lock()
	reads := rc.reads - before
	rc.mu.Unlock()
	if string(got) != body {
		t.Fatalf("the message arrived as %d bytes, want the %d sent", len(got), len(body))
	}
	if want := len(body)/readBufferSize + 8; reads > want {
		t.Fatalf("DATA of %d bytes took %d reads, want at most %d", len(body), reads, want)
	}
	t.Logf("DATA of %d bytes in %d reads", len(body), reads)
	send("QUIT\r\n")
	expect("221")
}

// Patch 4: a buffer goes back to the pool emptied, so bytes a client left
// unread (those pipelined after STARTTLS) reach no other connection.
func TestReleasedReaderIsEmpty(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := &Conn{server: NewServer(patchBackend{}), conn: server}
	c.init()
	go io.WriteString(client, "STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
	line, err := c.text.ReadLine()
	if err != nil || line != "STARTTLS" {
		t.Fatalf("read %q, %v", line, err)
	}
	if c.text.R.Buffered() == 0 {
		t.Fatal("the pipelined command is not buffered: the test proves nothing")
	}
	held := c.pooled
	c.releaseReader()
	if c.pooled != nil {
		t.Fatal("the connection still holds its buffer")
	}
	if held.Buffered() != 0 {
		t.Fatalf("a released buffer holds %d bytes", held.Buffered())
	}
}

// Patch 5: the replies to a pipelined MAIL, RCPT, RCPT, DATA group reach
// the connection in one write; a MAIL sent alone is answered at once; and
// replies held when too many errors close the session are sent first.
func TestPipelinedRepliesInOneWrite(t *testing.T) {
	s := NewServer(patchBackend{})
	s.Domain = "cairn.test"
	s.MaxMessageBytes = 1 << 20
	server, client := net.Pipe()
	defer client.Close()
	wc := &writeCounter{Conn: server}
	done := make(chan error, 1)
	go func() { done <- s.handleConn(newConn(wc, s)) }()

	r := bufio.NewReader(client)
	readLine := func() string {
		t.Helper()
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading a reply: %v", err)
		}
		return line
	}
	send := func(cmd string) {
		t.Helper()
		if _, err := io.WriteString(client, cmd); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		wc.mu.Lock()
		defer wc.mu.Unlock()
		return len(wc.writes)
	}
	readLine() // banner
	send("HELO client.test\r\n")
	readLine()

	// Alone: answered at once (a held reply would leave the client waiting).
	before := count()
	send("MAIL FROM:<a@example.com>\r\n")
	if l := readLine(); !strings.HasPrefix(l, "250 ") || count() != before+1 {
		t.Fatalf("MAIL alone: %q in %d writes", l, count()-before)
	}
	send("RSET\r\n")
	readLine()

	// A group in one segment: one write for its four replies.
	before = count()
	send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, readLine()[:3])
	}
	if strings.Join(got, " ") != "250 250 250 354" || count() != before+1 {
		t.Fatalf("pipelined group: replies %v in %d writes, want 250 250 250 354 in 1", got, count()-before)
	}
	send("hello\r\n.\r\n")
	if l := readLine(); !strings.HasPrefix(l, "250 ") {
		t.Fatalf("end of data: %q", l)
	}

	// A held MAIL reply, then unknown commands past the error threshold:
	// every reply arrives, in order, before the connection closes.
	send("MAIL FROM:<a@example.com>\r\nXA\r\nXB\r\nXC\r\nXD\r\n")
	var codes []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break
		}
		codes = append(codes, line[:3])
	}
	if strings.Join(codes, " ") != "250 501 501 501 501 500" {
		t.Fatalf("past the error threshold: replies %v, want 250, four 501s (bad commands) and the closing 500", codes)
	}
	<-done
}

// Patch 6: a connection's write buffer comes from a pool, is kept across
// the re-init after STARTTLS (pointed at the new connection), and goes back
// empty when the connection's goroutine ends; many connections at once,
// each reusing buffers others released, get exactly their own replies.
func TestWriteBufferPooled(t *testing.T) {
	first, _ := net.Pipe()
	second, client := net.Pipe()
	defer client.Close()
	c := &Conn{server: NewServer(patchBackend{}), conn: first}
	c.init()
	w := c.pooledW
	if w == nil || c.text.W != w {
		t.Fatal("the textproto writer is not the pooled buffer")
	}
	c.conn = second // as after STARTTLS
	c.init()
	if c.pooledW != w || c.text.W != w {
		t.Fatal("re-init changed the write buffer")
	}
	printed := make(chan error, 1)
	go func() { printed <- c.text.PrintfLine("220 after re-init") }()
	if line, err := bufio.NewReader(client).ReadString('\n'); err != nil || line != "220 after re-init\r\n" {
		t.Fatalf("after re-init the buffer wrote %q, %v; want it on the new connection", line, err)
	}
	if err := <-printed; err != nil {
		t.Fatal(err)
	}
	w.WriteString("unsent")
	c.releaseWriter()
	if c.pooledW != nil || w.Buffered() != 0 {
		t.Fatalf("released: connection holds %v, buffer holds %d bytes", c.pooledW, w.Buffered())
	}

	s := NewServer(patchBackend{})
	s.Domain = "cairn.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Close()
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			for i := 0; i < 25; i++ {
				if err := noopSession(l.Addr().String(), fmt.Sprintf("c%d-%d.test", g, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// noopSession says EHLO as name, NOOP and QUIT, and checks each reply.
func noopSession(addr, name string) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	reply := func(want string) error {
		var last string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("%s: reading a reply: %v", name, err)
			}
			if len(line) < 4 || line[3] != '-' {
				last = line
				break
			}
		}
		if !strings.HasPrefix(last, want) {
			return fmt.Errorf("%s: reply %q, want %q", name, last, want)
		}
		return nil
	}
	if err := reply("220 cairn.test"); err != nil {
		return err
	}
	for _, step := range []struct{ cmd, want string }{
		{"EHLO " + name, "250 "},
		{"NOOP", "250 2.0.0 I have successfully done nothing\r\n"},
		{"QUIT", "221 2.0.0 Bye\r\n"},
	} {
		if _, err := io.WriteString(conn, step.cmd+"\r\n"); err != nil {
			return err
		}
		if err := reply(step.want); err != nil {
			return err
		}
	}
	return nil
}

// Patch 7: a goroutine that has served a connection takes the next one
// that Serve hands it; Shutdown and Close end the idle ones at once.
func TestIdleGoroutineServesTheNextConnection(t *testing.T) {
	for _, stop := range []string{"Shutdown", "Close"} {
		s := NewServer(patchBackend{})
		s.Domain = "cairn.test"
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()
		if err := noopSession(l.Addr().String(), "first.test"); err != nil {
			t.Fatal(err)
		}
		// The goroutine that served it is now idle: it takes a connection
		// handed to it directly, as Serve does.
		server, client := net.Pipe()
		select {
		case s.idle <- server:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no goroutine took a connection after the first one ended", stop)
		}
		client.SetDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(client).ReadString('\n'); err != nil || !strings.HasPrefix(line, "220 cairn.test") {
			t.Fatalf("%s: the idle goroutine's connection read %q, %v", stop, line, err)
		}
		client.Close()
		// Whatever waits idle ends with the server, long before
		// idleConnGoroutine.
		t0 := time.Now()
		if stop == "Shutdown" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = s.Shutdown(ctx)
			cancel()
		} else {
			err = s.Close()
			s.wg.Wait()
		}
		if err != nil || time.Since(t0) > 2*time.Second {
			t.Fatalf("%s: %v after %v", stop, err, time.Since(t0))
		}
		if err := <-served; err != nil {
			t.Fatalf("%s: Serve: %v", stop, err)
		}
	}
}

// refReply is upstream's formatting of a reply (before cairn patch 8).
func refReply(code int, enhCode EnhancedCode, text []string) string {
	var b strings.Builder
	last := len(text) - 1
	for i := 0; i < last; i++ {
		fmt.Fprintf(&b, "%d-%v\r\n", code, text[i])
	}
	if enhCode == NoEnhancedCode {
		fmt.Fprintf(&b, "%d %v\r\n", code, text[last])
	} else {
		fmt.Fprintf(&b, "%d %v.%v.%v %v\r\n", code, enhCode[0], enhCode[1], enhCode[2], text[last])
	}
	return b.String()
}

// Patch 8: replies are formatted without fmt, to the same bytes.
func FuzzReplyPatch(f *testing.F) {
	f.Add(250, 2, 0, 0, "OK")
	f.Add(250, -1, -1, -1, "cairn.test\nPIPELINING\n8BITMIME\nSIZE 1000")
	f.Add(421, 4, 4, 2, "Idle timeout, bye bye")
	f.Add(-5, 123, -7, 0, "\n\n")
	f.Fuzz(func(t *testing.T, code, e0, e1, e2 int, joined string) {
		enh := EnhancedCode{e0, e1, e2}
		text := strings.Split(joined, "\n")
		if got, want := string(appendReply(nil, code, enh, text)), refReply(code, enh, text); got != want {
			t.Fatalf("appendReply(%d, %v, %q) = %q, want %q", code, enh, text, got, want)
		}
	})
}

// discardConn is a net.Conn whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// Patch 8: a reply is formatted into the write buffer, not into a buffer of
// its own (which escaped to the heap: 256 bytes a reply, seven a message).
func TestReplyAllocates(t *testing.T) {
	c := &Conn{server: NewServer(patchBackend{}), conn: discardConn{}}
	c.init()
	defer c.releaseWriter()
	// One allocation is upstream's: the lines split again on "\n".
	if n := testing.AllocsPerRun(100, func() { c.writeResponse(250, EnhancedCode{2, 0, 0}, "OK") }); n > 1 {
		t.Errorf("a one-line reply made %v allocations, want at most 1", n)
	}
}
