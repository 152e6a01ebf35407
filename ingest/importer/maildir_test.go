package importer

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParseMaildirName(t *testing.T) {
	ts := time.Unix(1700000000, 0).UTC()
	tests := []struct {
		name string
		want MaildirName
	}{
		{"1700000000.M123P456Q7.host,S=1234,W=1300:2,FS", MaildirName{Unique: "1700000000.M123P456Q7.host,S=1234,W=1300", Info: "2,FS", Flags: "FS", Time: ts}},
		{"1700000000.M1.host:2,", MaildirName{Unique: "1700000000.M1.host", Info: "2,", Time: ts}},
		{"1700000000.M1.host", MaildirName{Unique: "1700000000.M1.host", Time: ts}},
		{"1700000000.M1.host!2,RS", MaildirName{Unique: "1700000000.M1.host", Info: "2,RS", Flags: "RS", Time: ts}},
		{"1700000000.M1.host;2,T", MaildirName{Unique: "1700000000.M1.host", Info: "2,T", Flags: "T", Time: ts}},
		{"1700000000.M1.ho!st", MaildirName{Unique: "1700000000.M1.ho!st", Time: ts}},
		{"1700000000.M1.host:1,experimental", MaildirName{Unique: "1700000000.M1.host", Info: "1,experimental", Time: ts}},
		{"1700000000.x:2,S:2,T", MaildirName{Unique: "1700000000.x", Info: "2,S:2,T", Flags: "S:2,T", Time: ts}},
		{"12.x:2,S", MaildirName{Unique: "12.x", Info: "2,S", Flags: "S"}},      // not a plausible time
		{"9999999999.x", MaildirName{Unique: "9999999999.x"}},                   // 2286
		{"17000000a0.x", MaildirName{Unique: "17000000a0.x"}},                   // not digits
		{"cur-file-without-time", MaildirName{Unique: "cur-file-without-time"}}, // some tools
		{":2,S", MaildirName{Unique: "", Info: "2,S", Flags: "S"}},              // degenerate
		{"", MaildirName{}}, // degenerate
	}
	for _, tt := range tests {
		if got := ParseMaildirName(tt.name); got != tt.want {
			t.Errorf("ParseMaildirName(%q) = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestMaildirReceivedAt(t *testing.T) {
	name := ParseMaildirName("1700000000.M1.host:2,S")
	early := time.Unix(1600000000, 0)
	late := time.Unix(1750000000, 0)
	if at, src := maildirReceivedAt(early, name); !at.Equal(early) || src != "mtime" {
		t.Errorf("migrated (mtime set back to the original date): %v %s", at, src)
	}
	if at, src := maildirReceivedAt(late, name); !at.Equal(name.Time) || src != "maildir_name" {
		t.Errorf("copied without keeping mtimes: %v %s", at, src)
	}
	if at, src := maildirReceivedAt(late, ParseMaildirName("nodate")); !at.Equal(late) || src != "mtime" {
		t.Errorf("no time in the name: %v %s", at, src)
	}
}

// maildirFile writes a Maildir message file with the given mtime.
func maildirFile(t *testing.T, path, content string, mt time.Time) {
	t.Helper()
	writeFile(t, path, []byte(content))
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func TestMaildirLayouts(t *testing.T) {
	root := tempDir(t)
	md := filepath.Join(root, "Maildir")
	at := time.Unix(1600000000, 0)
	type msg struct{ dir, folder, file, flags string }
	msgs := []msg{
		{"", "INBOX", "new/1700000001.M1.h,S=10", ""},
		{"", "INBOX", "cur/1700000002.M2.h,S=10:2,FS", "FS"},
		{"", "INBOX", "cur/1700000003.M3.h:2,", ""},
		{".Sent", "Sent", "cur/1700000004.M4.h:2,S", "S"},
		{".A.B", "A/B", "new/1700000005.M5.h", ""},
		{".A", "A", "cur/1700000006.M6.h:2,RS", "RS"},
		{"Archive/2020", "Archive/2020", "cur/1700000007.M7.h:2,S", "S"},
		{"Archive/2020/.Q1", "Archive/2020/Q1", "cur/1700000008.M8.h:2,T", "T"},
	}
	for _, d := range []string{"", ".Sent", ".A.B", ".A", "Archive/2020", "Archive/2020/.Q1"} {
		for _, sub := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(md, d, sub), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, m := range msgs {
		maildirFile(t, filepath.Join(md, m.dir, m.file), "Subject: "+m.folder+"\n\n"+string(rune('a'+i))+"\n", at)
	}
	// Not messages: tmp/, dot files, server state, a dot dir that is not a
	// Maildir, a stray directory in cur/.
	writeFile(t, filepath.Join(md, "tmp", "1700000009.M9.h"), []byte("S: half written\n"))
	writeFile(t, filepath.Join(md, "cur", ".1700000010.M10.h:2,S"), []byte("S: dot\n"))
	writeFile(t, filepath.Join(md, "dovecot-uidlist"), []byte("3 V1 N2\n"))
	writeFile(t, filepath.Join(md, "dovecot.index.log"), []byte("\x00\x01"))
	writeFile(t, filepath.Join(md, ".imap", "INBOX", "dovecot.index"), []byte("\x00"))
	writeFile(t, filepath.Join(md, ".Sent", "maildirfolder"), nil)
	if err := os.MkdirAll(filepath.Join(md, "cur", "stray"), 0o755); err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, a *fakeArchive, sum Summary) {
		t.Helper()
		if sum.Archived != int64(len(msgs)) || len(sum.Issues) != 0 || a.count() != len(msgs) {
			t.Fatalf("summary %+v, keys %q", sum, a.order)
		}
		for i, m := range msgs {
			dir := filepath.Join(md, m.dir)
			name := ParseMaildirName(filepath.Base(m.file))
			key := maildirKey(dir, name.Unique)
			env := a.env[key]
			if env == nil {
				t.Errorf("%s: no key %q", m.file, key)
				continue
			}
			if got, want := string(a.raw[key]), "Subject: "+m.folder+"\n\n"+string(rune('a'+i))+"\n"; got != want {
				t.Errorf("%s: raw %q", m.file, got)
			}
			meta := env.Meta
			if meta["folder"] != m.folder || meta["flags"] != m.flags || meta["maildir"] != dir || meta["unique"] != name.Unique || meta["format"] != "maildir" {
				t.Errorf("%s: meta %v", m.file, meta)
			}
			// mtime (2020) is earlier than the name (2023): a migration.
			if !env.ReceivedAt.Equal(at) || meta["time_source"] != "mtime" {
				t.Errorf("%s: received at %v (%s)", m.file, env.ReceivedAt, meta["time_source"])
			}
		}
	}
	a := newFakeArchive()
	check(t, a, runImport(t, a, []string{md}, Options{}))

	// Found inside a searched folder, the same Maildir has the same keys.
	sum := runImport(t, a, []string{root}, Options{})
	if sum.Replayed != int64(len(msgs)) || sum.Archived != 0 {
		t.Fatalf("searched from above: %+v", sum)
	}

	// Flags change and new/ moves to cur/: still the same keys.
	rename := func(from, to string) {
		if err := os.Rename(filepath.Join(md, from), filepath.Join(md, to)); err != nil {
			t.Fatal(err)
		}
	}
	rename("new/1700000001.M1.h,S=10", "cur/1700000001.M1.h,S=10:2,S")
	rename("cur/1700000002.M2.h,S=10:2,FS", "cur/1700000002.M2.h,S=10:2,FRS")
	sum = runImport(t, a, []string{md}, Options{})
	if sum.Replayed != int64(len(msgs)) || sum.Archived != 0 || a.count() != len(msgs) {
		t.Fatalf("after flag changes: %+v", sum)
	}

	// A Maildir++ subfolder named on its own keeps its folder name.
	b := newFakeArchive()
	runImport(t, b, []string{filepath.Join(md, ".Sent")}, Options{})
	for _, env := range b.env {
		if env.Meta["folder"] != "Sent" {
			t.Errorf("subfolder on its own: folder %q", env.Meta["folder"])
		}
	}
}

// TestMaildirRenamedWhileImporting: a file renamed (flags) between the
// listing and the read is found under its unique name.
func TestMaildirRenamedWhileImporting(t *testing.T) {
	md := tempDir(t)
	for _, sub := range []string{"cur", "new"} {
		os.MkdirAll(filepath.Join(md, sub), 0o755)
	}
	maildirFile(t, filepath.Join(md, "cur", "1700000001.M1.h:2,RS"), "S: x\n", time.Unix(1700000001, 0))
	r := &runner{arch: newFakeArchive(), jobs: make(chan *job), mem: newBudget(DefaultMemoryBudget)}
	r.opts, _ = Options{}.withDefaults()
	r.ctx, r.stop = context.WithCancelCause(context.Background())
	r.archCtx = r.ctx
	r.maildirMessage(&job{kind: jobMaildir, path: filepath.Join(md, "new", "1700000001.M1.h"), name: "1700000001.M1.h", mdDir: md, folder: ""})
	a := r.arch.(*fakeArchive)
	env := a.env[maildirKey(md, "1700000001.M1.h")]
	if env == nil || env.Meta["flags"] != "RS" || env.Meta["path"] != filepath.Join(md, "cur", "1700000001.M1.h:2,RS") {
		t.Fatalf("renamed file: %+v, issues %v", env, r.sum.Issues)
	}
}

func TestMaildirPlusPlusFolder(t *testing.T) {
	for in, want := range map[string]string{".Sent": "Sent", ".A.B": "A/B", ".A.B.C": "A/B/C", ".INBOX.Drafts": "INBOX/Drafts"} {
		if got := maildirPlusPlusFolder(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	got := []string{joinFolder("", "x"), joinFolder("a", "x"), joinFolder("a", ""), folderName("")}
	if !slices.Equal(got, []string{"x", "a/x", "a", "INBOX"}) {
		t.Errorf("%q", got)
	}
}
