// Package fs is the local-folder object store, the embedded default.
//
// Layout: the key "messages/ab/cd/<hex>" is the file <dir>/messages/ab/cd/<hex>.
// Keys map 1:1 to paths: the archive already chooses sharded key names, so
// this package does not shard again. Temporary files live in <dir>/.tmp, a
// name that objstore.ValidKey can never produce, so they never collide with a
// key and List never shows them.
//
// Invariants (on top of the objstore contract):
//   - Put writes the bytes to a temporary file, checks the count, fsyncs it,
//     then link(2)s it to the key's path. link fails with EEXIST when the key
//     exists, so an object is never overwritten, and concurrent Puts of one
//     key have exactly one winner without any lock. The key's folder is
//     fsync'd before Put returns nil, and so is the parent of every folder
//     that Put created (or first saw) so that a new folder survives a crash.
//   - A stored file is read-only (0440) and whole: it becomes visible only
//     after all its bytes were written and fsync'd, so after a crash
//     (kill -9 or power loss) a key holds either the whole object or nothing.
//   - Puts run concurrently; there is no global lock.
//   - Each Open gets its own temporary folder under .tmp, held with flock(2).
//     Open removes the temporary folders whose owner is gone (leftovers from
//     a crash) and leaves those of live processes alone, so a second process
//     (cairn verify next to cairn serve) may open the same folder.
//
// Limits: a key cannot be both an object and a folder ("a" and "a/b"): such
// a Put fails with an error that is not objstore.ErrExist. The folder must be
// on one filesystem (link(2) does not cross mounts). The package needs
// flock(2) and link(2), so it builds on Unix systems only.
package fs

import (
	"hash/fnv"
	"strconv"

	"golang.org/x/sys/unix"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cairn-archive/cairn/archive/objstore"
)

const (
	// tmpName is the folder of temporary files. It starts with '.', so no
	// valid key names it or anything below it.
	tmpName = ".tmp"
	// filePerm is the mode of a stored object: read-only for owner and group.
	filePerm = 0o440
	// dirPerm is the mode of the folders that hold objects.
	dirPerm = 0o750
)

// Store is a write-once object store in a local folder. It implements
// objstore.Store and objstore.RangeReader. All methods are safe for
// concurrent use.
type Store struct {
	root string // absolute path of the store's folder
	tmp  string // this Store's own temporary folder, under root/.tmp
	lock *os.File

	// durable holds the folders (slash paths relative to root, "" for root)
	// whose entry in their parent this process has fsync'd. A folder in it
	// needs no more fsync of its parent before an object in it is durable.
	// It grows with the number of folders, which the key scheme bounds
	// (messages/ab/cd gives at most 65,536), not with the number of objects.
	durable sync.Map
	// made holds folders created by PutUnsynced since the last Sync.
	made sync.Map
	// noTmpfile is set once the filesystem refused O_TMPFILE.
	noTmpfile atomic.Bool
	closed    atomic.Bool

	closeOnce sync.Once
	closeErr  error
}

var (
	_ objstore.Store       = (*Store)(nil)
	_ objstore.RangeReader = (*Store)(nil)
	_ objstore.Batcher     = (*Store)(nil)
)

// tmpFolders is how many folders temp files are spread over.
const tmpFolders = 16

// tmpFor returns the temp folder for key's file.
func (s *Store) tmpFor(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return filepath.Join(s.tmp, strconv.Itoa(int(h.Sum32()%tmpFolders)))
}

// Open opens the store in dir, creating dir if missing. It removes the
// temporary files that a crashed process left behind, and takes a temporary
// folder of its own. Close releases it; a process that exits without Close
// leaves only an empty folder that the next Open removes.
func Open(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(root, dirPerm); err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: %w", dir, err)
	}
	tmpRoot := filepath.Join(root, tmpName)
	if err := os.Mkdir(tmpRoot, dirPerm); err != nil && !errors.Is(err, iofs.ErrExist) {
		return nil, fmt.Errorf("objstore/fs: open %s: %w", dir, err)
	}
	// Cleaning up and taking our own folder happen under one lock shared by
	// every process opening this store, so that no Open removes a folder
	// another has made but not yet locked.
	guard, err := os.OpenFile(filepath.Join(tmpRoot, guardName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: %w", dir, err)
	}
	defer guard.Close()
	if err := syscall.Flock(int(guard.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: lock: %w", dir, err)
	}
	if err := removeLeftovers(tmpRoot); err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: remove leftover temporary files: %w", dir, err)
	}
	// The root and its entry in its parent are made durable once here, so
	// that the first Put does not have to.
	for _, d := range []string{tmpRoot, root, filepath.Dir(root)} {
		if err := objstore.SyncDir(d); err != nil {
			return nil, fmt.Errorf("objstore/fs: open %s: %w", dir, err)
		}
	}
	tmp, lock, err := makeOwnTemp(tmpRoot)
	if err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: %w", dir, err)
	}
	s := &Store{root: root, tmp: tmp, lock: lock}
	s.durable.Store("", struct{}{})
	return s, nil
}

// guardName is the lock file under .tmp that serialises Opens.
const guardName = "guard"

// makeOwnTemp creates a fresh temporary folder under tmpRoot and holds an
// exclusive flock on it for the life of the Store.
func makeOwnTemp(tmpRoot string) (string, *os.File, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	tmp := filepath.Join(tmpRoot, hex.EncodeToString(b[:]))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", nil, err
	}
	for i := 0; i < tmpFolders; i++ {
		if err := os.Mkdir(filepath.Join(tmp, strconv.Itoa(i)), 0o700); err != nil {
			os.RemoveAll(tmp)
			return "", nil, err
		}
	}
	lock, err := os.Open(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		os.Remove(tmp)
		return "", nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	return tmp, lock, nil
}

// removeLeftovers removes every temporary folder under tmpRoot that no live
// Store holds. A held folder answers LOCK_NB with EWOULDBLOCK.
func removeLeftovers(tmpRoot string) error {
	entries, err := os.ReadDir(tmpRoot)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(tmpRoot, e.Name())
		if e.Name() == guardName {
			continue
		}
		if !e.IsDir() {
			if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return err
			}
			continue
		}
		f, err := os.Open(p)
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			continue // a live Store owns it
		}
		if err != nil {
			f.Close()
			return err
		}
		// We hold the lock now, so no Store is writing here. A leftover file
		// may be a second name of a stored object (the crash came between
		// link and unlink); removing it only drops that name.
		err = os.RemoveAll(p)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// Close releases the Store's temporary folder. Put fails after Close; the
// other methods keep working. Close is idempotent.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.closeOnce.Do(func() {
		err := os.RemoveAll(s.tmp)
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			s.closeErr = fmt.Errorf("objstore/fs: close: %w", err)
		}
	})
	return s.closeErr
}

// Dir returns the absolute path of the store's folder.
func (s *Store) Dir() string { return s.root }

// path returns the file path of a valid key.
func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put stores exactly size bytes from r under key (see objstore.Store). A nil
// return means the file and every folder entry leading to it are fsync'd.
// ctx is checked between reads of r; once the object is linked into place
// Put no longer gives up.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size, true); err != nil {
		return fmt.Errorf("objstore/fs: put %s: %w", key, err)
	}
	return nil
}

// PutUnsynced stores like Put but without any fsync: the object is durable
// only once a later Sync returns nil (objstore.Batcher). Until then a crash
// may lose it, or leave it present but short; callers must not reference it
// (in the ledger) before Sync.
func (s *Store) PutUnsynced(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size, false); err != nil {
		return fmt.Errorf("objstore/fs: put %s: %w", key, err)
	}
	return nil
}

// Sync makes every object written by PutUnsynced before the call durable:
// one syncfs(2) of the store's filesystem, which flushes the files' data and
// their folder entries together, instead of two fsyncs per object.
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Folders made unsynced before this point become durable with it.
	var made []any
	s.made.Range(func(k, _ any) bool {
		made = append(made, k)
		return true
	})
	if err := unix.Syncfs(int(s.lock.Fd())); err != nil {
		return fmt.Errorf("objstore/fs: syncfs %s: %w", s.root, err)
	}
	for _, k := range made {
		s.durable.Store(k, struct{}{})
		s.made.Delete(k)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64, sync bool) (err error) {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("negative size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	folder := parentOf(key)
	if err := s.ensureDir(folder, sync); err != nil {
		return err
	}

	dst := s.path(key)
	// Preferred: an unnamed file (O_TMPFILE) in the target folder, linked
	// into place. No temporary name is created or removed, and a crash
	// leaves nothing behind. Filesystems without O_TMPFILE fall back to a
	// named temporary file in this Store's own temp folder.
	if s.closed.Load() {
		return errors.New("store is closed")
	}
	f, named, err := s.createTemp(folder, key)
	if errors.Is(err, iofs.ErrNotExist) {
		// The folder was removed behind our back (by an operator, or a
		// restore): forget that it was durable, make it again, retry once.
		s.forgetFolder(folder)
		if err := s.ensureDir(folder, sync); err != nil {
			return err
		}
		f, named, err = s.createTemp(folder, key)
	}
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if named != "" {
			// Before the link this drops the partial file; after it, the
			// second name of the stored object. Neither needs to be
			// durable: a leftover is removed by the next Open.
			os.Remove(named)
		}
	}()

	n, err := io.Copy(f, io.LimitReader(objstore.ContextReader(ctx, r), size+1))
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	switch {
	case n > size:
		return fmt.Errorf("reader gave more than the %d bytes announced", size)
	case n < size:
		return fmt.Errorf("reader gave %d bytes, %d announced: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err := f.Chmod(filePerm); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	err = s.link(f, named, dst)
	if errors.Is(err, iofs.ErrNotExist) && named != "" {
		// As above, for a named temp file made before the folder went.
		s.forgetFolder(folder)
		if err := s.ensureDir(folder, sync); err != nil {
			return err
		}
		err = s.link(f, named, dst)
	}
	if err != nil {
		if errors.Is(err, iofs.ErrExist) {
			if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
				return fmt.Errorf("a folder has the same name (key is a prefix of other keys)")
			}
			return objstore.ErrExist
		}
		if errors.Is(err, syscall.EXDEV) {
			return fmt.Errorf("%w (the store's folder must be one filesystem)", err)
		}
		return err
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		os.Remove(dst)
		return cerr
	}
	if !sync {
		return nil
	}
	if err := objstore.SyncDir(filepath.Dir(dst)); err != nil {
		// We cannot promise durability, so the object must not stay
		// visible: Put's error means "nothing stored".
		if rerr := os.Remove(dst); rerr != nil {
			return fmt.Errorf("%w; and removing the undurable object failed: %v", err, rerr)
		}
		return err
	}
	return nil
}

// forgetFolder drops what this Store knew about folder and its parents.
func (s *Store) forgetFolder(folder string) {
	for f := folder; f != ""; f = parentOf(f) {
		s.durable.Delete(f)
		s.made.Delete(f)
	}
}

// createTemp opens a file to write key's bytes into: an unnamed O_TMPFILE
// in the target folder when the filesystem supports it (named is ""), else
// a named file in this Store's temp folders.
func (s *Store) createTemp(folder, key string) (f *os.File, named string, err error) {
	if !s.noTmpfile.Load() {
		fd, err := unix.Open(s.path(folder), unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
		if err == nil {
			return os.NewFile(uintptr(fd), s.path(key)), "", nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
			return nil, "", &os.PathError{Op: "open O_TMPFILE", Path: s.path(folder), Err: err}
		}
		s.noTmpfile.Store(true)
	}
	// Spread over several folders: concurrent creates in one folder
	// contend on its lock.
	f, err = os.CreateTemp(s.tmpFor(key), "put-*")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// link gives the written file its name: linkat(2) of the O_TMPFILE through
// /proc/self/fd (which needs no privilege, unlike AT_EMPTY_PATH), or of the
// named temp file. Both fail with EEXIST rather than replace: write-once.
func (s *Store) link(f *os.File, named, dst string) error {
	if named != "" {
		return os.Link(named, dst)
	}
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return &os.LinkError{Op: "link", Old: "O_TMPFILE", New: dst, Err: err}
	}
	return nil
}

// parentOf is the folder of a key or folder, "" for the root.
func parentOf(rel string) string {
	if p := path.Dir(rel); p != "." {
		return p
	}
	return ""
}

// ensureDir creates the folder rel (a slash path relative to root) and its
// missing ancestors, and makes each one's entry in its parent durable.
func (s *Store) ensureDir(rel string, sync bool) error {
	if _, ok := s.durable.Load(rel); ok {
		return nil
	}
	if _, ok := s.made.Load(rel); ok && !sync {
		return nil
	}
	parent := parentOf(rel)
	if err := s.ensureDir(parent, sync); err != nil {
		return err
	}
	full := s.path(rel)
	if err := os.Mkdir(full, dirPerm); err != nil {
		if !errors.Is(err, iofs.ErrExist) {
			return err
		}
		// Someone else made it, perhaps a moment ago and not yet fsync'd
		// its parent: the fsync below covers both of us.
		fi, serr := os.Lstat(full)
		if serr != nil {
			return serr
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is an object, not a folder", rel)
		}
	}
	if !sync {
		s.made.Store(rel, struct{}{}) // durable at the next Sync
		return nil
	}
	if err := objstore.SyncDir(s.path(parent)); err != nil {
		return err
	}
	s.durable.Store(rel, struct{}{})
	return nil
}

// Get opens the object for reading (see objstore.Store). The returned
// *os.File ignores ctx after Get returns; the caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	f, _, err := s.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("objstore/fs: get %s: %w", key, err)
	}
	return f, nil
}

// open opens key's file and checks it is a regular file.
func (s *Store) open(ctx context.Context, key string) (*os.File, int64, error) {
	if err := objstore.ValidKey(key); err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, 0, notExist(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, objstore.ErrNotExist
	}
	return f, fi.Size(), nil
}

// Stat returns the object's Info, or ErrNotExist (see objstore.Store).
func (s *Store) Stat(ctx context.Context, key string) (objstore.Info, error) {
	fi, err := s.lstat(ctx, key)
	if err != nil {
		return objstore.Info{}, fmt.Errorf("objstore/fs: stat %s: %w", key, err)
	}
	return objstore.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

func (s *Store) lstat(ctx context.Context, key string) (iofs.FileInfo, error) {
	if err := objstore.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fi, err := os.Lstat(s.path(key))
	if err != nil {
		return nil, notExist(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, objstore.ErrNotExist
	}
	return fi, nil
}

// Delete removes the object and fsyncs its folder, so a nil return means the
// removal survives a crash. It returns ErrNotExist if the object is missing.
// Empty folders are kept: removing them would race with a Put into them.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.delete(ctx, key); err != nil {
		return fmt.Errorf("objstore/fs: delete %s: %w", key, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, key string) error {
	if _, err := s.lstat(ctx, key); err != nil {
		return err
	}
	p := s.path(key)
	if err := os.Remove(p); err != nil {
		return notExist(err)
	}
	return objstore.SyncDir(filepath.Dir(p))
}

// List calls fn for every object whose key starts with prefix, in lexical
// key order (see objstore.Store). It reads only the folders below the
// prefix's last '/', so a narrow prefix stays cheap. An object removed while
// List runs may or may not be reported. The prefix must be "" or a valid key,
// optionally followed by '/'; anything else is ErrInvalidKey.
func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.Info) error) error {
	if err := objstore.ValidPrefix(prefix); err != nil {
		return fmt.Errorf("objstore/fs: list %s: %w", prefix, err)
	}
	dir, namePrefix := "", prefix
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir, namePrefix = prefix[:i], prefix[i+1:]
	}
	if err := s.walk(ctx, dir, namePrefix, fn); err != nil {
		return fmt.Errorf("objstore/fs: list %s: %w", prefix, err)
	}
	return nil
}

// walk reports, in key order, the objects in folder dir (a key prefix
// without the trailing '/') whose name starts with namePrefix, and all
// objects below the matching subfolders.
func (s *Store) walk(ctx context.Context, dir, namePrefix string, fn func(objstore.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := readDir(s.path(dir))
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // nothing under this prefix, or removed meanwhile
		}
		return err
	}
	entries = slices.DeleteFunc(entries, func(e iofs.DirEntry) bool {
		name := e.Name()
		// Drops .tmp and anything else no valid key can name.
		return !strings.HasPrefix(name, namePrefix) || objstore.ValidKey(name) != nil
	})
	// Keys order by their full path. A folder "a" holds keys "a/...", and
	// '/' sorts before most key bytes but after '-' and '.', so "a-b" and
	// "a.c" come before everything in "a". Sorting folders as "a/" gets
	// this right without reading them.
	sortName := func(e iofs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b iofs.DirEntry) int {
		return strings.Compare(sortName(a), sortName(b))
	})
	for _, e := range entries {
		key := e.Name()
		if dir != "" {
			key = dir + "/" + key
		}
		switch {
		case e.IsDir():
			if err := s.walk(ctx, key, "", fn); err != nil {
				return err
			}
		case e.Type().IsRegular():
			fi, err := e.Info()
			if errors.Is(err, iofs.ErrNotExist) {
				continue // deleted since ReadDir
			}
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(objstore.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// OpenReaderAt opens key for ranged reads (see objstore.RangeReader). The
// caller closes the result; ReadAt ignores ctx.
func (s *Store) OpenReaderAt(ctx context.Context, key string) (objstore.ReaderAt, error) {
	f, size, err := s.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("objstore/fs: open %s: %w", key, err)
	}
	return &readerAt{File: f, size: size}, nil
}

// readerAt is an open object file. Its size is fixed: stored files are
// never written again.
type readerAt struct {
	*os.File
	size int64
}

func (r *readerAt) Size() int64 { return r.size }

// readDir is os.ReadDir; tests replace it to see which folders List reads.
var readDir = os.ReadDir

// notExist maps "no such file" and "a path element is a file" to
// objstore.ErrNotExist; other errors pass through.
func notExist(err error) error {
	if errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", objstore.ErrNotExist, err)
	}
	return err
}
