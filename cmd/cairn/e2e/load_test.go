//go:build integration

package e2e

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest/smtp/smtptest"
)

// smtpSourceHeader is the header smtp-source writes; -l 10240 then sends
// 10,240 bytes of numbered 'X' lines and a final CRLF.
var smtpSourceHeader = regexp.MustCompile(`\AFrom: <a@example\.com>\r\nTo: <b@example\.com>\r\nDate: [^\r\n]+\r\nMessage-Id: <[^\r\n]+>\r\n\r\n`)

var smtpSourceBody = regexp.MustCompile(`\A([0-9]*X+\r\n)+\z`)

func isSMTPSourceMessage(raw []byte, length int) bool {
	loc := smtpSourceHeader.FindIndex(raw)
	return loc != nil && len(raw)-loc[1] == length+2 && smtpSourceBody.Match(raw[loc[1]:])
}

// Issue 3, check 3: smtp-source, 20 sessions of 10 KB messages, against the
// real `cairn serve` (filesystem store, durable). smtp-source stops with an
// error on any reply that is not 2xx, so a clean run means every message
// got its 250; each of them must then be in the index (one delivery, one
// message, one "smtp: archived" log line with its seq), readable by cairn
// cat, and `cairn verify --full` must decrypt and rehash all of them.
//
// CI sends 5,000 messages; the full load is
//
//	CAIRN_E2E_LOAD=20000 go test -tags integration -count=1 -run SMTPSourceLoad -v ./cmd/cairn/e2e
func TestSMTPSourceLoad(t *testing.T) {
	requirePostfix(t)
	n := loadMessages(t)
	in := newInstance(t, config{})
	in.start()

	start := time.Now()
	cmd := exec.Command("smtp-source", "-s", "20", "-m", strconv.Itoa(n), "-l", "10240",
		"-f", "a@example.com", "-t", "b@example.com", in.smtpAddr)
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil || len(out) > 0 {
		t.Fatalf("smtp-source: %v\n%s", err, tail(string(out), 20))
	}
	t.Logf("smtp-source -s 20 -m %d -l 10240: %v, %.0f msgs/s", n, d.Round(time.Millisecond), float64(n)/d.Seconds())

	// A second process while serve runs, straight after the last 250: the
	// newest objects and ledger segments are flushed, but the volume map's
	// rows for them come behind the flushes; the read-only store finds
	// them in the published tail.
	if live := in.verify(); !strings.Contains(live, fmt.Sprintf("%d entries, %d messages, %d deliveries", n, n, n)) {
		t.Errorf("verify while serve runs: %s", live)
	}

	// The index lists a message a few milliseconds after its 250 under
	// load (archive.Options.IndexWait).
	db := in.db()
	if got := waitCount(t, db, n, 10*time.Second, `SELECT COUNT(*) FROM deliveries WHERE source = 'smtp' AND sender = 'a@example.com'`); got != n {
		t.Errorf("%d deliveries from smtp-source in the index, want %d", got, n)
	}
	if got := queryInt(t, db, `SELECT COUNT(*) FROM messages`); got != n {
		t.Errorf("%d messages in the index, want %d", got, n)
	}
	// serve writes its log lines in batches, ~20 ms apart.
	got := in.archivedLines()
	for deadline := time.Now().Add(5 * time.Second); got != n && time.Now().Before(deadline); got = in.archivedLines() {
		time.Sleep(20 * time.Millisecond)
	}
	if got != n {
		t.Errorf("%d \"smtp: archived\" log lines, want %d", got, n)
	}
	// A sample read back through the CLI: whole, as smtp-source sent it.
	for _, seq := range []int{1, n / 3, n / 2, n - 1} {
		got := in.cat(fmt.Sprint(seq))
		if got != nil && !isSMTPSourceMessage(got, 10240) {
			t.Errorf("cairn cat %d: not an smtp-source message of 10 KB: %.200q", seq, got)
		}
	}
	in.stop()
	checkVolumesEnd(t, in)
	summary := in.verify()
	if !strings.Contains(summary, fmt.Sprintf("%d entries, %d messages, %d deliveries", n, n, n)) {
		t.Errorf("verify: %s", summary)
	}
	t.Log(summary)
}

// checkAcked checks acknowledged messages against the index: each Ack's
// ledger seq is a delivery whose message has exactly the SHA-256 of the
// bytes smtptest sent, and a sample is read back with cairn cat.
func checkAcked(t *testing.T, in *instance, run string, acks []smtptest.Ack, sample int) {
	t.Helper()
	// Under load the index lists a message a few milliseconds after its
	// 250: wait for the newest.
	var newest uint64
	for _, a := range acks {
		newest = max(newest, a.Seq)
	}
	db := in.waitIndexed(t, newest)
	missing := 0
	for _, a := range acks {
		want := sha256.Sum256(smtptest.Message(run, a.N, 10240))
		var sum []byte
		err := db.QueryRow(`SELECT m.sha256 FROM deliveries d JOIN messages m ON m.seq = d.message WHERE d.seq = ?`, a.Seq).Scan(&sum)
		if err != nil || !bytes.Equal(sum, want[:]) {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged message %d (%q): delivery seq %d: %v, sha256 %x, want %x", a.N, a.Reply, a.Seq, err, sum, want)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged messages are not in the archive", missing, len(acks))
	}
	// Byte for byte through the CLI: the first, the last and a random few.
	picks := map[int]bool{0: true, len(acks) - 1: true}
	for len(picks) < min(sample, len(acks)) {
		picks[rand.IntN(len(acks))] = true
	}
	for i := range picks {
		a := acks[i]
		want := smtptest.Message(run, a.N, 10240)
		if got := in.cat(fmt.Sprint(a.Seq)); got != nil && !bytes.Equal(got, want) {
			t.Errorf("cairn cat %d (acknowledged message %d): %d bytes differ from the %d sent", a.Seq, a.N, len(got), len(want))
		}
	}
}

// Issue 3, check 4: kill -9 of `cairn serve` in the middle of a load, twice.
// smtptest.Load records every 250 and the ledger seq in it. Straight after
// each kill the archive verifies; after a restart every acknowledged message
// is present, byte for byte, and the restarted serve goes on archiving.
func TestKill9DuringLoad(t *testing.T) {
	perRound := loadMessages(t) / 2
	in := newInstance(t, config{})
	in.start()
	db := in.db()
	base := "k9" + strconv.FormatInt(time.Now().UnixNano(), 36)

	type round struct {
		run  string
		acks []smtptest.Ack
	}
	var rounds []round
	for r := 0; r < 2; r++ {
		run := fmt.Sprintf("%s-%d", base, r)
		before := queryInt(t, db, `SELECT COUNT(*) FROM deliveries`)
		// Kill once this many of this round's messages are archived.
		killAt := perRound/5 + rand.IntN(perRound/2)
		t.Logf("round %d: %d messages, kill -9 after about %d archived", r, perRound, killAt)

		ctx := withTimeout(t, 5*time.Minute)
		done := make(chan smtptest.Result, 1)
		go func() {
			res, err := smtptest.Load(ctx, smtptest.LoadOptions{
				Addr: in.smtpAddr, Sessions: 20, Messages: perRound, BodySize: 10240, Run: run, Timeout: 30 * time.Second,
			})
			if err != nil {
				t.Error(err)
			}
			done <- res
		}()
		killed := false
		for !killed {
			select {
			case res := <-done:
				t.Fatalf("round %d: the load finished (%d acknowledged) before the kill", r, len(res.Acked))
			case <-time.After(20 * time.Millisecond):
			}
			if queryInt(t, db, `SELECT COUNT(*) FROM deliveries`)-before >= killAt {
				in.kill9()
				killed = true
			}
		}
		res := <-done
		t.Logf("round %d: %d acknowledged, %d refused, %d unacknowledged (connections broken or refused: %d)",
			r, len(res.Acked), len(res.Refused), len(res.Unacknowledged), res.ConnFailures)
		if len(res.Refused) > 0 {
			t.Errorf("round %d: refused with 5xx: %v", r, res.Refused)
		}
		if len(res.Acked) < killAt/2 || len(res.Unacknowledged) == 0 {
			t.Fatalf("round %d: the kill did not land mid-load: %d acknowledged, %d unacknowledged", r, len(res.Acked), len(res.Unacknowledged))
		}
		rounds = append(rounds, round{run, res.Acked})

		// Straight after the kill, before any restart.
		t.Logf("round %d: verify after kill -9: %s", r, in.verify())
		in.start()
		for _, rd := range rounds {
			checkAcked(t, in, rd.run, rd.acks, 10)
		}
	}

	// The restarted serve archives again, after the ledger it recovered.
	run := base + "-after"
	res, err := smtptest.Load(withTimeout(t, 2*time.Minute), smtptest.LoadOptions{Addr: in.smtpAddr, Sessions: 5, Messages: 200, Run: run})
	if err != nil || len(res.Acked) != 200 {
		t.Fatalf("after the kills: %d of 200 acknowledged (%v): %+v", len(res.Acked), err, res)
	}
	checkAcked(t, in, run, res.Acked, 3)
	in.stop()
	total := 0
	for _, rd := range rounds {
		total += len(rd.acks)
		checkAcked(t, in, rd.run, rd.acks, 3)
	}
	t.Logf("%d acknowledged across two kill -9s, all present; %s", total, in.verify())
}
