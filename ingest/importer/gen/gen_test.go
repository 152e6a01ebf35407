package gen

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDeterministic(t *testing.T) {
	a, b := New(42), New(42)
	for i := range 50 {
		ma, mb := a.Next(3000+i*500), b.Next(3000+i*500)
		if !bytes.Equal(ma.Raw, mb.Raw) {
			t.Fatalf("message %d differs between two generators with the same seed", i)
		}
	}
	if bytes.Equal(New(1).Next(4000).Raw, New(2).Next(4000).Raw) {
		t.Fatal("seeds 1 and 2 give the same message")
	}
}

func TestMessagesAreRealistic(t *testing.T) {
	g := New(7)
	tokens := map[string]int{} // token: times in its own message
	var all bytes.Buffer
	var attachments, fromLines int
	for i := range 300 {
		size := 2500 + (i%10)*3000
		if i%50 == 0 {
			size = 200_000
		}
		m := g.Next(size)
		all.Write(m.Raw)
		if d := len(m.Raw) - size; size > 3000 && (d > size/5 || -d > size/5) {
			t.Errorf("message %d: %d bytes, asked for %d", i, len(m.Raw), size)
		}
		if tokens[m.Token] > 0 {
			t.Fatalf("token %s repeats", m.Token)
		}
		tokens[m.Token] = bytes.Count(m.Raw, []byte(m.Token))
		if !bytes.HasSuffix(m.Raw, []byte("\n")) || bytes.Contains(m.Raw, []byte("\r")) {
			t.Errorf("message %d: line endings", i)
		}
		attachments += m.Attachments
		if bytes.Contains(m.Raw, []byte("\nFrom ")) || bytes.Contains(m.Raw, []byte("\n>From ")) {
			fromLines++
		}

		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if id := msg.Header.Get("Message-Id"); id != "<"+m.MessageID+">" {
			t.Errorf("message %d: Message-ID %q", i, id)
		}
		dec := new(mime.WordDecoder)
		if subj, _ := dec.DecodeHeader(msg.Header.Get("Subject")); subj != m.Subject {
			t.Errorf("message %d: subject %q, want %q", i, subj, m.Subject)
		}
		if date, err := msg.Header.Date(); err != nil || !date.Equal(m.Date) {
			t.Errorf("message %d: date %v %v", i, date, err)
		}
		from, err := mail.ParseAddress(msg.Header.Get("From"))
		if err != nil || from.Address != m.From {
			t.Errorf("message %d: From %v %v", i, from, err)
		}
		// The MIME structure parses and holds the expected parts.
		mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		n := countParts(t, mt, params, msg.Body)
		if want := 2 + m.Attachments; strings.HasPrefix(mt, "multipart/") && n != want {
			t.Errorf("message %d: %d leaf parts, want %d", i, n, want)
		}
		if !bytes.Contains(m.Raw, []byte(m.Token)) {
			t.Errorf("message %d: token not in the bytes", i)
		}
	}
	for tok, own := range tokens {
		if c := bytes.Count(all.Bytes(), []byte(tok)); own == 0 || c != own {
			t.Fatalf("token %s appears %d times in all messages, %d in its own", tok, c, own)
		}
	}
	if attachments == 0 || fromLines == 0 {
		t.Errorf("%d attachments, %d messages with From_-like lines: both must be exercised", attachments, fromLines)
	}
}

func countParts(t *testing.T, mt string, params map[string]string, body io.Reader) int {
	if !strings.HasPrefix(mt, "multipart/") {
		io.Copy(io.Discard, body)
		return 1
	}
	mr := multipart.NewReader(body, params["boundary"])
	n := 0
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		pmt, pparams, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		n += countParts(t, pmt, pparams, p)
	}
}

func TestCRLF(t *testing.T) {
	g := New(3)
	g.CRLF = true
	m := g.Next(8000)
	if bytes.Contains(bytes.ReplaceAll(m.Raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Fatal("a bare LF in a CRLF message")
	}
}

func TestMboxWriter(t *testing.T) {
	var b bytes.Buffer
	w := NewMboxWriter(&b)
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	w.Write("a@example.com", date, []byte("S: 1\n\nFrom x\n>From y\n>>From z\n>Fromage\n"))
	w.Write("", date, []byte("S: 2\r\n\r\nno newline at the end"))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "From a@example.com Tue Jan  2 03:04:05 2024\nS: 1\n\n>From x\n>>From y\n>>>From z\n>Fromage\n\n" +
		"From MAILER-DAEMON Tue Jan  2 03:04:05 2024\r\nS: 2\r\n\r\nno newline at the end\r\n\r\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
}

func TestMaildirWriter(t *testing.T) {
	dir := t.TempDir()
	md, err := CreateMaildir(filepath.Join(dir, "Maildir"))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := md.Subfolder("A/B")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	p1, err := md.Deliver([]byte("S: 1\n"), date, "")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := sub.Deliver([]byte("S: 2\n"), date, "RS")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(p1) != filepath.Join(dir, "Maildir", "new") || !strings.HasPrefix(filepath.Base(p1), "1704164645.") {
		t.Errorf("new message at %s", p1)
	}
	if filepath.Dir(p2) != filepath.Join(dir, "Maildir", ".A.B", "cur") || !strings.HasSuffix(p2, ":2,RS") {
		t.Errorf("flagged message at %s", p2)
	}
	if fi, err := os.Stat(p2); err != nil || !fi.ModTime().Equal(date) {
		t.Errorf("mtime %v %v", fi.ModTime(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, "Maildir", ".A.B", "maildirfolder")); err != nil {
		t.Error(err)
	}
	if des, _ := os.ReadDir(filepath.Join(dir, "Maildir", "tmp")); len(des) != 0 {
		t.Errorf("tmp/ not empty: %v", des)
	}
}
