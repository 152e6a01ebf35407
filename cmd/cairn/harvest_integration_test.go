//go:build integration

package main

// The cairn binary harvesting a real Dovecot (scripts/dovecot.sh; these
// tests fail, never skip, without it): kill -9 mid-run, and cairn serve.
//
//	go test -tags integration -run Harvest -v ./cmd/cairn

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/ingest/harvest/dovecottest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// harvestDovecot starts Dovecot with alice's mail and writes c.yaml in a
// new folder; it returns the folder and the SHA-256 of every message as
// Dovecot serves it.
func harvestDovecot(t *testing.T, folders map[string]int, extra string) (*dovecottest.Server, string, map[[32]byte]bool) {
	t.Helper()
	d := dovecottest.Start(t, dovecottest.Options{Users: map[string]string{"alice": "alice-pw"}})
	g := gen.New(81)
	g.CRLF = true
	for folder, n := range folders {
		md := d.Folder("alice", folder)
		for i := 0; i < n; i++ {
			m := g.Next(2500 + rand.IntN(9000))
			if _, err := md.Deliver(m.Raw, m.Date, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	d.Chown()
	want := map[[32]byte]bool{}
	c := d.Client("alice", "alice-pw")
	defer c.Close()
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range boxes {
		if slices.Contains(b.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		_, msgs := dovecottest.FetchAll(t, c, b.Mailbox)
		for _, m := range msgs {
			want[sha256.Sum256(m.Raw)] = true
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "alice.pw"), []byte("alice-pw\n"), 0o600)
	cfg := fmt.Sprintf(`smtp:
  enabled: false
imap:
  enabled: false
http:
  enabled: false
harvest:
  sources:
    - name: alice
      host: 127.0.0.1
      port: %d
      tls: none
      user: alice
      password_file: alice.pw
      custodian: alice@example.com
%s`, d.Port, extra)
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o600)
	mustCLI(t, dir, "--config", "c.yaml", "init")
	return d, dir, want
}

func indexCounts(t *testing.T, dir string) (messages, deliveries, distinct int) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "cairn-data", "index.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.QueryRow(`SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM deliveries), (SELECT COUNT(DISTINCT delivery_key) FROM deliveries)`).
		Scan(&messages, &deliveries, &distinct)
	return
}

func indexSHAs(t *testing.T, dir string) map[[32]byte]bool {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "cairn-data", "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT sha256 FROM messages`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[32]byte]bool{}
	for rows.Next() {
		var b []byte
		rows.Scan(&b)
		var k [32]byte
		copy(k[:], b)
		out[k] = true
	}
	return out
}

// TestHarvestKill9 kills `cairn harvest run` with SIGKILL at several points
// of a 6,000-message harvest and runs it again: no message missing, none
// recorded twice, and the archive verifies after every kill.
func TestHarvestKill9(t *testing.T) {
	const total = 6000
	_, dir, want := harvestDovecot(t, map[string]int{"INBOX": 4000, "Archive/2024": 2000}, "")
	if len(want) != total {
		t.Fatalf("Dovecot serves %d distinct messages, want %d", len(want), total)
	}
	for round, frac := range []float64{0.1, 0.35, 0.6, 0.85} {
		cmd := exec.Command(cairnBin, "--config", "c.yaml", "harvest", "run", "--once")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill somewhere after frac of the messages, at a random moment.
		target := int(frac*total) + rand.IntN(200)
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if _, n, _ := indexCounts(t, dir); n >= target {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("round %d: %d deliveries never reached", round, target)
			}
			time.Sleep(time.Duration(10+rand.IntN(40)) * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		_, n, distinct := indexCounts(t, dir)
		t.Logf("round %d: killed at %d deliveries", round, n)
		if n != distinct {
			t.Fatalf("round %d: %d deliveries but %d distinct keys", round, n, distinct)
		}
		if out, _, code := cli(t, dir, "--config", "c.yaml", "verify", "--quiet"); code != 0 {
			t.Fatalf("round %d: verify after kill -9: exit %d\n%s", round, code, out)
		}
	}
	out := mustCLI(t, dir, "--config", "c.yaml", "harvest", "run", "--once")
	t.Log(strings.TrimSpace(out))
	messages, deliveries, distinct := indexCounts(t, dir)
	if messages != total || deliveries != total || distinct != total {
		t.Fatalf("after kills and a rerun: %d messages, %d deliveries, %d distinct keys; want %d", messages, deliveries, distinct, total)
	}
	got := indexSHAs(t, dir)
	for k := range want {
		if !got[k] {
			t.Fatalf("a message is missing")
		}
	}
	if out := mustCLI(t, dir, "--config", "c.yaml", "verify", "--full", "--quiet"); !strings.Contains(out, "verification passed") {
		t.Fatal(out)
	}
	for _, s := range harvestStatus(t, dir) {
		for _, f := range s.Folders {
			if f.Messages == 0 || f.LastUID != uint32(f.Messages) {
				t.Fatalf("folder %+v: cursor not at the end", f)
			}
		}
	}
}

// TestServeHarvests: cairn serve runs the harvester; new mail delivered to
// Dovecot is archived at once (IDLE); SIGTERM stops it cleanly.
func TestServeHarvests(t *testing.T) {
	d, dir, want := harvestDovecot(t, map[string]int{"INBOX": 300, "Sent": 100}, "      poll_interval: 1h\n")
	cmd := exec.Command(cairnBin, "--config", "c.yaml", "serve")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitCount := func(n int, within time.Duration) time.Duration {
		start := time.Now()
		for {
			if _, got, _ := indexCounts(t, dir); got >= n {
				return time.Since(start)
			}
			if time.Since(start) > within {
				t.Fatalf("%d deliveries not reached within %v\n%s", n, within, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCount(len(want), 60*time.Second)
	time.Sleep(500 * time.Millisecond) // into IDLE
	c := d.Client("alice", "alice-pw")
	defer c.Close()
	g := gen.New(82)
	g.CRLF = true
	dovecottest.Append(t, c, "INBOX", g.Next(4000).Raw, time.Now())
	took := waitCount(len(want)+1, 10*time.Second)
	t.Logf("new mail archived by cairn serve %v after delivery (poll interval 1h: IDLE)", took.Round(time.Millisecond))
	// status reads the state database while serve holds it.
	if st := harvestStatus(t, dir); len(st) != 1 || !st[0].Connected || st[0].LastSuccess.IsZero() {
		t.Fatalf("status while serving: %+v", st)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
	st := harvestStatus(t, dir)
	if len(st) != 1 || st[0].LastSuccess.IsZero() || st[0].Connected {
		t.Fatalf("status %+v", st)
	}
}
