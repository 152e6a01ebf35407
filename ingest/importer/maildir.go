package importer

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaildirName is a Maildir message file name split into its parts.
// SPEC: https://cr.yp.to/proto/maildir.html ("unique:2,flags"), with the
// Maildir++ ",S=size" extensions kept inside the unique part.
type MaildirName struct {
	// Unique is the part before the info separator. It names the message in
	// its folder for as long as the message lives, whatever flags it gets.
	Unique string
	// Info is the part after the separator, such as "2,FS"; empty when the
	// name has no separator.
	Info string
	// Flags are the letters after "2," (version 2 info); empty otherwise.
	Flags string
	// Time is the delivery time written as the leading seconds of Unique by
	// the delivering agent; zero when Unique does not start with a plausible
	// Unix time (1995 to 2200).
	Time time.Time
}

// ParseMaildirName splits a Maildir file name (the base name, not a path).
// The info separator is ':'; mbsync on file systems without ':' writes ';' or
// '!' instead, which is accepted when followed by "2," and flag letters. It
// never fails: a name without a separator is all Unique.
func ParseMaildirName(name string) MaildirName {
	var n MaildirName
	if i := strings.IndexByte(name, ':'); i >= 0 {
		n.Unique, n.Info = name[:i], name[i+1:]
	} else if i := strings.LastIndexAny(name, ";!"); i >= 0 && isV2Info(name[i+1:]) {
		n.Unique, n.Info = name[:i], name[i+1:]
	} else {
		n.Unique = name
	}
	if rest, ok := strings.CutPrefix(n.Info, "2,"); ok {
		n.Flags = rest
	}
	n.Time = uniqueTime(n.Unique)
	return n
}

// isV2Info reports whether s is "2," followed by flag letters only.
func isV2Info(s string) bool {
	rest, ok := strings.CutPrefix(s, "2,")
	if !ok {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// uniqueTime reads the leading decimal seconds of a unique name.
func uniqueTime(u string) time.Time {
	end := strings.IndexByte(u, '.')
	if end < 9 || end > 10 {
		return time.Time{}
	}
	var secs int64
	for i := 0; i < end; i++ {
		c := u[i]
		if c < '0' || c > '9' {
			return time.Time{}
		}
		secs = secs*10 + int64(c-'0')
	}
	const lo, hi = 788918400, 7258118400 // 1995-01-01, 2200-01-01
	if secs < lo || secs >= hi {
		return time.Time{}
	}
	return time.Unix(secs, 0).UTC()
}

// isMaildir reports whether dir holds cur/ and new/ directories. tmp/ is
// not required: copies of Maildirs often leave it out.
func isMaildir(dir string) bool {
	for _, sub := range []string{"cur", "new"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// maildirPlusPlusFolder turns a Maildir++ folder directory name (".A.B")
// into a folder path ("A/B"). SPEC: https://www.courier-mta.org/imap/README.maildirquota.html
func maildirPlusPlusFolder(name string) string {
	return strings.ReplaceAll(strings.TrimPrefix(name, "."), ".", "/")
}

// joinFolder appends child to the folder path parent ("" is the top).
func joinFolder(parent, child string) string {
	if parent == "" {
		return child
	}
	if child == "" {
		return parent
	}
	return parent + "/" + child
}

// folderName is what Meta records for a folder path: "INBOX" for the top.
func folderName(f string) string {
	if f == "" {
		return "INBOX"
	}
	return f
}

// maildirReceivedAt picks the delivery time of a Maildir message: the earlier
// of the file's mtime and the time in its unique name. Both are at or after
// the delivery: the name is written once at delivery and survives copies and
// flag renames, while the mtime is reset by a plain cp but set back to the
// original date by Dovecot and imapsync migrations (it is Dovecot's
// INTERNALDATE).
func maildirReceivedAt(mtime time.Time, n MaildirName) (time.Time, string) {
	if !n.Time.IsZero() && (mtime.IsZero() || n.Time.Before(mtime)) {
		return n.Time, "maildir_name"
	}
	return mtime, "mtime"
}
