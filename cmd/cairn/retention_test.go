package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

const retentionYAML = `retention:
  default:
    name: records-7y
    keep: 7y
    from: date
    basis: SEC 17a-4
  rules:
    - name: startups
      keep: 10y
      from: date
      match:
        domains: ["*.example.io"]
    - name: newsletters
      keep: 30d
      from: date
      erasable: true
      match:
        headers: ["List-Id:"]
`

func seqsIn(out, verb string) []string {
	var s []string
	for _, m := range regexp.MustCompile(`(?m)^`+verb+`\s+(\d+)\s`).FindAllStringSubmatch(out, -1) {
		s = append(s, m[1])
	}
	return s
}

// TestRetentionCommands drives hold, retention and erase as an operator
// would, on generated mail: holds keep what they cover, the dry run lists
// exactly what the run disposes, erasure reports what it keeps and why,
// verify --full passes and names each disposal, and everything is audited.
func TestRetentionCommands(t *testing.T) {
	dir := t.TempDir()
	mustCLI(t, dir, "init")
	os.WriteFile(filepath.Join(dir, "r.yaml"), []byte(retentionYAML), 0o600)
	c := func(args ...string) string {
		return mustCLI(t, dir, append([]string{"--config", "r.yaml"}, args...)...)
	}
	f, _ := os.Create(filepath.Join(dir, "a.mbox"))
	w := gen.NewMboxWriter(f)
	g := gen.New(5)
	for range 300 {
		m := g.Next(3000)
		w.Write(m.Sender, m.Date, m.Raw)
	}
	w.Flush()
	f.Close()
	c("import", "--custodian", "alice@example.com", "a.mbox")

	out := c("hold", "place", "--case", "C-1", "--reason", "Acme v. Corp", "--custodian", "alice@example.com", "--from", "2024-01-01")
	if !regexp.MustCompile(`messages\s+[1-9]\d*\n`).MatchString(out) || !strings.Contains(out, "alice@example.com (") {
		t.Fatalf("hold place: %s", out)
	}
	c("hold", "place", "--case", "C-2", "--reason", "inquiry", "--query", "SUBJECT invoice")
	if _, errs, code := cli(t, dir, "--config", "r.yaml", "hold", "place", "--case", "C-3", "--reason", "x", "--query", "SEEN"); code == 0 || !strings.Contains(errs, "flag keys") {
		t.Fatalf("a flag query: %d %s", code, errs)
	}
	if _, errs, code := cli(t, dir, "--config", "r.yaml", "hold", "place", "--case", "C-3", "--reason", "x"); code == 0 || !strings.Contains(errs, "criterion") {
		t.Fatalf("a hold without criteria: %d %s", code, errs)
	}
	list := c("hold", "list")
	if !strings.Contains(list, "C-1") || !strings.Contains(list, "C-2") || strings.Contains(list, "pending") {
		t.Fatalf("hold list: %s", list)
	}
	if show := c("hold", "show", "C-2"); !strings.Contains(show, "matching SUBJECT invoice") {
		t.Fatalf("hold show: %s", show)
	}
	if x := c("retention", "explain", "0"); !strings.Contains(x, "rule") || !strings.Contains(x, "expires") || !strings.Contains(x, "disposal") {
		t.Fatalf("explain: %s", x)
	}

	heldCount := func(id string) string {
		return regexp.MustCompile(`messages\s+(\d+)`).FindStringSubmatch(c("hold", "show", id))[1]
	}
	held1, held2 := heldCount("C-1"), heldCount("C-2")
	dry := c("retention", "run", "--dry-run")
	run := c("retention", "run")
	would, did := seqsIn(dry, "would dispose"), seqsIn(run, "disposed")
	if len(did) == 0 || !slices.Equal(would, did) {
		t.Fatalf("dry run listed %v, run disposed %v\n%s", would, did, run)
	}
	if again := c("retention", "run"); len(seqsIn(again, "disposed")) != 0 {
		t.Fatalf("a second run disposed: %s", again)
	}
	// Nothing a hold covers was disposed.
	if heldCount("C-1") != held1 || heldCount("C-2") != held2 {
		t.Fatalf("held messages disposed: C-1 %s -> %s, C-2 %s -> %s", held1, heldCount("C-1"), held2, heldCount("C-2"))
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "cairn-data", "index.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, seq := range did {
		if x := c("retention", "explain", seq); !strings.Contains(x, "disposed") || !strings.Contains(x, "records-7y") && !strings.Contains(x, "startups") && !strings.Contains(x, "newsletters") {
			t.Fatalf("explain of disposed %s: %s", seq, x)
		}
	}
	var subject string
	if err := db.QueryRow(`SELECT from_addr FROM messages WHERE state = 0 AND from_addr NOT LIKE '%example.io' ORDER BY seq LIMIT 1`).Scan(&subject); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := cli(t, dir, "--config", "r.yaml", "erase", "--subject", subject, "--reason", "request for "+subject); code == 0 || !strings.Contains(errs, "ledger keeps it") {
		t.Fatalf("reason with the address: %d %s", code, errs)
	}
	edry := c("erase", "--subject", subject, "--reason", "GDPR request 11", "--dry-run")
	ereal := c("erase", "--subject", subject, "--reason", "GDPR request 11")
	if !slices.Equal(seqsIn(edry, "would erase"), seqsIn(ereal, "erased")) || !slices.Equal(seqsIn(edry, "kept"), seqsIn(ereal, "kept")) {
		t.Fatalf("erasure dry run and run differ:\n%s\n%s", edry, ereal)
	}
	if len(seqsIn(ereal, "kept")) > 0 && !strings.Contains(ereal, "GDPR Art. 17(3)") {
		t.Fatalf("kept without a reason: %s", ereal)
	}

	// Release C-1: what only it kept goes at the next run.
	c("hold", "release", "--case", "C-1", "--reason", "settled")
	if l := c("hold", "list", "--all"); !strings.Contains(l, "released") {
		t.Fatalf("list --all: %s", l)
	}
	run2 := c("retention", "run")
	did = append(did, seqsIn(run2, "disposed")...)

	v := c("verify", "--full", "--quiet")
	if !strings.Contains(v, "verification passed") {
		t.Fatal(v)
	}
	for _, seq := range did {
		if !strings.Contains(v, "entry "+seq+": disposed (") {
			t.Errorf("verify does not name disposed message %s", seq)
		}
	}
	tail := c("audit", "tail", "-n", "2000")
	if n := strings.Count(tail, `"action":"hold.place"`); n != 2 {
		t.Errorf("%d hold.place events", n)
	}
	if n := strings.Count(tail, `"action":"hold.release"`); n != 1 {
		t.Errorf("%d hold.release events", n)
	}
	if n := strings.Count(tail, `"action":"retention.dispose"`); n != len(did) {
		t.Errorf("%d retention.dispose events for %d disposals", n, len(did))
	}
	if n := strings.Count(tail, `"action":"erasure.execute"`); n != len(seqsIn(ereal, "erased"))+1 {
		t.Errorf("%d erasure.execute events for %d erasures", n, len(seqsIn(ereal, "erased")))
	}
}

func TestRetentionConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ yaml, want string }{
		{"retention:\n  default: {name: d, keep: 7 years, from: date}\n", "invalid period"},
		{"retention:\n  default: {name: d, keep: 7y, from: received}\n", "want date or archived"},
		{"retention:\n  lock_mode: strict\n", "lock_mode"},
		{"retention:\n  schedule: 5s\n", "schedule"},
		{"retention:\n  rules: [{name: r, keep: 1y, from: date}]\n", "no match criteria"},
		{"retention:\n  rules: [{name: r, keep: 1y, from: date, match: {headers: [\"no colon\"]}}]\n", "Field: value"},
		{"retention:\n  rules: [{name: r, keep: 1y, from: date, match: {sources: [fax]}}]\n", "fax"},
		{"retention:\n  rules: [{name: r, keep: 1y, from: date, match: {domian: [x.example]}}]\n", "domian"},
	} {
		os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(c.yaml), 0o600)
		if _, errs, code := cli(t, dir, "--config", "c.yaml", "config", "check"); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, %s; want %q", c.yaml, code, errs, c.want)
		}
	}
	// Upper-case addresses in the configuration are fine: lower-cased.
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("retention:\n  rules: [{name: r, keep: 1y, from: date, match: {custodians: [Alice@Example.com]}}]\n"), 0o600)
	mustCLI(t, dir, "--config", "c.yaml", "config", "check")
}

// TestServeRetentionSchedule runs the retention service of cairn serve on a
// short schedule: expired mail is disposed without anyone asking, held
// mail is not, and a hold placed by another process (the CLI) is recorded
// in the ledger by the service.
func TestServeRetentionSchedule(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.yaml"), []byte("data_dir: "+filepath.Join(dir, "data")+"\n"+retentionYAML), 0o600)
	cfg, err := loadConfig(filepath.Join(dir, "c.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := initArchive(ctx, cfg, "test.example/serve"); err != nil {
		t.Fatal(err)
	}
	objs, err := openObjects(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := loadKeys(ctx, cfg, objs)
	if err != nil {
		t.Fatal(err)
	}
	alog, err := openAudit(cfg, objs, k, auditRecord)
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	st, err := openArchiveWith(ctx, cfg, objs, k, readWrite, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g := gen.New(9)
	var seqs []uint64
	for i := range 20 {
		m := g.Next(3000)
		cust := "bob@example.com"
		if i%2 == 0 {
			cust = "alice@example.com"
		}
		rc, err := st.Archive(ctx, &ingest.Envelope{Source: ingest.SourceSMTP, Sender: "x@example.org",
			Recipients: []ingest.Recipient{{Address: cust, Kind: ingest.KindTo}}, ReceivedAt: time.Now()}, m.Raw)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, rc.MessageSeq)
	}
	// The CLI places a hold while serve holds the archive.
	out, errs, code := cli(t, dir, "--config", "c.yaml", "hold", "place", "--case", "C-9", "--reason", "r", "--custodian", "alice@example.com")
	if code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("hold place while serving: %d %s %s", code, out, errs)
	}
	// Disposal and erasure need the writer: each says how to do it while
	// serve runs; their dry runs work.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"erase", "--subject", "bob@example.com", "--reason", "REQ-1"}, "POST /api/v1/erasures"},
		{[]string{"retention", "run"}, "retention.schedule"},
	} {
		_, errs, code := cli(t, dir, append([]string{"--config", "c.yaml"}, c.args...)...)
		if code == 0 || !strings.Contains(errs, "cairn serve holds the archive") || !strings.Contains(errs, c.want) {
			t.Fatalf("%v while serving: exit %d, %q", c.args, code, errs)
		}
		if _, errs, code := cli(t, dir, append([]string{"--config", "c.yaml"}, append(c.args, "--dry-run")...)...); code != 0 {
			t.Fatalf("%v --dry-run while serving: exit %d, %q", c.args, code, errs)
		}
	}
	retentionFirstRun = 50 * time.Millisecond
	defer func() { retentionFirstRun = time.Minute }()
	svc, err := startRetention(ctx, &deps{cfg: cfg, objects: objs, archive: st, keys: k, audit: alog})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- svc.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	count := func(state int) int {
		var n int
		st.Index().DB().QueryRow(`SELECT COUNT(*) FROM messages WHERE state = ?`, state).Scan(&n)
		return n
	}
	// gen dates its mail 2015-2025: 7y from the Date field has ended for
	// some; those of alice are held.
	for count(1) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if count(1) == 0 {
		t.Fatal("the schedule disposed nothing")
	}
	for i, seq := range seqs {
		row, _ := st.Index().Message(context.Background(), seq)
		if i%2 == 0 && row.State != 0 {
			t.Fatalf("message %d of held custodian alice was disposed", seq)
		}
	}
	var events int
	st.Index().DB().QueryRow(`SELECT COUNT(*) FROM entries WHERE kind = 'event' AND json_extract(CAST(line AS TEXT), '$.event.type') = 'hold.place'`).Scan(&events)
	if events != 1 {
		t.Fatalf("%d hold.place events in the ledger", events)
	}
}
