package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// entryKind says what the walk found.
type entryKind int

const (
	entryFile       entryKind = iota // a file to detect: named on the command line or found in a directory
	entryMaildirMsg                  // a message file in a Maildir's cur/ or new/
	entrySkip                        // something that is not imported, with a reason
	entryError                       // a directory that could not be read
)

// entry is one thing found under a root. The walk does no I/O per file
// beyond reading directories, so the plan pass (sizes) and the import pass
// see the same entries.
type entry struct {
	kind     entryKind
	path     string      // absolute
	name     string      // base name
	de       fs.DirEntry // nil for a root file
	size     int64       // for a root file; see fileSize
	explicit bool        // named on the command line
	folder   string      // Maildir folder path, or the directory relative to the root
	mdDir    string      // the Maildir folder directory holding the message
	reason   string      // entrySkip
	err      error       // entryError
}

// fileSize returns the size of the entry's file, 0 if it cannot be known.
func (e *entry) fileSize() int64 {
	if e.de == nil {
		return e.size
	}
	fi, err := e.de.Info()
	if err != nil {
		return 0
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = os.Stat(e.path); err != nil {
			return 0
		}
	}
	if !fi.Mode().IsRegular() {
		return 0
	}
	return fi.Size()
}

// walkFunc receives each entry; an error stops the walk and is returned.
type walkFunc func(e *entry) error

// root is a path named on the command line, resolved.
type root struct {
	arg  string // as given
	path string // absolute, symbolic links resolved
	info os.FileInfo
}

// resolveRoot makes arg absolute and resolves its symbolic links, so that keys
// do not depend on how the path was spelled.
func resolveRoot(arg string) (root, error) {
	abs, err := filepath.Abs(arg)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(abs)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return root{}, fmt.Errorf("importer: %s: %w", arg, err)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return root{}, fmt.Errorf("importer: %s: not a file or directory", arg)
	}
	return root{arg: arg, path: abs, info: fi}, nil
}

// walkRoot calls fn for everything to import under r.
func walkRoot(r root, fn walkFunc) error {
	if !r.info.IsDir() {
		return fn(&entry{kind: entryFile, path: r.path, name: filepath.Base(r.path), size: r.info.Size(), explicit: true})
	}
	if isMaildir(r.path) {
		folder := ""
		// A Maildir++ subfolder named on its own keeps its name.
		base := filepath.Base(r.path)
		if _, err := os.Stat(filepath.Join(r.path, "maildirfolder")); err == nil && strings.HasPrefix(base, ".") {
			folder = maildirPlusPlusFolder(base)
		}
		return walkMaildir(r.path, folder, fn)
	}
	return walkTree(r.path, "", fn)
}

// walkTree searches a directory that is not a Maildir.
func walkTree(dir, rel string, fn walkFunc) error {
	return readDirBatches(dir, fn, func(de fs.DirEntry) error {
		name := de.Name()
		path := filepath.Join(dir, name)
		switch t := de.Type(); {
		case strings.HasPrefix(name, "."):
			return fn(&entry{kind: entrySkip, path: path, name: name, de: de, reason: "hidden, not searched"})
		case t.IsDir():
			if isMaildir(path) {
				return walkMaildir(path, joinFolder(rel, name), fn)
			}
			return walkTree(path, joinFolder(rel, name), fn)
		case t.IsRegular():
			return fn(&entry{kind: entryFile, path: path, name: name, de: de, folder: rel})
		case t&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(path)
			var fi os.FileInfo
			if err == nil {
				fi, err = os.Stat(target)
			}
			if err != nil || !fi.Mode().IsRegular() {
				return fn(&entry{kind: entrySkip, path: path, name: name, reason: "symbolic link not followed (only links to files are)"})
			}
			return fn(&entry{kind: entryFile, path: target, name: filepath.Base(target), size: fi.Size(), folder: rel})
		default:
			return fn(&entry{kind: entrySkip, path: path, name: name, reason: "not a regular file"})
		}
	})
}

// walkMaildir imports the Maildir folder dir (recorded as folder) and the
// folders below it. SPEC: https://cr.yp.to/proto/maildir.html: read new/ and
// cur/, never tmp/, and skip names starting with a dot.
func walkMaildir(dir, folder string, fn walkFunc) error {
	for _, sub := range []string{"new", "cur"} {
		err := readDirBatches(filepath.Join(dir, sub), fn, func(de fs.DirEntry) error {
			name := de.Name()
			if strings.HasPrefix(name, ".") || de.IsDir() {
				return nil
			}
			return fn(&entry{kind: entryMaildirMsg, path: filepath.Join(dir, sub, name), name: name, de: de, folder: folder, mdDir: dir})
		})
		if err != nil {
			return err
		}
	}
	return readDirBatches(dir, fn, func(de fs.DirEntry) error {
		name := de.Name()
		if !de.IsDir() || name == "cur" || name == "new" || name == "tmp" {
			return nil // dovecot-uidlist, maildirfolder, subscriptions and the like
		}
		path := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".") {
			// Maildir++ subfolder; other dot directories are server state.
			if isMaildir(path) {
				return walkMaildir(path, joinFolder(folder, maildirPlusPlusFolder(name)), fn)
			}
			return nil
		}
		return searchMaildirs(path, joinFolder(folder, name), fn)
	})
}

// searchMaildirs finds Maildirs nested inside a Maildir (Dovecot LAYOUT=fs),
// through directories that are not Maildirs themselves.
func searchMaildirs(dir, folder string, fn walkFunc) error {
	if isMaildir(dir) {
		return walkMaildir(dir, folder, fn)
	}
	return readDirBatches(dir, fn, func(de fs.DirEntry) error {
		if !de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			return nil
		}
		return searchMaildirs(filepath.Join(dir, de.Name()), joinFolder(folder, de.Name()), fn)
	})
}

// readDirBatches calls each for the entries of dir, a batch at a time, so a
// directory of a million messages is never listed in memory at once. The
// order is the directory's, not sorted. A directory that cannot be read is
// reported to fn as an entryError.
func readDirBatches(dir string, fn walkFunc, each func(fs.DirEntry) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return fn(&entry{kind: entryError, path: dir, err: unwrapPath(err)})
	}
	defer f.Close()
	for {
		des, err := f.ReadDir(1024)
		for _, de := range des {
			if err := each(de); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fn(&entry{kind: entryError, path: dir, err: unwrapPath(err)})
		}
	}
}

// unwrapPath drops the operation and path of an *fs.PathError, which the
// importer's own messages already name.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fileKind is what a file holds, judged from its name and first bytes.
type fileKind int

const (
	kindNotMail fileKind = iota
	kindEmpty
	kindMbox
	kindMessage
)

// sniffSize is how much of a file classify looks at.
const sniffSize = 4096

// classify decides what a file holds from its first bytes (up to sniffSize)
// and its name (without .gz). A From_ first line makes an mbox (leading blank
// lines are tolerated); so does the name .mbox or .mbx, and the mbox reader
// then reports the bytes before the first From_ line. Otherwise takeAll
// (named on the command line, or .eml) makes it one message; failing that it
// must look like a message header.
func classify(head []byte, name string, takeAll bool) fileKind {
	lower := strings.ToLower(name)
	named := strings.HasSuffix(lower, ".mbox") || strings.HasSuffix(lower, ".mbx")
	if len(head) == 0 {
		if named {
			return kindMbox // an empty mailbox, not a problem
		}
		return kindEmpty
	}
	rest := head
	for {
		if bytes.HasPrefix(rest, []byte("\n")) {
			rest = rest[1:]
		} else if bytes.HasPrefix(rest, []byte("\r\n")) {
			rest = rest[2:]
		} else {
			break
		}
	}
	if isFromLine(rest) {
		return kindMbox
	}
	if named {
		return kindMbox
	}
	if takeAll {
		return kindMessage
	}
	if looksLikeMessage(head) {
		return kindMessage
	}
	return kindNotMail
}

// commonFields are header fields of which a message file found in a folder
// must have at least one in its first sniffSize bytes.
var commonFields = map[string]bool{
	"from": true, "to": true, "cc": true, "date": true, "subject": true,
	"message-id": true, "received": true, "return-path": true,
	"mime-version": true, "content-type": true, "delivered-to": true,
	"sender": true, "reply-to": true, "in-reply-to": true, "references": true,
	"x-mailer": true, "dkim-signature": true, "authentication-results": true,
}

// looksLikeMessage reports whether head starts like an RFC 5322 message: a
// block of header fields (RFC 5322 §2.2: a printable field name and a colon,
// obsolete whitespace before the colon allowed by §4.5; folded lines start
// with whitespace) that holds a field real mail has, and that either ends
// with the empty line before the body or has at least two fields (real mail
// is not always well formed: the empty line may be missing).
func looksLikeMessage(head []byte) bool {
	lines := bytes.SplitAfter(head, []byte("\n"))
	if len(head) == sniffSize && len(lines) > 1 {
		lines = lines[:len(lines)-1] // the last line may be cut short
	}
	fields, known := 0, false
	for i, line := range lines {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return known
		}
		if line[0] == ' ' || line[0] == '\t' {
			if i == 0 {
				return false
			}
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			break
		}
		fields++
		known = known || commonFields[strings.ToLower(string(name))]
	}
	return known && fields >= 2
}

// fieldName returns the field name of a header line, if it is one.
func fieldName(line []byte) ([]byte, bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, false
	}
	name := bytes.TrimRight(line[:colon], " \t")
	if len(name) == 0 {
		return nil, false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return nil, false
		}
	}
	return name, true
}
