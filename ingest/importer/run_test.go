package importer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

var mtime = time.Date(2023, 6, 7, 8, 9, 10, 0, time.UTC)

// writeFile writes a file (making its directory) with a known mtime.
func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tempDir is t.TempDir with symbolic links resolved, as keys have them.
func tempDir(t testing.TB) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestImportMboxEnvelope(t *testing.T) {
	dir := tempDir(t)
	first := "From alice@example.com Tue Jan  2 15:04:05 2024\n"
	msg1 := "Subject: a\n\n>From here\n"
	second := "From bob@example.com yesterday\n"
	msg2 := "Subject: b\n\nb\n"
	p := writeFile(t, filepath.Join(dir, "Sent.mbox"), []byte(first+msg1+"\n"+second+msg2))

	a := newFakeArchive()
	sum := runImport(t, a, []string{p}, Options{Custodians: []string{" Alice@Example.COM ", ""}, Location: time.UTC})
	if sum.Archived != 2 || sum.Messages() != 2 || len(sum.Issues) != 0 {
		t.Fatalf("summary %+v", sum)
	}
	off2 := int64(len(first + msg1 + "\n"))
	k1, k2 := mboxKey(p, 0), mboxKey(p, off2)
	if got := string(a.raw[k1]); got != "Subject: a\n\nFrom here\n" {
		t.Errorf("message 1: %q", got)
	}
	if got := string(a.raw[k2]); got != msg2 {
		t.Errorf("message 2: %q", got)
	}
	e1, e2 := a.env[k1], a.env[k2]
	if e1 == nil || e2 == nil {
		t.Fatalf("keys %q", a.order)
	}
	if !e1.ReceivedAt.Equal(time.Date(2024, 1, 2, 15, 4, 5, 0, time.UTC)) || e1.Meta["time_source"] != "from_line" {
		t.Errorf("message 1 received at %v (%s)", e1.ReceivedAt, e1.Meta["time_source"])
	}
	if !e2.ReceivedAt.Equal(mtime) || e2.Meta["time_source"] != "mtime" {
		t.Errorf("message 2 (no date on its From_ line) received at %v, want the mtime", e2.ReceivedAt)
	}
	if !slices.Equal(e1.Custodians, []string{"alice@example.com"}) || e1.Source != ingest.SourceImport || e1.Sender != "" {
		t.Errorf("envelope %+v", e1)
	}
	wantMeta := map[string]string{
		"format": "mbox", "path": p, "offset": "0", "folder": "Sent", "quoting": "mboxrd",
		"from_line": "alice@example.com Tue Jan  2 15:04:05 2024", "time_source": "from_line",
	}
	for k, v := range wantMeta {
		if e1.Meta[k] != v {
			t.Errorf("meta %s = %q, want %q", k, e1.Meta[k], v)
		}
	}
	if e2.Meta["offset"] != fmt.Sprint(off2) {
		t.Errorf("message 2 offset %q", e2.Meta["offset"])
	}

	// The same file named another way (relative, through a symbolic
	// link) has the same keys: everything is replayed.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(link)
	sum = runImport(t, a, []string{"Sent.mbox"}, Options{})
	if sum.Replayed != 2 || sum.Archived != 0 {
		t.Fatalf("rerun through a link: %+v", sum)
	}
}

func TestImportMboxProblems(t *testing.T) {
	dir := tempDir(t)
	big := strings.Repeat("x", 2000) + "\n"
	tests := []struct {
		name     string
		file     string
		content  string
		archived []string
		issues   []Issue // Path filled in by the test
	}{
		{name: "empty mbox", file: "empty.mbox", content: ""},
		{
			name:     "first line is not a From_ line",
			file:     "junk.mbox",
			content:  "X-Junk: yes\n\nFrom a\nS: a\n",
			archived: []string{"S: a\n"},
			issues:   []Issue{{Kind: IssueRefused, Offset: 0, Reason: "the first line is not a From_ line: 13 bytes before the first message are not imported"}},
		},
		{
			name:     "blank lines before the first From_ line are not reported",
			file:     "blank",
			content:  "\n\nFrom a\nS: a\n",
			archived: []string{"S: a\n"},
		},
		{
			name:     "over the size limit, then the rest",
			file:     "big",
			content:  "From a\nS: a\n\n" + big + "\nFrom b\nS: b\n\nFrom c\nS: c\n",
			archived: []string{"S: b\n", "S: c\n"},
			issues:   []Issue{{Kind: IssueRefused, Offset: 0, Reason: "message over the 1000-byte size limit"}},
		},
		{
			name:     "empty message",
			file:     "hole",
			content:  "From a\n\nFrom b\nS: b\n",
			archived: []string{"S: b\n"},
			issues:   []Issue{{Kind: IssueRefused, Offset: 0, Reason: "empty message"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(dir, tt.file), []byte(tt.content))
			a := newFakeArchive()
			var seen []Issue
			sum := runImport(t, a, []string{p}, Options{MaxMessageSize: 1000, OnIssue: func(is Issue) { seen = append(seen, is) }})
			var got []string
			for _, k := range a.order {
				got = append(got, string(a.raw[k]))
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.archived) {
				t.Errorf("archived %q, want %q", got, tt.archived)
			}
			for i := range tt.issues {
				tt.issues[i].Path = p
			}
			if !slices.Equal(sum.Issues, tt.issues) || !slices.Equal(seen, tt.issues) {
				t.Errorf("issues %v (OnIssue %v), want %v", sum.Issues, seen, tt.issues)
			}
			if sum.Refused != int64(len(tt.issues)) || sum.Archived != int64(len(tt.archived)) {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

func TestIssueString(t *testing.T) {
	is := Issue{Kind: IssueRefused, Path: "/m/a.mbox", Offset: 1234, Reason: "message over the 10-byte size limit"}
	if got, want := is.String(), "importer: /m/a.mbox:1234: refused: message over the 10-byte size limit"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	is = Issue{Kind: IssueSkipped, Path: "/m/README", Offset: -1, Reason: "not mail"}
	if got, want := is.String(), "importer: /m/README: skipped: not mail"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestImportGzip(t *testing.T) {
	dir := tempDir(t)
	mbox := "From a Tue Jan  2 15:04:05 2024\nS: a\n\n>From x\n\nFrom b Tue Jan  2 15:04:05 2024\nS: b\n"
	gzMbox := writeFile(t, filepath.Join(dir, "archive.mbox.gz"), gzipBytes(t, []byte(mbox)))
	gzEML := writeFile(t, filepath.Join(dir, "one.eml.gz"), gzipBytes(t, []byte("S: one\n\nbody\n")))
	notGz := writeFile(t, filepath.Join(dir, "broken.gz"), []byte("From a\nS: a\n"))
	whole := gzipBytes(t, []byte(mbox))
	truncated := writeFile(t, filepath.Join(dir, "truncated.gz"), whole[:len(whole)-6])

	a := newFakeArchive()
	var last Progress
	sum := runImport(t, a, []string{gzMbox, gzEML, notGz}, Options{Progress: func(p Progress) { last = p }})
	if sum.Archived != 3 || sum.Failed != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if got := string(a.raw[mboxKey(gzMbox, 0)]); got != "S: a\n\nFrom x\n" {
		t.Errorf("first message of the .gz mbox: %q", got)
	}
	if got := string(a.raw[mboxKey(gzMbox, 47)]); got != "S: b\n" {
		t.Errorf("second message at decompressed offset 47: %q (keys %q)", got, a.order)
	}
	if got := string(a.raw[emlKey(gzEML)]); got != "S: one\n\nbody\n" {
		t.Errorf(".eml.gz: %q", got)
	}
	if f := issuesOf(sum, IssueFailed); len(f) != 1 || f[0].Path != notGz || !strings.Contains(f[0].Reason, "gzip") {
		t.Errorf("failures %v", f)
	}
	if last.Bytes != last.TotalBytes || last.Messages != 4 {
		t.Errorf("last progress %+v", last)
	}

	// A stream cut short: the messages before the cut are imported, the
	// rest is reported.
	a = newFakeArchive()
	sum = runImport(t, a, []string{truncated}, Options{})
	if sum.Failed != 1 || !strings.Contains(issuesOf(sum, IssueFailed)[0].Reason, "unexpected EOF") {
		t.Errorf("truncated: %+v", sum)
	}
	if string(a.raw[mboxKey(truncated, 0)]) != "S: a\n\nFrom x\n" {
		t.Errorf("truncated: first message %q", a.raw[mboxKey(truncated, 0)])
	}
}

func TestImportEMLFolder(t *testing.T) {
	dir := tempDir(t)
	msg := func(s string) []byte { return []byte("From: a@example.com\nSubject: " + s + "\n\n" + s + "\n") }
	files := map[string][]byte{
		"one.eml":                 msg("one"),
		"sub/two.EML":             msg("two"),
		"sub/deeper/three.eml":    []byte("not really a message, but named .eml\n"),
		"mh/1":                    msg("mh one"),
		"mh/2":                    []byte("Received: from x\n\tby y\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nmh two\n"),
		"Inbox":                   []byte("From a Tue Jan  2 15:04:05 2024\nS: m1\n\nFrom b Tue Jan  2 15:04:05 2024\nS: m2\n"),
		"README":                  []byte("Notes: these are the exports\n"),
		"empty.eml":               nil,
		"notes.txt":               []byte("hello\n"),
		".hidden.eml":             msg("hidden"),
		".git/config":             []byte("[core]\n"),
		"saved-with-from_.eml":    []byte("From a Tue Jan  2 15:04:05 2024\nS: saved\n\nx\n"),
		"Apple.mbox/mbox":         []byte("From a Tue Jan  2 15:04:05 2024\nS: apple\n"),
		"Apple.mbox/Info.plist":   []byte("<?xml version=\"1.0\"?>\n"),
		"bundle/eml-in-gz.eml.gz": gzipBytes(t, msg("zipped")),
	}
	for name, data := range files {
		writeFile(t, filepath.Join(dir, name), data)
	}
	if err := os.Symlink(filepath.Join(dir, "one.eml"), filepath.Join(dir, "sub", "link.eml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}

	a := newFakeArchive()
	sum := runImport(t, a, []string{dir}, Options{})
	want := map[string]string{
		emlKey(filepath.Join(dir, "one.eml")):                  string(msg("one")),
		emlKey(filepath.Join(dir, "sub/two.EML")):              string(msg("two")),
		emlKey(filepath.Join(dir, "sub/deeper/three.eml")):     "not really a message, but named .eml\n",
		emlKey(filepath.Join(dir, "mh/1")):                     string(msg("mh one")),
		emlKey(filepath.Join(dir, "mh/2")):                     string(files["mh/2"]),
		mboxKey(filepath.Join(dir, "Inbox"), 0):                "S: m1\n",
		mboxKey(filepath.Join(dir, "Inbox"), 39):               "S: m2\n",
		mboxKey(filepath.Join(dir, "saved-with-from_.eml"), 0): "S: saved\n\nx\n",
		mboxKey(filepath.Join(dir, "Apple.mbox/mbox"), 0):      "S: apple\n",
		emlKey(filepath.Join(dir, "bundle/eml-in-gz.eml.gz")):  string(msg("zipped")),
	}
	for k, v := range want {
		if got, ok := a.raw[k]; !ok || string(got) != v {
			t.Errorf("%s: %q (present %v), want %q", k, got, ok, v)
		}
	}
	// The link to one.eml is the same file: replayed under its target's key.
	if sum.Archived != int64(len(want)) || sum.Replayed != 1 || a.count() != len(want) {
		t.Errorf("summary %+v, %d keys: %q", sum, a.count(), a.order)
	}
	if f := a.env[emlKey(filepath.Join(dir, "sub/two.EML"))].Meta["folder"]; f != "sub" {
		t.Errorf("folder of sub/two.EML: %q", f)
	}
	if f := a.env[mboxKey(filepath.Join(dir, "Apple.mbox/mbox"), 0)].Meta["folder"]; f != "Apple" {
		t.Errorf("folder of an Apple Mail bundle: %q", f)
	}
	var skipped []string
	for _, is := range issuesOf(sum, IssueSkipped) {
		rel, _ := filepath.Rel(dir, is.Path)
		skipped = append(skipped, rel)
	}
	slices.Sort(skipped)
	wantSkipped := []string{".git", ".hidden.eml", "Apple.mbox/Info.plist", "README", "dirlink", "notes.txt"}
	if !slices.Equal(skipped, wantSkipped) {
		t.Errorf("skipped %q, want %q", skipped, wantSkipped)
	}
	if r := issuesOf(sum, IssueRefused); len(r) != 1 || !strings.HasSuffix(r[0].Path, "empty.eml") {
		t.Errorf("refused %v, want empty.eml", r)
	}

	// AllFiles takes the non-mail files too.
	a = newFakeArchive()
	sum = runImport(t, a, []string{dir}, Options{AllFiles: true})
	if _, ok := a.raw[emlKey(filepath.Join(dir, "README"))]; !ok {
		t.Errorf("AllFiles: README not imported; %+v", sum)
	}
}

func TestImportEnmimeCorpus(t *testing.T) {
	const corpus = "/work/shared/corpus/enmime"
	files, _ := filepath.Glob(filepath.Join(corpus, "*.raw"))
	if len(files) == 0 {
		t.Skip("no corpus at " + corpus)
	}
	// Named one by one, every file is one message, archived byte for byte.
	a := newFakeArchive()
	sum := runImport(t, a, files, Options{Workers: 4})
	if sum.Archived+sum.Duplicates != int64(len(files)) || len(sum.Issues) != 0 {
		t.Fatalf("summary %+v for %d files", sum, len(files))
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := a.raw[emlKey(f)]; !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: not archived byte for byte", f)
		}
	}
	// Searched as a folder, every .raw file is a message (a saved message
	// by name, even when it does not start like a header); only LICENSE,
	// which is neither, is skipped and named.
	sum = runImport(t, newFakeArchive(), []string{corpus}, Options{Workers: 4})
	var skipped []string
	for _, is := range issuesOf(sum, IssueSkipped) {
		skipped = append(skipped, filepath.Base(is.Path))
	}
	slices.Sort(skipped)
	want := []string{"LICENSE"}
	if !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
	if sum.Archived+sum.Duplicates+sum.Skipped != int64(len(files))+1 {
		t.Errorf("folder: %+v", sum)
	}
}

func TestMissingPath(t *testing.T) {
	a := newFakeArchive()
	dir := tempDir(t)
	ok := writeFile(t, filepath.Join(dir, "ok.eml"), []byte("S: x\n\nx\n"))
	missing := filepath.Join(dir, "nope")
	_, err := Run(context.Background(), a, []string{ok, missing}, Options{})
	if err == nil || err.Error() != "importer: "+missing+": no such file or directory" {
		t.Fatalf("err %v", err)
	}
	if a.count() != 0 {
		t.Errorf("something was imported before the paths were checked")
	}
	if _, err := Run(context.Background(), a, nil, Options{}); err == nil {
		t.Error("no paths: no error")
	}
	if _, err := Run(context.Background(), a, []string{ok}, Options{MaxMessageSize: -1}); err == nil {
		t.Error("negative size: no error")
	}
}

func TestKeysAreFrozen(t *testing.T) {
	tests := []struct{ got, want string }{
		{mboxKey("/data/mail/Sent.mbox", 0), "import:mbox:/data/mail/Sent.mbox:0"},
		{mboxKey("/data/a:b.mbox.gz", 123456789), "import:mbox:/data/a:b.mbox.gz:123456789"},
		{maildirKey("/home/u/Maildir/.Sent", "1700000000.M1P2Q3.host,S=100"), "import:maildir:/home/u/Maildir/.Sent:1700000000.M1P2Q3.host,S=100"},
		{emlKey("/x/y z/ünïcode.eml"), "import:eml:/x/y z/ünïcode.eml"},
		{emlKey("/x/100%.eml"), "import:eml:/x/100%25.eml"},
		{emlKey("/x/\xff\x01.eml"), "import:eml:/x/%FF%01.eml"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("key %q, want %q", tt.got, tt.want)
		}
	}
}

func TestOrderWithinSource(t *testing.T) {
	dir := tempDir(t)
	var b bytes.Buffer
	for i := range 300 {
		fmt.Fprintf(&b, "From a Tue Jan  2 15:04:05 2024\nS: %d\n\n", i)
	}
	p := writeFile(t, filepath.Join(dir, "m"), b.Bytes())
	a := newFakeArchive()
	runImport(t, a, []string{p}, Options{Workers: 1})
	for i, k := range a.order {
		if got := string(a.raw[k]); got != fmt.Sprintf("S: %d\n", i) {
			t.Fatalf("message %d handed out as %q", i, got)
		}
	}
}

func TestCancelFinishesInFlight(t *testing.T) {
	dir := tempDir(t)
	var b bytes.Buffer
	const n = 400
	for i := range n {
		fmt.Fprintf(&b, "From a Tue Jan  2 15:04:05 2024\nS: %d\n\n", i)
	}
	p := writeFile(t, filepath.Join(dir, "m"), b.Bytes())
	ctx, cancel := context.WithCancel(context.Background())
	a := newFakeArchive()
	var calls atomic.Int32
	a.hook = func(*ingest.Envelope, []byte) error {
		if calls.Add(1) == 50 {
			cancel()
		}
		time.Sleep(time.Millisecond) // in flight while the cancel lands
		return nil
	}
	sum, err := Run(ctx, a, []string{p}, Options{Workers: 8})
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "importer: ") {
		t.Fatalf("err %v", err)
	}
	if sum.Failed != 0 || sum.Archived != int64(a.count()) || sum.Archived < 50 || sum.Archived >= n {
		t.Fatalf("after cancel: %+v, %d archived", sum, a.count())
	}
	a.hook = nil
	sum2 := runImport(t, a, []string{p}, Options{})
	if sum2.Replayed != sum.Archived || sum2.Archived != n-sum.Archived || a.count() != n {
		t.Fatalf("rerun: %+v after %+v", sum2, sum)
	}
}

func TestArchiverErrors(t *testing.T) {
	dir := tempDir(t)
	for _, s := range []string{"ok", "flaky", "refused", "down"} {
		writeFile(t, filepath.Join(dir, s+".eml"), []byte("S: "+s+"\n\n"+s+"\n"))
	}
	a := newFakeArchive()
	var mu sync.Mutex
	tries := map[string]int{}
	a.hook = func(env *ingest.Envelope, raw []byte) error {
		mu.Lock()
		defer mu.Unlock()
		tries[string(raw)]++
		switch {
		case strings.Contains(string(raw), "flaky") && tries[string(raw)] < 2:
			return errors.New("index busy")
		case strings.Contains(string(raw), "refused"):
			return fmt.Errorf("store: %w: too big", ingest.ErrRefused)
		case strings.Contains(string(raw), "down"):
			return errors.New("object store unavailable")
		}
		return nil
	}
	sum := runImport(t, a, []string{dir}, Options{Retries: 1})
	if sum.Archived != 2 || sum.Refused != 1 || sum.Failed != 1 {
		t.Fatalf("summary %+v", sum)
	}
	if tries["S: refused\n\nrefused\n"] != 1 || tries["S: down\n\ndown\n"] != 2 {
		t.Errorf("tries %v: a refusal is not retried, a temporary error is", tries)
	}
	f := issuesOf(sum, IssueFailed)
	if len(f) != 1 || f[0].Path != filepath.Join(dir, "down.eml") || !strings.Contains(f[0].Reason, "object store unavailable") {
		t.Errorf("failures %v", f)
	}

	// Too many failures stop the import.
	var b bytes.Buffer
	for i := range 100 {
		fmt.Fprintf(&b, "From a\nS: %d\n\n", i)
	}
	p := writeFile(t, filepath.Join(t.TempDir(), "m"), b.Bytes())
	a = newFakeArchive()
	a.hook = func(*ingest.Envelope, []byte) error { return errors.New("disk full") }
	sum, err := Run(context.Background(), a, []string{p}, Options{Retries: -1, MaxFailures: 5, Workers: 2})
	if !errors.Is(err, ErrTooManyFailures) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err %v", err)
	}
	// The fifth failure stops the import as it is counted: at most the
	// other worker's message in flight and one handed out as the stop
	// came fail after it.
	if sum.Failed < 5 || sum.Failed > 5+2 {
		t.Errorf("failed %d, want 5 to 7", sum.Failed)
	}
}

func TestWarningsAndProgress(t *testing.T) {
	dir := tempDir(t)
	var b bytes.Buffer
	for i := range 50 {
		fmt.Fprintf(&b, "From a\nS: %d\n\n", i)
	}
	p := writeFile(t, filepath.Join(dir, "m.mbox"), b.Bytes())
	q := writeFile(t, filepath.Join(dir, "dup.eml"), []byte("S: 7\n"))
	a := newFakeArchive()
	a.problems = func(raw []byte) []string {
		if bytes.HasSuffix(raw, []byte("3\n")) {
			return []string{"header: missing Date", "mime: no boundary"}
		}
		return nil
	}
	var calls []Progress
	sum := runImport(t, a, []string{p, q}, Options{MaxIssues: 2, Progress: func(pr Progress) { calls = append(calls, pr) }})
	if sum.Archived != 50 || sum.Duplicates != 1 || sum.Warnings != 5 {
		t.Fatalf("summary %+v", sum)
	}
	w := issuesOf(sum, IssueWarning)
	if len(w) != 2 || w[0].Reason != "header: missing Date; mime: no boundary" || w[0].Offset < 0 {
		t.Errorf("warnings kept %v", w)
	}
	total := int64(b.Len() + 5)
	if len(calls) < 2 || calls[0].TotalBytes != total {
		t.Fatalf("progress %+v", calls)
	}
	last := calls[len(calls)-1]
	if last.Bytes != total || last.Messages != 51 || sum.Bytes != total {
		t.Errorf("last progress %+v, summary bytes %d, want %d", last, sum.Bytes, total)
	}
}

// The memory budget holds however many workers there are: with a budget of
// three messages, never more than three are in memory at once.
func TestMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 40; i++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("m%02d.eml", i)), []byte(fmt.Sprintf("From: a@example.com\nSubject: %d\n\n%s\n", i, strings.Repeat("x", 1000))))
	}
	a := &peakArchive{fakeArchive: newFakeArchive()}
	sum := runImport(t, a, []string{dir}, Options{Workers: 16, MemoryBudget: 3 * 1100})
	if sum.Archived != 40 {
		t.Fatalf("summary %+v", sum)
	}
	if a.peak > 3 {
		t.Fatalf("%d messages in memory at once, budget allows 3", a.peak)
	}
}

type peakArchive struct {
	*fakeArchive
	mu        sync.Mutex
	now, peak int
}

func (p *peakArchive) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	p.mu.Lock()
	p.now++
	p.peak = max(p.peak, p.now)
	p.mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	defer func() { p.mu.Lock(); p.now--; p.mu.Unlock() }()
	return p.fakeArchive.Archive(ctx, env, raw)
}
