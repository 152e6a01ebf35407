package imapview

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicHandler counts log lines that report a recovered panic.
type panicHandler struct {
	slog.Handler
	panics *atomic.Int64
	last   *atomic.Value
}

func (h panicHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		h.panics.Add(1)
		h.last.Store(r.Message)
	}
	return nil
}

func (h panicHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h panicHandler) WithGroup(string) slog.Handler            { return h }

// FuzzSession writes a fuzzed command into a session in each state (not
// authenticated, authenticated, a folder selected, a folder examined), as
// mox's imapserver fuzz test does. The server must neither panic nor
// hang, and must serve the next command of another client.
func FuzzSession(f *testing.F) {
	seeds := []string{
		"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "AUTHENTICATE PLAIN AGF1ZGl0b3IAeA==",
		"LOGIN auditor x", `LOGIN {7}` + "\r\n" + `auditor "x"`, "SELECT INBOX", "EXAMINE \"Dates/2024/04\"",
		"SELECT Custodians/alice@example.com", "UNSELECT", "CLOSE", "EXPUNGE", "UID EXPUNGE 1:*",
		"SUBSCRIBE Trash", "UNSUBSCRIBE INBOX", `LSUB "" "*"`, `LIST "" "*"`, `LIST "" ""`, `LIST (SUBSCRIBED) "" "%" RETURN (CHILDREN)`,
		"NAMESPACE", "ENABLE UTF8=ACCEPT", "CREATE Trash", "DELETE INBOX", "RENAME INBOX x",
		"STATUS INBOX (UIDNEXT MESSAGES UIDVALIDITY UNSEEN SIZE RECENT)", "APPEND INBOX (\\Seen) {2+}\r\nhi",
		"FETCH 1 ALL", "FETCH 1:* FULL", "UID FETCH 1:* (UID FLAGS BODYSTRUCTURE ENVELOPE)", "FETCH 1 BODY[1.2.MIME]<0.10>",
		"FETCH * (BODY.PEEK[HEADER.FIELDS (FROM TO)] BINARY.PEEK[1] BINARY.SIZE[2])", "FETCH 1 BODY[TEXT]",
		`STORE 1 +FLAGS ($Privileged \Seen)`, `UID STORE 1:* -FLAGS.SILENT ($x)`, `STORE 1 FLAGS (\Deleted)`,
		"COPY 1 Trash", "MOVE 1:* INBOX", "SEARCH ALL", "UID SEARCH RETURN (MIN MAX COUNT) BODY hello",
		"SEARCH OR FROM a (NOT SUBJECT \"x y\") SINCE 1-Feb-2024 LARGER 10 UID 1:5,7 KEYWORD $x",
		"SEARCH CHARSET UTF-8 TEXT \"é\" HEADER X-Mailer \"\" SENTON 2-Mar-2024 UNSEEN 1:*",
		"IDLE\r\nDONE", "CHECK", "UID FETCH 4294967295:* (FLAGS)", "FETCH 0 ALL", "SEARCH {4294967295}",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	var panics atomic.Int64
	var last atomic.Value
	fx := newFixture(f, fixtureOpts{generated: 3, opts: func(o *Options) {
		o.Logger = slog.New(panicHandler{panics: &panics, last: &last})
		o.MaxConnections, o.MaxConnectionsPerIP = 100000, 100000
	}})
	login := fmt.Sprintf("LOGIN auditor %q", fx.password)
	states := [][]string{
		{},
		{login},
		{login, "SELECT INBOX"},
		{login, "EXAMINE Custodians/" + custA},
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, setup := range states {
			client, err := net.Dial("tcp", fx.addr)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer client.Close()
				client.SetDeadline(time.Now().Add(1500 * time.Millisecond))
				br := bufio.NewReader(client)
				br.ReadString('\n') // greeting
				for i, cmd := range setup {
					tag := fmt.Sprintf("s%d", i)
					fmt.Fprintf(client, "%s %s\r\n", tag, cmd)
					for {
						line, err := br.ReadString('\n')
						if err != nil || strings.HasPrefix(line, tag+" ") {
							break
						}
					}
				}
				fmt.Fprintf(client, "f %s\r\n", s)
				// Read until the tagged answer, the end, or the deadline;
				// then leave with LOGOUT.
				for {
					line, err := br.ReadString('\n')
					if err != nil || strings.HasPrefix(line, "f ") {
						break
					}
					if strings.HasPrefix(line, "+ ") {
						io.WriteString(client, "DONE\r\n")
					}
				}
				io.WriteString(client, "z LOGOUT\r\n")
			}()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("session hung on %q", s)
			}
		}
		if n := panics.Load(); n > 0 {
			t.Fatalf("%d panics; last: %v (input %q)", n, last.Load(), s)
		}
	})
}
