//go:build integration

package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

// postfix is a private Postfix instance written and started by
// scripts/postfix.sh.
type postfix struct {
	t    *testing.T
	dir  string
	addr string // its smtpd
}

func startPostfix(t *testing.T, cairnAddr, mode string, tls bool) *postfix {
	t.Helper()
	requirePostfix(t)
	dir, err := os.MkdirTemp("", "cairn-e2e-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	p := &postfix{t: t, dir: dir, addr: freeAddr(t)}
	args := []string{"instance", dir, "--listen", p.addr, "--cairn", cairnAddr, "--mode", mode}
	if tls {
		args = append(args, "--tls")
	}
	runScript(t, nil, "postfix.sh", args...)
	t.Cleanup(func() {
		exec.Command("bash", filepath.Join(repoRoot, "scripts", "postfix.sh"), "stop", dir).Run()
		for i := 0; i < 50; i++ {
			if exec.Command("postfix", "-c", filepath.Join(dir, "etc"), "status").Run() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if t.Failed() {
			t.Logf("Postfix log:\n%s", tail(p.log(), 40))
		}
		os.RemoveAll(dir)
	})
	runScript(t, nil, "postfix.sh", "start", dir)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix smtpd on %s never came up:\n%s", p.addr, p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *postfix) log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "maillog"))
	return string(b)
}

// pfMessage is message i of a batch: its own sender-visible recipients and
// a Bcc that only the envelope carries.
type pfMessage struct {
	id       string // Message-ID without brackets
	from     string
	rcpts    []string // envelope recipients: To, Cc, Bcc
	raw      []byte
	postfixd string // Postfix's 250 reply
}

func newPFMessage(mode string, i int) pfMessage {
	to := fmt.Sprintf("to%d@example.com", i)
	cc := fmt.Sprintf("cc%d@example.com", i)
	bcc := fmt.Sprintf("bcc%d@example.com", i)
	id := fmt.Sprintf("%s.%d@e2e.example.com", mode, i)
	raw := "From: Alice <alice@example.com>\r\nTo: " + to + "\r\nCc: " + cc + "\r\n" +
		"Subject: " + mode + " batch message " + fmt.Sprint(i) + "\r\nMessage-ID: <" + id + ">\r\n" +
		"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Body of message " + fmt.Sprint(i) + " for the archive.\r\n.a line that starts with a dot\r\nGrüße\r\n"
	return pfMessage{id: id, from: "alice@example.com", rcpts: []string{to, cc, bcc}, raw: []byte(raw)}
}

// Issue 3, check 1: a real Postfix, configured as a journaling MTA (the two
// modes the README documents), delivers a batch to the real `cairn serve`;
// every message is in the archive, byte for byte after the Received line
// Postfix prepends, with its envelope: always_bcc keeps the sender (and
// loses the recipients, which is why the README recommends
// recipient_bcc_maps); recipient_bcc_maps keeps every envelope recipient,
// Bcc included.
func TestPostfixDelivers(t *testing.T) {
	const batch = 40
	for _, mode := range []string{"always_bcc", "recipient_bcc"} {
		t.Run(mode, func(t *testing.T) {
			in := newInstance(t, config{
				"smtp.accept_recipients":         []string{"cairn.test"},
				"smtp.journal.archive_addresses": []string{"archive@cairn.test"},
				"smtp.journal.local_domains":     []string{"example.com"},
			})
			in.start()
			// always_bcc over STARTTLS (Cairn's self-signed certificate),
			// recipient_bcc in clear: both paths of the listener.
			tls := mode == "always_bcc"
			p := startPostfix(t, in.smtpAddr, mode, tls)
			msgs := make([]pfMessage, batch)
			for i := range msgs {
				msgs[i] = newPFMessage(mode, i)
				r := deliverOne(t, p.addr, msgs[i].from, msgs[i].rcpts, msgs[i].raw)
				if !strings.HasPrefix(r, "250 ") {
					t.Fatalf("Postfix refused message %d: %q", i, r)
				}
			}
			db := in.db()
			n := waitCount(t, db, batch, 90*time.Second, `SELECT COUNT(*) FROM deliveries`)
			if n < batch {
				t.Fatalf("%d of %d messages reached the archive in 90s", n, batch)
			}
			// Postfix retries only after a 4xx; give a duplicate time to show.
			time.Sleep(time.Second)
			if n := queryInt(t, db, `SELECT COUNT(*) FROM deliveries`); n != batch {
				t.Errorf("%d deliveries, want exactly %d", n, batch)
			}
			if n := queryInt(t, db, `SELECT COUNT(*) FROM messages`); n != batch {
				t.Errorf("%d messages, want %d", n, batch)
			}

			for i, m := range msgs {
				var seq int
				var sum []byte
				if err := db.QueryRow(`SELECT seq, sha256 FROM messages WHERE message_id = ?`, "<"+m.id+">").Scan(&seq, &sum); err != nil {
					t.Errorf("message %d (%s): not in the index: %v", i, m.id, err)
					continue
				}
				got := in.cat(fmt.Sprint(seq))
				if got == nil {
					continue
				}
				// Postfix prepends its Received line; everything after it
				// is what was submitted.
				if !bytes.HasPrefix(got, []byte("Received: from ")) || !bytes.HasSuffix(got, m.raw) {
					t.Errorf("message %d: cairn cat returned\n%q\nwant a Received line and then\n%q", i, got, m.raw)
				}
				if s := sha256.Sum256(got); !bytes.Equal(s[:], sum) {
					t.Errorf("message %d: cat's bytes do not hash to the index's sha256", i)
				}
				d := readDelivery(t, in, seq)
				if d.source != ingest.SourceBcc || d.sender != m.from || d.env.Sender != m.from {
					t.Errorf("message %d: source %q sender %q, want bcc from %s", i, d.source, d.sender, m.from)
				}
				var want []string
				if mode == "always_bcc" {
					want = []string{"recipient archive@cairn.test"}
				} else {
					for _, r := range m.rcpts {
						want = append(want, "recipient "+r)
					}
				}
				got2 := slices.Clone(d.recipients)
				slices.Sort(got2)
				slices.Sort(want)
				if !slices.Equal(got2, want) {
					t.Errorf("message %d: recipients %q, want %q", i, d.recipients, want)
				}
				// Custodians: the sender always; with recipient_bcc_maps
				// every recipient too, the Bcc one included.
				var cust []string
				rows, _ := db.Query(`SELECT addr FROM custodians WHERE message = ? ORDER BY addr`, seq)
				for rows.Next() {
					var a string
					rows.Scan(&a)
					cust = append(cust, a)
				}
				rows.Close()
				wantCust := []string{m.from}
				if mode == "recipient_bcc" {
					wantCust = append(wantCust, m.rcpts...)
				}
				slices.Sort(wantCust)
				if !slices.Equal(cust, wantCust) {
					t.Errorf("message %d: custodians %q, want %q", i, cust, wantCust)
				}
				if tls && !strings.HasPrefix(d.env.Meta["tls"], "TLS ") {
					t.Errorf("message %d: not received over STARTTLS: meta %v", i, d.env.Meta)
				}
			}
			in.stop()
			summary := in.verify()
			if !strings.Contains(summary, fmt.Sprintf("%d messages, %d deliveries", batch, batch)) {
				t.Errorf("verify: %s", summary)
			}
			t.Log(summary)
		})
	}
}
