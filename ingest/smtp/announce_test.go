package smtp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

// announcingArchiver is a fakeArchiver that is also an ingest.Announcer:
// it counts the announcements not withdrawn and checks that Archive gets
// the context of one.
type announcingArchiver struct {
	fakeArchiver
	outstanding atomic.Int64
	announced   atomic.Int64 // Archive calls that carried an announcement
}

type annKey struct{}

func (a *announcingArchiver) Announce(ctx context.Context) (context.Context, func()) {
	a.outstanding.Add(1)
	var done atomic.Bool
	withdraw := func() {
		if done.CompareAndSwap(false, true) {
			a.outstanding.Add(-1)
		}
	}
	return context.WithValue(ctx, annKey{}, withdraw), withdraw
}

func (a *announcingArchiver) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	if w, ok := ctx.Value(annKey{}).(func()); ok {
		a.announced.Add(1)
		w() // as archive.Store does once the message is queued
	}
	return a.fakeArchiver.Archive(ctx, env, raw)
}

// waitZero waits for every announcement to be withdrawn.
func (a *announcingArchiver) waitZero(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.outstanding.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d announcements left outstanding", what, a.outstanding.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A transaction announces its message once a recipient is accepted (the
// archive's group commit waits a moment for announced messages), passes the
// announcement
// to Archive, and withdraws it whatever ends the transaction: the message
// archived, refused, RSET, QUIT or a dropped connection. An announcement
// left behind would make every later group commit wait for nothing.
func TestTransactionsAnnounceTheirMessage(t *testing.T) {
	a := &announcingArchiver{}
	_, addr := startServer(t, Options{MaxMessageBytes: 1 << 10, AcceptRecipients: []string{"example.com"}}, a, Runtime{})

	c := dial(t, addr)
	c.Hello(heloName)
	c.Send("MAIL FROM:<a@example.com>\r\n")
	c.Expect("250")
	for _, step := range []struct {
		rcpt, reply string
		want        int64
	}{
		{"nobody@elsewhere.example", "550", 0}, // refused: nothing is coming
		{"b@example.com", "250", 1},
		{"c@example.com", "250", 1}, // one message, however many recipients
	} {
		c.Send("RCPT TO:<" + step.rcpt + ">\r\n")
		c.Expect(step.reply)
		if n := a.outstanding.Load(); n != step.want {
			t.Fatalf("after RCPT TO:<%s>: %d announcements, want %d", step.rcpt, n, step.want)
		}
	}
	c.Send("DATA\r\n")
	c.Expect("354")
	c.Send(message("1", "x\r\n") + ".\r\n")
	c.Expect("250")
	a.waitZero(t, "archived")
	if a.announced.Load() != 1 {
		t.Fatalf("Archive got %d announced contexts, want 1", a.announced.Load())
	}

	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Send("RSET\r\n")
	c.Expect("250")
	a.waitZero(t, "RSET")

	// Over the size limit: refused, withdrawn.
	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Expect("354")
	big := make([]byte, 4<<10)
	for i := range big {
		big[i] = 'x'
		if i%70 == 69 {
			big[i-1], big[i] = '\r', '\n'
		}
	}
	c.Send(message("2", string(big)) + "\r\n.\r\n")
	c.Expect("552")
	a.waitZero(t, "refused")

	c.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
	c.Expect("250")
	c.Expect("250")
	c.Send("QUIT\r\n")
	c.Expect("221")
	a.waitZero(t, "QUIT")

	d := dial(t, addr)
	d.Hello(heloName)
	d.Send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n")
	d.Expect("250")
	d.Expect("250")
	d.Conn.Close()
	a.waitZero(t, "dropped connection")
}
