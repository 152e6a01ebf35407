// Package volume is a write-once object store in a local folder that keeps
// objects in append-only volume files rather than one file each: the
// embedded default's store.
//
// Why: a mail archive writes two small objects per message (the message and
// its key object). As files, each costs an inode, a directory entry and its
// share of a flush of scattered metadata; measured here, that capped the
// durable ingest rate well below what the disk streams. In a volume, a group
// commit's objects are one sequential write and one fdatasync.
//
// Layout of the folder:
//
//	volumes/00000001.vol ...  append-only record logs, rotated at MaxVolume
//	map.db                    SQLite: key -> (volume, offset, size); a cache,
//	                          rebuilt from the volumes' records if lost
//	durable                   where the flushed records end (volume, offset),
//	                          for other processes: see below
//	lock                      flock(2) of the one process that writes
//
// A record is
//
//	"CVR1" | flags u8 | key length u16 | data length u64 | mtime i64 (unix ns)
//	       | CRC-32C of the header fields and key u32 | key | data | CRC-32C of data u32
//
// (integers little-endian). Flags bit 0 marks a deletion record (no data):
// Delete punches the object's data to zeros (crypto-shredding needs the
// bytes gone, not just unlinked) and appends one.
//
// The volume being written may end in zeros past its last record: the
// writer keeps them ahead of its appends (see fillPays). Zeros are not a
// record ("CVR1" is missing): a reader of the volume stops there, Open cuts
// them, and every other volume ends with its last record.
//
// Invariants: records are appended by one writer at a time, in order, so a
// flush (fdatasync) makes every record before it durable. A Put returns nil
// only after its record and every earlier one are flushed and the position
// they end at is published in the durable file. On Open, the records after
// the map's last known position are checked (header and data CRC) and the
// log is cut at the first damaged one: that one and everything after it were
// never flushed, so never acknowledged. A second process opening the folder
// while a writer holds the lock gets a read-only store that sees every
// flushed object: what map.db does not list yet, it finds by reading the
// records between the map's marks and the published position.
//
// The map's rows are written behind the flushes, not by them (writeMap): a
// map transaction per group commit wrote about 15 KB of WAL pages for two
// rows a message (their keys are keyed hashes, so each lands on its own
// leaf), and took a third of a commit's time. Until its row is written, an
// object is found through the writer's pending rows, or, in another
// process, by reading the published tail; after a crash, Open rebuilds the
// missing rows from the records past the map's marks, as it always did.
package volume

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3" // the map (cgo)
	"golang.org/x/sys/unix"

	"github.com/cairn-archive/cairn/archive/internal/bloom"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/internal/sqlitefile"
)

// MaxVolume is the size at which a volume is closed and the next begun
// (read by Open: a store keeps the value it opened with).
var MaxVolume int64 = 1 << 30

const (
	magic      = "CVR1"
	headerSize = 4 + 1 + 2 + 8 + 8 + 4 // magic flags keylen datalen mtime hcrc
	flagDelete = 1
	chunk      = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrReadOnly is returned by Put and Delete on a store opened while another
// process writes it.
var ErrReadOnly = errors.New("objstore/volume: read-only: another process writes this store")

// loc is where an object's data lies.
type loc struct {
	vol   uint32
	off   int64 // of the data
	size  int64
	mtime int64
}

// Store is a volume store. It implements objstore.Store,
// objstore.RangeReader, objstore.Batcher and objstore.Hinter. Safe for
// concurrent use.
type Store struct {
	dir      string
	readOnly bool
	lock     *os.File
	db       *sql.DB

	mu      sync.Mutex // appends, the active volume, pending
	active  *os.File
	actID   uint32
	actEnd  int64
	pending map[string]loc   // appended, not yet in map.db
	dirty   map[uint32]int64 // volume -> end offset appended since its last flush
	// hints holds locations looked up ahead by Prefetch, each dropped by
	// the lookup it serves; deleted counts deletions (see Prefetch).
	hints   map[string]loc
	deleted uint64

	syncMu sync.Mutex // flushes and deletions, one at a time

	// durable is, per volume, where the flushed records end (under mu);
	// mark is the durable file, where the last of them is published.
	durable map[uint32]int64
	mark    *os.File
	// mapMu serializes map writes (writeMap) and guards mapped, the marks
	// they last wrote; the loop that writes the map behind the flushes is
	// kicked by mapKick and stopped by mapStop.
	mapMu            sync.Mutex
	mapped           map[uint32]int64
	mapKick, mapStop chan struct{}
	mapDone          chan struct{}

	// Zeros written and flushed ahead of the active volume's end (see
	// fill): filled is where they end and ahead how far past actEnd the
	// filler keeps them (both under mu); fillOff stops it for the active
	// volume after a failed write (a full disk).
	maxVolume          int64 // MaxVolume when opened
	filled, ahead      int64
	fillOff            bool
	fillKick, fillStop chan struct{}
	fillDone           chan struct{}

	// A read-only store's view of the records past the map's marks, up to
	// the published position (see tail.go).
	tailMu  sync.Mutex
	tail    map[string]loc
	tailPos map[uint32]int64
	tailErr error // damage met before the published end

	rmu   sync.Mutex
	reads map[uint32]*os.File // read handles

	// Prepared once: the ingest path runs them for every object.
	qLookup, qInsert, qScanned, qPrefetch *sql.Stmt

	// known holds every key of the writer's store (loaded from map.db in
	// the background, then each Put's), so that Put skips its existence
	// query for a name certainly not taken; nil in a read-only store.
	known      *bloom.Filter
	stopLoad   context.CancelFunc
	loadedKeys chan struct{}
}

var (
	_ objstore.Store          = (*Store)(nil)
	_ objstore.RangeReader    = (*Store)(nil)
	_ objstore.Batcher        = (*Store)(nil)
	_ objstore.FlushesInOrder = (*Store)(nil)
	_ objstore.Prefetcher     = (*Store)(nil)
)

// PutFlushesEarlier is true: Put flushes every volume with records not yet
// flushed, oldest first, so everything appended before it is durable too.
func (s *Store) PutFlushesEarlier() bool { return true }

// Open opens (creating) the store in dir. If another process holds the
// writer lock, the store is read-only.
func Open(dir string) (*Store, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore/volume: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "volumes"), 0o750); err != nil {
		return nil, fmt.Errorf("objstore/volume: open %s: %w", dir, err)
	}
	s := &Store{dir: root, maxVolume: MaxVolume, pending: make(map[string]loc), dirty: make(map[uint32]int64), durable: make(map[uint32]int64),
		reads: make(map[uint32]*os.File)}
	lock, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("objstore/volume: open %s: %w", dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		s.readOnly = true
	} else {
		s.lock = lock
	}
	dsn := sqlitefile.URI(filepath.Join(root, "map.db"), "_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=10000&_txlock=immediate&_cache_size="+strconv.Itoa(-mapCacheKiB))
	if s.db, err = sql.Open("sqlite3", dsn); err != nil {
		s.Close()
		return nil, fmt.Errorf("objstore/volume: open %s: %w", dir, err)
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, vol INTEGER NOT NULL, off INTEGER NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS scanned (vol INTEGER PRIMARY KEY, off INTEGER NOT NULL)`,
	} {
		if _, err := s.db.Exec(q); err != nil {
			s.Close()
			return nil, fmt.Errorf("objstore/volume: open %s: map: %w", dir, err)
		}
	}
	if s.qLookup, err = s.db.Prepare(`SELECT vol, off, size, mtime FROM objects WHERE key = ?`); err != nil {
		s.Close()
		return nil, fmt.Errorf("objstore/volume: open %s: map: %w", dir, err)
	}
	if s.qPrefetch, err = s.db.Prepare(`SELECT key, vol, off, size, mtime FROM objects WHERE key IN (SELECT value FROM json_each(?))`); err != nil {
		s.Close()
		return nil, fmt.Errorf("objstore/volume: open %s: map: %w", dir, err)
	}
	if s.qInsert, err = s.db.Prepare(`INSERT OR REPLACE INTO objects(key, vol, off, size, mtime) VALUES(?,?,?,?,?)`); err != nil {
		s.Close()
		return nil, fmt.Errorf("objstore/volume: open %s: map: %w", dir, err)
	}
	if s.qScanned, err = s.db.Prepare(`INSERT INTO scanned(vol, off) VALUES(?, ?) ON CONFLICT(vol) DO UPDATE SET off = max(off, excluded.off)`); err != nil {
		s.Close()
		return nil, fmt.Errorf("objstore/volume: open %s: map: %w", dir, err)
	}
	if s.readOnly {
		return s, nil
	}
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS punches (vol INTEGER NOT NULL, off INTEGER NOT NULL, size INTEGER NOT NULL, PRIMARY KEY (vol, off))`); err != nil {
		s.Close()
		return nil, fmt.Errorf("objstore/volume: open %s: map: %w", dir, err)
	}
	if err := s.recover(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.finishPunches(); err != nil {
		s.Close()
		return nil, err
	}
	s.loadKnown()
	s.mapKick, s.mapStop, s.mapDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go s.mapLoop(mapEvery)
	if fillPays(filepath.Join(s.dir, "volumes")) {
		s.ahead = fillMin
		s.fillKick, s.fillStop, s.fillDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
		go s.fillLoop()
	}
	return s, nil
}

// loadKnown starts loading map.db's keys into s.known. The filter is sized
// from map.db's size (a row takes well over 64 bytes), not a count, which
// would read the whole table first.
func (s *Store) loadKnown() {
	var size int64
	for _, name := range []string{"map.db", "map.db-wal"} {
		if st, err := os.Stat(filepath.Join(s.dir, name)); err == nil {
			size += st.Size()
		}
	}
	f := bloom.New(int(size / 64))
	s.known = f
	ctx, cancel := context.WithCancel(context.Background())
	s.stopLoad, s.loadedKeys = cancel, make(chan struct{})
	go func() {
		defer close(s.loadedKeys)
		f.Load(ctx, s.db, `SELECT key FROM objects`)
	}()
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// ReadOnly reports whether another process holds the writer lock.
func (s *Store) ReadOnly() bool { return s.readOnly }

// Close releases the store.
func (s *Store) Close() error {
	if s.stopLoad != nil {
		s.stopLoad()
		<-s.loadedKeys
	}
	var err error
	if s.fillStop != nil {
		close(s.fillStop)
		<-s.fillDone
		s.fillStop = nil
	}
	if s.mapStop != nil {
		close(s.mapStop)
		<-s.mapDone
		s.mapStop = nil
		// Flushed and mapped: the next Open has no tail to read.
		if err = s.Sync(context.Background()); err == nil {
			err = s.writeMap(context.Background())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mark != nil {
		s.mark.Close()
		s.mark = nil
	}
	if s.active != nil {
		// A cleanly closed volume ends with its last record (also after a
		// fill that failed part way).
		if st, serr := s.active.Stat(); err == nil && serr == nil && s.fillKick != nil && st.Size() > s.actEnd {
			if terr := s.active.Truncate(s.actEnd); terr != nil {
				err = fmt.Errorf("objstore/volume: close: %w", terr)
			} else if serr := s.active.Sync(); serr != nil {
				err = fmt.Errorf("objstore/volume: close: %w", serr)
			}
		}
		s.active.Close()
		s.active = nil
	}
	s.rmu.Lock()
	for _, f := range s.reads {
		f.Close()
	}
	s.reads = map[uint32]*os.File{}
	s.rmu.Unlock()
	for _, st := range []*sql.Stmt{s.qLookup, s.qInsert, s.qScanned, s.qPrefetch} {
		if st != nil {
			st.Close()
		}
	}
	if s.db != nil {
		s.db.Close()
		s.db = nil
	}
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
	return err
}

func volName(id uint32) string { return fmt.Sprintf("%08d.vol", id) }

func (s *Store) volPath(id uint32) string {
	return filepath.Join(s.dir, "volumes", volName(id))
}

func (s *Store) volumes() ([]uint32, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "volumes"))
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, e := range ents {
		var id uint32
		if _, err := fmt.Sscanf(e.Name(), "%08d.vol", &id); err == nil && e.Name() == volName(id) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// record is one record found by recover.
type record struct {
	vol        uint32
	off        int64
	key        string
	flags      byte
	dlen       uint64
	mtime      int64
	hlen       int64
	tombstoned bool // a later deletion record names this key
}

// mapCacheKiB bounds each map.db connection's page cache. Object names are
// keyed hashes, so lookups land on random leaves: with SQLite's default
// 2 MiB, reading 100,000 messages in order (an IMAP full sync) read 2.5
// map pages per message from the file, and with this, each page once.
// The cache grows only as pages are read: a map smaller than this (about
// 120 bytes an object, two objects a message) costs only its own size.
const mapCacheKiB = 64 << 10

// recover brings map.db up to date with the volumes and cuts a torn tail.
//
// It reads the records after each volume's mark (the map's last flushed
// position). A record whose header or data fails its CRC is either one that
// Delete zeroed (a later deletion record names its key) or the torn end of
// the log: the first record that was never wholly written. The log is cut
// there; it and what follows were never flushed, so never acknowledged.
func (s *Store) recover() error {
	ids, err := s.volumes()
	if err != nil {
		return fmt.Errorf("objstore/volume: recover: %w", err)
	}
	marks, err := s.marks()
	if err != nil {
		return fmt.Errorf("objstore/volume: recover: %w", err)
	}
	if len(ids) == 0 {
		ids = []uint32{1}
	}
	files := map[uint32]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	// Pass 1: headers only.
	var recs []record
	cutVol, cutOff := uint32(0), int64(-1)
	ends := map[uint32]int64{}
	for i, id := range ids {
		f, err := os.OpenFile(s.volPath(id), os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			return fmt.Errorf("objstore/volume: recover: %w", err)
		}
		files[id] = f
		st, err := f.Stat()
		if err != nil {
			return err
		}
		size, off := st.Size(), marks[id]
		if off > size {
			off = 0 // the map knew more than the file holds: read it all
		}
		for off < size {
			key, flags, dlen, mtime, hlen, ok := readHeader(f, off, size)
			if !ok {
				if i != len(ids)-1 {
					return fmt.Errorf("objstore/volume: volume %s is damaged at offset %d", volName(id), off)
				}
				cutVol, cutOff = id, off
				break
			}
			recs = append(recs, record{vol: id, off: off, key: key, flags: flags, dlen: dlen, mtime: mtime, hlen: hlen})
			off += hlen + int64(dlen) + 4
		}
		ends[id] = off
	}
	// Which records did a later deletion record destroy?
	lastDelete := map[string]int{}
	for i, r := range recs {
		if r.flags&flagDelete != 0 {
			lastDelete[r.key] = i
		}
	}
	// Pass 2: data CRCs; the first damaged record not explained by a
	// deletion is the torn end.
	keep := len(recs)
	for i := range recs {
		r := &recs[i]
		if j, ok := lastDelete[r.key]; ok && j > i {
			r.tombstoned = true
		}
		if r.flags&flagDelete != 0 || r.tombstoned {
			continue
		}
		if !checkData(files[r.vol], r.off+r.hlen, r.dlen, r.flags) {
			if r.vol != ids[len(ids)-1] {
				return fmt.Errorf("objstore/volume: volume %s: the object %s at offset %d is damaged", volName(r.vol), r.key, r.off)
			}
			keep, cutVol, cutOff = i, r.vol, r.off
			break
		}
	}
	recs = recs[:keep]
	// A record that a later (kept) deletion record names is punched again:
	// idempotent, and it finishes a deletion whose recorded punch was lost
	// with map.db.
	punched := map[uint32]bool{}
	for i, r := range recs {
		if j, ok := lastDelete[r.key]; ok && j > i && j < keep && r.flags&flagDelete == 0 && r.dlen > 0 {
			if err := zero(files[r.vol], r.off+r.hlen, int64(r.dlen)); err != nil {
				return fmt.Errorf("objstore/volume: recover: punch %s: %w", r.key, err)
			}
			punched[r.vol] = true
		}
	}
	for v := range punched {
		if err := unix.Fdatasync(int(files[v].Fd())); err != nil {
			return fmt.Errorf("objstore/volume: recover: %w", err)
		}
	}
	if cutOff >= 0 {
		f := files[cutVol]
		if err := f.Truncate(cutOff); err != nil {
			return fmt.Errorf("objstore/volume: cut the torn end of %s: %w", volName(cutVol), err)
		}
		if err := f.Sync(); err != nil {
			return err
		}
		ends[cutVol] = cutOff
	}
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range recs {
		if r.flags&flagDelete != 0 {
			_, err = tx.Exec(`DELETE FROM objects WHERE key = ?`, r.key)
		} else {
			_, err = tx.Exec(`INSERT OR REPLACE INTO objects(key, vol, off, size, mtime) VALUES(?,?,?,?,?)`, r.key, r.vol, r.off+r.hlen, r.dlen, r.mtime)
		}
		if err != nil {
			return err
		}
	}
	for id, end := range ends {
		if _, err := tx.Exec(`INSERT OR REPLACE INTO scanned(vol, off) VALUES(?, ?)`, id, end); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	last := ids[len(ids)-1]
	f, err := os.OpenFile(s.volPath(last), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("objstore/volume: recover: %w", err)
	}
	s.active, s.actID, s.actEnd = f, last, ends[last]
	s.mapped = make(map[uint32]int64, len(ends))
	for id, end := range ends {
		s.durable[id], s.mapped[id] = end, end
	}
	if err := objstore.SyncDir(filepath.Join(s.dir, "volumes")); err != nil {
		return err
	}
	// Before any new record: a mark left by the previous writer may lie
	// past the cut, where new records will not be flushed yet.
	if s.mark, err = os.OpenFile(filepath.Join(s.dir, "durable"), os.O_RDWR|os.O_CREATE, 0o640); err != nil {
		return fmt.Errorf("objstore/volume: recover: %w", err)
	}
	return publishMark(s.mark, last, ends[last])
}

// marks returns the map's marks: per volume, where the records it lists
// end (Open reads only past them).
func (s *Store) marks() (map[uint32]int64, error) {
	rows, err := s.db.Query(`SELECT vol, off FROM scanned`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	marks := map[uint32]int64{}
	for rows.Next() {
		var v uint32
		var o int64
		if err := rows.Scan(&v, &o); err != nil {
			return nil, err
		}
		marks[v] = o
	}
	return marks, rows.Err()
}

// readHeader parses the record at off. hlen is the header plus the key.
func readHeader(f *os.File, off, size int64) (key string, flags byte, dlen uint64, mtime int64, hlen int64, ok bool) {
	var h [headerSize]byte
	if off+headerSize > size {
		return
	}
	if _, err := f.ReadAt(h[:], off); err != nil {
		return
	}
	if string(h[:4]) != magic {
		return
	}
	flags = h[4]
	klen := int64(binary.LittleEndian.Uint16(h[5:7]))
	dlen = binary.LittleEndian.Uint64(h[7:15])
	mtime = int64(binary.LittleEndian.Uint64(h[15:23]))
	hlen = headerSize + klen
	if off+hlen > size || dlen > uint64(size) || off+hlen+int64(dlen)+4 > size {
		return
	}
	kb := make([]byte, klen)
	if _, err := f.ReadAt(kb, off+headerSize); err != nil {
		return
	}
	c := crc32.Update(crc32.Checksum(h[:23], castagnoli), castagnoli, kb)
	if c != binary.LittleEndian.Uint32(h[23:27]) {
		return
	}
	return string(kb), flags, dlen, mtime, hlen, true
}

func checkData(f *os.File, off int64, dlen uint64, flags byte) bool {
	if flags&flagDelete != 0 {
		return dlen == 0
	}
	h := crc32.New(castagnoli)
	if _, err := io.Copy(h, io.NewSectionReader(f, off, int64(dlen))); err != nil {
		return false
	}
	var c [4]byte
	if _, err := f.ReadAt(c[:], off+int64(dlen)); err != nil {
		return false
	}
	return h.Sum32() == binary.LittleEndian.Uint32(c[:])
}

func header(key string, flags byte, dlen int64, mtime int64) []byte {
	h := make([]byte, headerSize, headerSize+len(key))
	copy(h, magic)
	h[4] = flags
	binary.LittleEndian.PutUint16(h[5:7], uint16(len(key)))
	binary.LittleEndian.PutUint64(h[7:15], uint64(dlen))
	binary.LittleEndian.PutUint64(h[15:23], uint64(mtime))
	c := crc32.Update(crc32.Checksum(h[:23], castagnoli), castagnoli, []byte(key))
	binary.LittleEndian.PutUint32(h[23:27], c)
	return append(h, key...)
}

// lookup finds key's data: first among this process's unflushed records,
// then in map.db.
func (s *Store) lookup(ctx context.Context, key string) (loc, error) {
	s.mu.Lock()
	l, ok := s.pending[key]
	if !ok {
		if l, ok = s.hints[key]; ok {
			delete(s.hints, key)
		}
	}
	s.mu.Unlock()
	if ok {
		return l, nil
	}
	if err := ctx.Err(); err != nil {
		return l, err
	}
	// A point query, which in WAL mode never waits for the writer: run
	// without ctx, as the driver's watch of a cancellable context (set up
	// and torn down for every query) cost more than the lookup itself.
	err := s.qLookup.QueryRowContext(context.Background(), key).Scan(&l.vol, &l.off, &l.size, &l.mtime)
	if errors.Is(err, sql.ErrNoRows) && s.readOnly {
		// Flushed by the writer and not yet in its map?
		if l, ok, err := s.tailLookup(key); err != nil || ok {
			return l, err
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("%w: %s", objstore.ErrNotExist, key)
	}
	if err != nil {
		return l, err
	}
	return l, nil
}

// maxHints bounds the locations Prefetch keeps: a reader that never opens
// what it prefetched leaves them behind until the next Prefetch that would
// pass the bound drops them all.
var maxHints = 8192

// prefetchQueried, when set (tests), runs between a Prefetch's query and
// its keeping of what it found.
var prefetchQueried func()

// prefetchChunk is the number of keys one Prefetch query looks up.
const prefetchChunk = 500

// Prefetch looks up the locations of keys in map.db in a few queries and
// keeps them for the lookups of the Gets and OpenReaderAts that follow (a
// point query each costs more than the read it serves: a mailbox read
// opens two objects per message). Keys not stored are skipped; errors are
// ignored (the lookups then query as before).
func (s *Store) Prefetch(ctx context.Context, keys []string) {
	for lo := 0; lo < len(keys); lo += prefetchChunk {
		if ctx.Err() != nil {
			return
		}
		s.prefetch(keys[lo:min(lo+prefetchChunk, len(keys))])
	}
}

func (s *Store) prefetch(keys []string) {
	s.mu.Lock()
	deleted := s.deleted
	s.mu.Unlock()
	// The keys go as one JSON array, to a statement prepared once: an IN
	// list of 500 placeholders was parsed, planned and bound for every
	// query, a third of the lookup's cost.
	list, err := json.Marshal(keys)
	if err != nil {
		return
	}
	// Without ctx, as lookup (see there).
	rows, err := s.qPrefetch.QueryContext(context.Background(), list)
	if err != nil {
		return
	}
	defer rows.Close()
	found := make(map[string]loc, len(keys))
	for rows.Next() {
		var k string
		var l loc
		if rows.Scan(&k, &l.vol, &l.off, &l.size, &l.mtime) != nil {
			return
		}
		found[k] = l
	}
	if rows.Err() != nil {
		return
	}
	if prefetchQueried != nil {
		prefetchQueried()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A Delete that committed after the query began may have removed a
	// row it returned: keep nothing then.
	if s.deleted != deleted {
		return
	}
	if s.hints == nil || len(s.hints)+len(found) > maxHints {
		s.hints = make(map[string]loc, len(found))
	}
	for k, l := range found {
		s.hints[k] = l
	}
}

// Put stores exactly size bytes from r under key (objstore.Store). A nil
// return means the record and every earlier one are flushed.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if _, err := s.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("objstore/volume: put %s: %w", key, err)
	}
	if err := s.Sync(ctx); err != nil {
		return fmt.Errorf("objstore/volume: put %s: %w", key, err)
	}
	return nil
}

// PutUnsynced appends the object without flushing (objstore.Batcher): it is
// durable once a later Sync or synced Put returns nil.
func (s *Store) PutUnsynced(ctx context.Context, key string, r io.Reader, size int64) error {
	if _, err := s.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("objstore/volume: put %s: %w", key, err)
	}
	return nil
}

// PutUnsyncedHint is PutUnsynced returning where the record lies
// (objstore.Hinter).
func (s *Store) PutUnsyncedHint(ctx context.Context, key string, r io.Reader, size int64) ([]byte, error) {
	l, err := s.put(ctx, key, r, size)
	if err != nil {
		return nil, fmt.Errorf("objstore/volume: put %s: %w", key, err)
	}
	return appendHint(nil, l), nil
}

var _ objstore.Hinter = (*Store)(nil)

// Hint returns a hint to an object already stored (objstore.Hinter).
func (s *Store) Hint(ctx context.Context, key string) ([]byte, error) {
	if err := objstore.ValidKey(key); err != nil {
		return nil, err
	}
	l, err := s.lookup(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("objstore/volume: hint %s: %w", key, unwrapOp(err))
	}
	return appendHint(nil, l), nil
}

// A hint is hintVersion, then the volume, the data's offset and its size
// as uvarints.
const hintVersion = 1

func appendHint(b []byte, l loc) []byte {
	b = append(b, hintVersion)
	b = binary.AppendUvarint(b, uint64(l.vol))
	b = binary.AppendUvarint(b, uint64(l.off))
	return binary.AppendUvarint(b, uint64(l.size))
}

func parseHint(b []byte) (l loc, ok bool) {
	if len(b) == 0 || b[0] != hintVersion {
		return l, false
	}
	b = b[1:]
	var v [3]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return l, false
		}
		v[i], b = x, b[n:]
	}
	if len(b) != 0 || v[0] > 1<<32-1 || v[1] > 1<<62 || v[2] > 1<<62 {
		return l, false
	}
	return loc{vol: uint32(v[0]), off: int64(v[1]), size: int64(v[2])}, true
}

// ReadHint reads the whole record the hint points to, in one read, and
// returns its data if the record is key's and whole: the header's magic,
// key and CRC, no deletion flag, and the data's CRC (a deleted object's
// data is punched to zeros, which fails it). Anything else is
// objstore.ErrStaleHint (objstore.Hinter).
func (s *Store) ReadHint(ctx context.Context, key string, hint []byte, max int64, alloc func(n int) []byte) ([]byte, error) {
	stale := func(why string) error {
		return fmt.Errorf("objstore/volume: read %s: %w (%s)", key, objstore.ErrStaleHint, why)
	}
	l, ok := parseHint(hint)
	if !ok {
		return nil, stale("malformed hint")
	}
	hlen := int64(headerSize + len(key))
	if l.size > max || l.off < hlen || len(key) > 1<<16-1 {
		return nil, stale("out of range")
	}
	if l.size == 0 {
		// Punching leaves an empty object's record as it was: only a
		// lookup knows whether it was deleted.
		return nil, stale("an empty object")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.file(l.vol)
	if err != nil {
		return nil, stale(err.Error())
	}
	n := int(hlen + l.size + 4)
	var rec []byte
	if alloc != nil {
		rec = alloc(n)[:n]
	} else {
		rec = make([]byte, n)
	}
	if _, err := f.ReadAt(rec, l.off-hlen); err != nil {
		return nil, stale(err.Error())
	}
	h, data := rec[:headerSize], rec[hlen:hlen+l.size]
	switch {
	case string(h[:4]) != magic || h[4] != 0:
		return nil, stale("no record of an object there")
	case int(binary.LittleEndian.Uint16(h[5:7])) != len(key) || string(rec[headerSize:hlen]) != key:
		return nil, stale("another object's record")
	case binary.LittleEndian.Uint64(h[7:15]) != uint64(l.size):
		return nil, stale("another size")
	case crc32.Update(crc32.Checksum(h[:23], castagnoli), castagnoli, rec[headerSize:hlen]) != binary.LittleEndian.Uint32(h[23:27]):
		return nil, stale("header CRC mismatch")
	case crc32.Checksum(data, castagnoli) != binary.LittleEndian.Uint32(rec[hlen+l.size:]):
		return nil, stale("data CRC mismatch (deleted or damaged)")
	}
	return data, nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64) (loc, error) {
	if err := objstore.ValidKey(key); err != nil {
		return loc{}, err
	}
	if size < 0 {
		return loc{}, fmt.Errorf("negative size %d", size)
	}
	if err := ctx.Err(); err != nil {
		return loc{}, err
	}
	if s.readOnly {
		return loc{}, ErrReadOnly
	}
	// A small object's whole record is built before the lock and written
	// with one pwrite: the lock is held for the write alone, and a record
	// costs one syscall instead of three.
	var rec []byte
	mtime := time.Now().UnixNano()
	if size <= chunk {
		var err error
		if rec, err = smallRecord(ctx, key, r, size, mtime); err != nil {
			return loc{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return loc{}, errors.New("store is closed")
	}
	// Checked again under the lock: two Puts of one key race to here, and
	// the first may already be flushed from pending into map.db.
	if _, ok := s.pending[key]; ok {
		return loc{}, objstore.ErrExist
	}
	// A point query without ctx (ctx was checked above): see lookup. The
	// filter spares it for a name certainly not taken.
	if !s.known.Absent(key) {
		var l loc
		if err := s.qLookup.QueryRowContext(context.Background(), key).Scan(&l.vol, &l.off, &l.size, &l.mtime); err == nil {
			return loc{}, objstore.ErrExist
		} else if !errors.Is(err, sql.ErrNoRows) {
			return loc{}, err
		}
	}
	start := s.actEnd
	off := start + int64(headerSize+len(key))
	if rec != nil {
		if _, err := s.active.WriteAt(rec, start); err != nil {
			s.cut(start)
			return loc{}, err
		}
	} else if err := s.appendLarge(ctx, key, r, size, mtime, start); err != nil {
		return loc{}, err
	}
	s.actEnd = off + size + 4
	l := loc{vol: s.actID, off: off, size: size, mtime: mtime}
	s.pending[key] = l
	if s.known != nil {
		s.known.Add(key)
	}
	s.dirty[s.actID] = s.actEnd
	if s.actEnd >= s.maxVolume {
		if err := s.rotate(); err != nil {
			return loc{}, err
		}
	}
	return l, nil
}

// smallRecord reads exactly size bytes from r into a whole record: header,
// key, data and the data's CRC.
func smallRecord(ctx context.Context, key string, r io.Reader, size, mtime int64) ([]byte, error) {
	h := header(key, 0, size, mtime)
	rec := make([]byte, len(h)+int(size)+4)
	copy(rec, h)
	data := rec[len(h) : len(h)+int(size)]
	cr := objstore.ContextReader(ctx, r)
	n, err := io.ReadFull(cr, data)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("reader gave %d bytes, %d announced: %w", n, size, io.ErrUnexpectedEOF)
	case err != nil:
		return nil, fmt.Errorf("read after %d bytes: %w", n, err)
	}
	var extra [1]byte
	if m, err := io.ReadFull(cr, extra[:]); m > 0 {
		return nil, fmt.Errorf("reader gave more than the %d bytes announced", size)
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read after %d bytes: %w", n, err)
	}
	binary.LittleEndian.PutUint32(rec[len(h)+int(size):], crc32.Checksum(data, castagnoli))
	return rec, nil
}

// appendLarge streams a record whose data is over one chunk to the active
// volume at start, in chunks. The caller holds s.mu.
func (s *Store) appendLarge(ctx context.Context, key string, r io.Reader, size, mtime, start int64) error {
	h := header(key, 0, size, mtime)
	if _, err := s.active.WriteAt(h, start); err != nil {
		s.cut(start)
		return err
	}
	crc := crc32.New(castagnoli)
	off := start + int64(len(h))
	buf := make([]byte, chunk)
	var n int64
	lr := io.LimitReader(objstore.ContextReader(ctx, r), size+1)
	for {
		m, err := lr.Read(buf)
		if m > 0 {
			if n+int64(m) > size {
				s.cut(start)
				return fmt.Errorf("reader gave more than the %d bytes announced", size)
			}
			crc.Write(buf[:m])
			if _, werr := s.active.WriteAt(buf[:m], off+n); werr != nil {
				s.cut(start)
				return werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			s.cut(start)
			return fmt.Errorf("read after %d bytes: %w", n, err)
		}
	}
	if n < size {
		s.cut(start)
		return fmt.Errorf("reader gave %d bytes, %d announced: %w", n, size, io.ErrUnexpectedEOF)
	}
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], crc.Sum32())
	if _, err := s.active.WriteAt(c[:], off+size); err != nil {
		s.cut(start)
		return err
	}
	return nil
}

// cut drops a record that could not be written whole.
func (s *Store) cut(start int64) {
	s.active.Truncate(start)
	s.actEnd = start
	s.filled = min(s.filled, start)
}

// rotate begins the next volume; the previous one stays dirty until the
// next flush.
func (s *Store) rotate() error {
	id := s.actID + 1
	f, err := os.OpenFile(s.volPath(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	old := s.active
	s.active, s.actID, s.actEnd = f, id, 0
	// The filler stops at maxVolume, where this volume's records ended:
	// only the active volume ever ends in zeros.
	s.filled, s.fillOff = 0, false
	s.rmu.Lock()
	if _, ok := s.reads[id-1]; !ok {
		s.reads[id-1] = old
	} else {
		old.Close()
	}
	s.rmu.Unlock()
	return objstore.SyncDir(filepath.Join(s.dir, "volumes"))
}

// Sync flushes every record appended so far and publishes their end, which
// makes them visible to other processes (objstore.Batcher).
func (s *Store) Sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.flushLocked(ctx)
}

func (s *Store) flushLocked(ctx context.Context) error {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = make(map[uint32]int64)
	s.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	restore := func() {
		s.mu.Lock()
		for v, e := range dirty {
			if e > s.dirty[v] {
				s.dirty[v] = e
			}
		}
		s.mu.Unlock()
	}
	// Oldest volume first: a record is durable only when every earlier
	// one is.
	vols := make([]uint32, 0, len(dirty))
	for v := range dirty {
		vols = append(vols, v)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i] < vols[j] })
	for _, v := range vols {
		f, err := s.file(v)
		if err != nil {
			restore()
			return err
		}
		// The ordinary system call, which lets the runtime hand this
		// goroutine's P to other goroutines while the disk flushes: they
		// gather the next group commit meanwhile. (A raw call that kept
		// the P, fa0bf85, shortened an SMTP writer's wait under
		// SCHED_OTHER, but cut the batches of cairn import to a third
		// and its rate by a fifth; under serve's SCHED_BATCH it gains
		// nothing. BENCHMARKS.md, sixteenth stop.)
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			restore()
			return fmt.Errorf("objstore/volume: flush %s: %w", volName(v), err)
		}
	}
	s.mu.Lock()
	newest, end := uint32(0), int64(0)
	for v, e := range dirty {
		if e > s.durable[v] {
			s.durable[v] = e
		}
		if v >= newest {
			newest, end = v, s.durable[v]
		}
	}
	backlog := len(s.pending)
	if s.fillKick != nil && !s.fillOff && s.filled-s.actEnd < s.ahead/2 {
		if s.filled > 0 && s.ahead < fillMax {
			s.ahead *= 2 // the appends ran through half of it: fill further ahead
		}
		select {
		case s.fillKick <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
	if err := publishMark(s.mark, newest, end); err != nil {
		// The records are durable, but another process cannot see them
		// until the mark moves: fail as a flush does, and publish again
		// at the next one.
		restore()
		return fmt.Errorf("objstore/volume: publish the flushed end: %w", err)
	}
	switch {
	case backlog >= maxPending:
		// The map has fallen far behind (its writes fail, or cannot keep
		// up): catch up here, and let a persistent failure surface.
		if err := s.writeMap(ctx); err != nil {
			return err
		}
	case backlog >= mapBatch:
		select {
		case s.mapKick <- struct{}{}:
		default:
		}
	}
	return nil
}

// file returns a handle to read (or flush) volume id.
func (s *Store) file(id uint32) (*os.File, error) {
	s.mu.Lock()
	if s.active != nil && id == s.actID {
		f := s.active
		s.mu.Unlock()
		return f, nil
	}
	s.mu.Unlock()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if f := s.reads[id]; f != nil {
		return f, nil
	}
	f, err := os.Open(s.volPath(id))
	if err != nil {
		return nil, err
	}
	s.reads[id] = f
	return f, nil
}

type section struct {
	*io.SectionReader
}

func (section) Close() error { return nil }

// Get opens the object for reading; ErrNotExist if it is missing.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	r, err := s.OpenReaderAt(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("objstore/volume: get %s: %w", key, unwrapOp(err))
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(r, 0, r.Size()), r}, nil
}

func unwrapOp(err error) error {
	if errors.Is(err, objstore.ErrNotExist) {
		return objstore.ErrNotExist
	}
	return err
}

type readerAt struct {
	*io.SectionReader
}

func (r readerAt) Close() error { return nil }

// OpenReaderAt opens key for ranged reads (objstore.RangeReader).
func (s *Store) OpenReaderAt(ctx context.Context, key string) (objstore.ReaderAt, error) {
	if err := objstore.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l, err := s.lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	f, err := s.file(l.vol)
	if err != nil {
		return nil, err
	}
	return readerAt{io.NewSectionReader(f, l.off, l.size)}, nil
}

// Stat returns the object's Info, or ErrNotExist.
func (s *Store) Stat(ctx context.Context, key string) (objstore.Info, error) {
	if err := objstore.ValidKey(key); err != nil {
		return objstore.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return objstore.Info{}, err
	}
	l, err := s.lookup(ctx, key)
	if err != nil {
		return objstore.Info{}, fmt.Errorf("objstore/volume: stat %s: %w", key, unwrapOp(err))
	}
	return objstore.Info{Key: key, Size: l.size, ModTime: time.Unix(0, l.mtime)}, nil
}

// Delete destroys the object: its bytes are punched to zeros in the volume
// (not merely forgotten: erasure relies on it), a deletion record is
// appended, and both are flushed before Delete returns.
//
// The steps are ordered so that, wherever the process dies, every object
// still listed is whole and every deletion that removed a listing is
// finished (TestKill9 kills it mid-way):
//  1. the deletion record is appended and flushed (a rescan of the volumes
//     knows the key is gone; the map still lists the object, whole);
//  2. one map transaction removes the object's row and records the punch
//     to make;
//  3. the bytes are punched to zeros and flushed;
//  4. the recorded punch is dropped.
//
// Open makes the punches that a death between 2 and 4 left recorded.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.readOnly {
		return ErrReadOnly
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	// Flush and map first: the record being zeroed must lie before the
	// map's mark, where Open does not check data CRCs (a zeroed record
	// fails its own), and its row must be in the map for step 2 to remove.
	if err := s.flushLocked(ctx); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	if err := s.writeMap(ctx); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	l, err := s.lookup(ctx, key)
	if err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, unwrapOp(err))
	}
	// 1.
	s.mu.Lock()
	if s.active == nil {
		s.mu.Unlock()
		return errors.New("objstore/volume: store is closed")
	}
	start := s.actEnd
	h := header(key, flagDelete, 0, time.Now().UnixNano())
	rec := append(h, 0, 0, 0, 0) // CRC-32C of no data is 0
	if _, err := s.active.WriteAt(rec, start); err != nil {
		s.cut(start)
		s.mu.Unlock()
		return err
	}
	s.actEnd = start + int64(len(rec))
	s.dirty[s.actID] = s.actEnd
	s.mu.Unlock()
	if err := s.flushLocked(ctx); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	if err := s.writeMap(ctx); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	// 2.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM objects WHERE key = ?`, key); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	if _, err := tx.Exec(`INSERT OR REPLACE INTO punches(vol, off, size) VALUES(?, ?, ?)`, l.vol, l.off, l.size); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	// A location looked up ahead must not outlive the row: drop it, and
	// make a Prefetch whose query may have seen the row keep nothing.
	s.mu.Lock()
	delete(s.hints, key)
	s.deleted++
	s.mu.Unlock()
	// 3. and 4.
	if err := s.punch(l); err != nil {
		return fmt.Errorf("objstore/volume: delete %s: %w", key, err)
	}
	return nil
}

// punch zeroes l's bytes, flushes the volume, and drops the recorded punch.
func (s *Store) punch(l loc) error {
	f, err := s.file(l.vol)
	if err != nil {
		return err
	}
	if err := zero(f, l.off, l.size); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	_, err = s.db.Exec(`DELETE FROM punches WHERE vol = ? AND off = ?`, l.vol, l.off)
	return err
}

// finishPunches makes the punches recorded by a Delete that did not finish.
func (s *Store) finishPunches() error {
	rows, err := s.db.Query(`SELECT vol, off, size FROM punches`)
	if err != nil {
		return err
	}
	var todo []loc
	for rows.Next() {
		var l loc
		if err := rows.Scan(&l.vol, &l.off, &l.size); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, l := range todo {
		if err := s.punch(l); err != nil {
			return fmt.Errorf("objstore/volume: finish the deletion at %s offset %d: %w", volName(l.vol), l.off, err)
		}
	}
	return nil
}

// zero makes [off, off+n) read as zeros: punched where the filesystem can
// (freeing the blocks), written as zeros otherwise.
func zero(f *os.File, off, n int64) error {
	if n == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	if err == nil {
		return nil
	}
	z := make([]byte, min(n, chunk))
	for done := int64(0); done < n; {
		m := min(int64(len(z)), n-done)
		if _, err := f.WriteAt(z[:m], off+done); err != nil {
			return err
		}
		done += m
	}
	return nil
}

// List calls fn for every object whose key starts with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.Info) error) error {
	if err := objstore.ValidPrefix(prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The records not in map.db yet (this process's, or in a read-only
	// store the writer's flushed tail), merged with map.db in key order.
	s.mu.Lock()
	var extra []objstore.Info
	for k, l := range s.pending {
		if strings.HasPrefix(k, prefix) {
			extra = append(extra, objstore.Info{Key: k, Size: l.size, ModTime: time.Unix(0, l.mtime)})
		}
	}
	s.mu.Unlock()
	if s.readOnly {
		tail, err := s.tailList(prefix)
		if err != nil {
			return fmt.Errorf("objstore/volume: list %s: %w", prefix, err)
		}
		extra = append(extra, tail...)
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Key < extra[j].Key })
	// Page through map.db without holding a read transaction open while fn
	// runs (fn may write to the store), merging this process's records.
	after, first := prefix, true
	for {
		infos, err := s.page(ctx, prefix, after, first)
		if err != nil {
			return fmt.Errorf("objstore/volume: list %s: %w", prefix, err)
		}
		for _, i := range infos {
			for len(extra) > 0 && extra[0].Key < i.Key {
				if err := fn(extra[0]); err != nil {
					return err
				}
				extra = extra[1:]
			}
			if len(extra) > 0 && extra[0].Key == i.Key {
				extra = extra[1:]
			}
			if err := fn(i); err != nil {
				return err
			}
		}
		if len(infos) < listPage {
			break
		}
		after, first = infos[len(infos)-1].Key, false
	}
	for _, i := range extra {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// listPage is how many map rows List reads at once.
const listPage = 1024

// page returns up to listPage objects under prefix whose keys follow after
// (or start at it, for the first page), in key order.
func (s *Store) page(ctx context.Context, prefix, after string, first bool) ([]objstore.Info, error) {
	op := ">"
	if first {
		op = ">="
	}
	q := `SELECT key, size, mtime FROM objects WHERE key ` + op + ` ?`
	args := []any{after}
	if prefix != "" {
		q += ` AND key < ?`
		args = append(args, prefix+"\xff")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY key LIMIT `+fmt.Sprint(listPage), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []objstore.Info
	for rows.Next() {
		var i objstore.Info
		var mt int64
		if err := rows.Scan(&i.Key, &i.Size, &mt); err != nil {
			return nil, err
		}
		i.ModTime = time.Unix(0, mt)
		out = append(out, i)
	}
	return out, rows.Err()
}

// Locate returns the volume file and byte range holding key's data. For
// tests and forensic tools that must find an object's bytes on disk.
func (s *Store) Locate(ctx context.Context, key string) (path string, off, size int64, err error) {
	l, err := s.lookup(ctx, key)
	if err != nil {
		return "", 0, 0, err
	}
	return s.volPath(l.vol), l.off, l.size, nil
}

// Zero-filling ahead of the end. fdatasync of records appended past a
// file's end also writes the file's new size and block allocation (to the
// journal, or on an ext4 without one, as this machine's is, to the inode
// and allocation bitmaps); over blocks already written and flushed it
// writes the data alone. Here (ext4), a 40 KB append and its fdatasync
// took 190–240 µs and 88–110 µs of CPU, the same over zeros flushed before
// 111 µs and 60 µs. So a goroutine keeps zeros written and flushed ahead of
// the active volume's end, as PostgreSQL zero-fills its WAL segments for the
// same reason. Nothing depends on it: a record past the zeros is appended as
// before. The zeros have no record magic, so recover reads them as the end
// of the last volume and cuts them, and Close cuts them itself. The filler
// stops at maxVolume, so a volume is rotated with none left in it.
const (
	fillMin   = 256 << 10 // the first fill ahead; doubled while appends run through it
	fillMax   = 8 << 20
	fillPiece = 256 << 10 // written per hold of mu
)

var zeros [fillPiece]byte

// fillWrite writes the filler's zeros (a variable for fault injection).
var fillWrite = (*os.File).WriteAt

// fillPays says whether zeros ahead spare the flushes any work on dir's file
// system: not on copy-on-write ones (btrfs, ZFS), which allocate anew at
// every write, nor in memory (tmpfs, ramfs), where a flush costs nothing.
func fillPays(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return true
	}
	switch uint32(st.Type) {
	case unix.BTRFS_SUPER_MAGIC, zfsSuperMagic, unix.TMPFS_MAGIC, unix.RAMFS_MAGIC:
		return false
	}
	return true
}

const zfsSuperMagic = 0x2fc12fc1 // OpenZFS's statfs f_type; not in x/sys

func (s *Store) fillLoop() {
	defer close(s.fillDone)
	for {
		select {
		case <-s.fillStop:
			return
		case <-s.fillKick:
		}
		s.fill()
	}
}

// fill writes zeros from the end of the records (or of earlier zeros) to
// ahead past it, a piece at a time under mu, then flushes them. A write
// error (a full disk) stops it for this volume: records then append as
// they did without it.
func (s *Store) fill() {
	var f *os.File
	for {
		select {
		case <-s.fillStop:
			return
		default:
		}
		s.mu.Lock()
		if s.active == nil || s.fillOff || (f != nil && f != s.active) {
			s.mu.Unlock()
			break
		}
		f = s.active
		from := max(s.filled, s.actEnd)
		to := min(s.actEnd+s.ahead, s.maxVolume)
		if from >= to {
			s.mu.Unlock()
			break
		}
		n := min(int64(fillPiece), to-from)
		if _, err := fillWrite(f, zeros[:n], from); err != nil {
			s.fillOff = true
			s.mu.Unlock()
			return
		}
		s.filled = from + n
		s.mu.Unlock()
	}
	if f != nil {
		// The file's new size and blocks; an error leaves the zeros to
		// the next flush of records (os.File.Sync is safe against the
		// concurrent Close of a rotated volume).
		f.Sync()
	}
}
