package importer

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bzip2Message is "Subject: bz\n\nhello bzip2\n" compressed by bzip2 -9:
// the standard library reads bzip2 but cannot write it.
var bzip2Message = []byte{
	0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, 0xff, 0x8e,
	0x34, 0xf6, 0x00, 0x00, 0x03, 0xdb, 0x80, 0x00, 0x10, 0x40, 0x00, 0x10,
	0x10, 0x08, 0x00, 0x1a, 0x74, 0xc6, 0x10, 0x20, 0x00, 0x21, 0xa8, 0x36,
	0xa0, 0x18, 0xd4, 0x28, 0x69, 0xa6, 0x00, 0x15, 0xec, 0xcf, 0x12, 0xcb,
	0x43, 0xd3, 0x07, 0xae, 0x50, 0x49, 0x11, 0xf1, 0x77, 0x24, 0x53, 0x85,
	0x09, 0x0f, 0xf8, 0xe3, 0x4f, 0x60,
}

func TestDecompress(t *testing.T) {
	plain := []byte("Subject: x\n\nbody\n")
	tests := []struct {
		name   string
		in     []byte
		want   string
		method string
		err    error
	}{
		{"plain", plain, string(plain), "", nil},
		{"gzip", gzipBytes(t, plain), string(plain), "gzip", nil},
		{"bzip2", bzip2Message, "Subject: bz\n\nhello bzip2\n", "bzip2", nil},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, "", "zstd", errCompressed},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1}, "", "xz", errCompressed},
		{"lz4", []byte{0x04, 0x22, 0x4d, 0x18, 1}, "", "lz4", errCompressed},
		{"gzip bomb over the limit", gzipBytes(t, bytes.Repeat([]byte("a"), 1000)), "", "gzip", errTooLarge},
		{"BZh as text is not bzip2", []byte("BZh: a header\n\n"), "BZh: a header\n\n", "", nil},
	}
	for _, tt := range tests {
		out, method, err := decompress(tt.in, 500)
		if string(out) != tt.want || method != tt.method || !errors.Is(err, tt.err) {
			t.Errorf("%s: %q %q %v, want %q %q %v", tt.name, out, method, err, tt.want, tt.method, tt.err)
		}
	}
	if _, _, err := decompress([]byte{0x1f, 0x8b, 8, 0, 0}, 500); err == nil {
		t.Error("truncated gzip: no error")
	}
}

// TestCompressedMaildir: Dovecot's zlib plugin keeps Maildir files
// compressed; they are archived decompressed, under the usual key.
func TestCompressedMaildir(t *testing.T) {
	md := tempDir(t)
	at := time.Unix(1700000000, 0)
	maildirFile(t, filepath.Join(md, "cur", "1700000001.M1.h:2,SZ"), string(gzipBytes(t, []byte("Subject: gz\n\nhello gzip\n"))), at)
	maildirFile(t, filepath.Join(md, "cur", "1700000002.M2.h:2,SZ"), string(bzip2Message), at)
	maildirFile(t, filepath.Join(md, "new", "1700000003.M3.h"), "\x28\xb5\x2f\xfdzstd", at)
	os.MkdirAll(filepath.Join(md, "new"), 0o755)
	a := newFakeArchive()
	sum := runImport(t, a, []string{md}, Options{})
	if sum.Archived != 2 || sum.Refused != 1 {
		t.Fatalf("summary %+v", sum)
	}
	k := maildirKey(md, "1700000001.M1.h")
	if string(a.raw[k]) != "Subject: gz\n\nhello gzip\n" || a.env[k].Meta["compression"] != "gzip" || a.env[k].Meta["flags"] != "SZ" {
		t.Errorf("gzip: %q %v", a.raw[k], a.env[k].Meta)
	}
	if string(a.raw[maildirKey(md, "1700000002.M2.h")]) != "Subject: bz\n\nhello bzip2\n" {
		t.Errorf("bzip2: %q", a.raw[maildirKey(md, "1700000002.M2.h")])
	}
	if r := issuesOf(sum, IssueRefused); len(r) != 1 || !strings.Contains(r[0].Reason, "zstd") {
		t.Errorf("refused %v", r)
	}
}
