package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// The map is written behind the flushes: every mapEvery while objects come
// in, at once when mapBatch rows wait, and by the flush itself when
// maxPending do (a map that keeps failing then fails the flushes, rather
// than the writer holding ever more rows in memory).
//
// Object names are keyed hashes, so every row lands on a random leaf of
// map.db's B-tree, and a transaction writes (and its checkpoint writes
// again) about one page for each leaf it touches: on a grown map, nearly
// one page a row unless a transaction carries many rows per leaf. So the
// map is written in large transactions, its rows in key order. Measured
// with bench/smtp's load (smtp-source, 60,000 messages a run) on an
// archive of 300,000 messages, 3 alternated pairs: every 500 ms and 8,192
// rows, serve wrote 68-70 KB a message (by /proc/PID/io), spent 254-284 µs
// of CPU a message and took 4,072-4,355 msgs/s; every 2 s and 32,768 rows
// in key order, 38 KB, 244-248 µs and 4,570-4,669 msgs/s. The price is a
// longer unmapped tail: Open scans it after a crash (a restart after kill
// -9 with ~10,000 rows unmapped listened in 0.32 s against 0.20), and
// read-only stores read its headers (well under maxTail).
var (
	mapEvery   = 2 * time.Second
	mapBatch   = 32768
	maxPending = 1 << 17
)

// mapLoop writes the flushed objects' rows into map.db, every interval and
// when kicked, until Close.
func (s *Store) mapLoop(every time.Duration) {
	defer close(s.mapDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.mapStop:
			return
		case <-t.C:
		case <-s.mapKick:
		}
		// A failure leaves the rows pending: the next round (or a flush
		// over maxPending) tries again, and Open rebuilds them from the
		// volumes if the process dies first.
		s.writeMap(context.Background())
	}
}

// writeMap writes into map.db the rows of the flushed objects not yet in
// it, and moves each volume's mark to where its flushed records end: the
// records up to a mark are all in the map (Open reads only past it).
func (s *Store) writeMap(ctx context.Context) error {
	s.mapMu.Lock()
	defer s.mapMu.Unlock()
	s.mu.Lock()
	type row struct {
		key string
		loc loc
	}
	var rows []row
	for k, l := range s.pending {
		if l.off+l.size+4 <= s.durable[l.vol] {
			rows = append(rows, row{k, l})
		}
	}
	marks := make(map[uint32]int64, len(s.durable))
	same := len(s.durable) == len(s.mapped)
	for v, e := range s.durable {
		marks[v] = e
		same = same && s.mapped[v] == e
	}
	s.mu.Unlock()
	if len(rows) == 0 && same {
		return nil // nothing flushed since the last write: an idle store writes nothing
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("objstore/volume: map: %w", err)
	}
	defer tx.Rollback()
	st := tx.StmtContext(ctx, s.qInsert)
	defer st.Close()
	// In key order: consecutive rows then share leaves, which stay in the
	// page cache between them.
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.key, b.key) })
	for _, r := range rows {
		l := r.loc
		if _, err := st.Exec(r.key, l.vol, l.off, l.size, l.mtime); err != nil {
			return fmt.Errorf("objstore/volume: map: %w", err)
		}
	}
	sst := tx.StmtContext(ctx, s.qScanned)
	defer sst.Close()
	for v, e := range marks {
		if _, err := sst.Exec(v, e); err != nil {
			return fmt.Errorf("objstore/volume: map: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("objstore/volume: map: %w", err)
	}
	s.mapped = marks
	s.mu.Lock()
	for _, r := range rows {
		if cur, ok := s.pending[r.key]; ok && cur == r.loc {
			delete(s.pending, r.key)
		}
	}
	s.mu.Unlock()
	return nil
}

// The durable file holds the end of the flushed records: volume u32,
// offset i64, and the CRC-32C of the two (little-endian), rewritten in
// place after each flush. It is not itself flushed: a reader that sees a
// mark knows the records before it are durable, and after a crash Open
// writes it again before any new record.
const markSize = 4 + 8 + 4

func publishMark(f *os.File, vol uint32, end int64) error {
	var b [markSize]byte
	binary.LittleEndian.PutUint32(b[0:], vol)
	binary.LittleEndian.PutUint64(b[4:], uint64(end))
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(b[:12], castagnoli))
	_, err := f.WriteAt(b[:], 0)
	return err
}

// readMark returns the published end; ok is false when there is none (no
// writer has published one) or it is being rewritten.
func readMark(dir string) (vol uint32, end int64, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "durable"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	if len(b) < markSize || crc32.Checksum(b[:12], castagnoli) != binary.LittleEndian.Uint32(b[12:]) {
		return 0, 0, false, nil
	}
	return binary.LittleEndian.Uint32(b[0:]), int64(binary.LittleEndian.Uint64(b[4:])), true, nil
}

// maxTail bounds a read-only store's tail view: past it, the view starts
// again from the map's current marks (the writer has mapped most of it by
// then).
const maxTail = 1 << 16

// readTail brings a read-only store's view of the writer's flushed tail up
// to the published mark: the records past the map's marks, headers only
// (everything before the mark is flushed whole). A record that is not
// whole there is damage: it is kept in tailErr for the lookups the view
// cannot answer. Called with tailMu held.
func (s *Store) readTail() error {
	vol, end, ok, err := readMark(s.dir)
	if err != nil || !ok {
		return err
	}
	if s.tailPos == nil || len(s.tail) > maxTail {
		marks, err := s.marks()
		if err != nil {
			return err
		}
		s.tail, s.tailPos = map[string]loc{}, marks
	}
	ids, err := s.volumes()
	if err != nil {
		return err
	}
	var damage error
	defer func() { s.tailErr = damage }()
	for _, id := range ids {
		if id > vol {
			break
		}
		f, err := s.file(id)
		if err != nil {
			return err
		}
		limit := end
		if id < vol {
			st, err := f.Stat()
			if err != nil {
				return err
			}
			limit = st.Size()
		}
		off := s.tailPos[id]
		for off < limit {
			key, flags, dlen, mtime, hlen, ok := readHeader(f, off, limit)
			if !ok {
				// Before the mark every record is whole: the volume is
				// damaged. What was read before stays found; the rest
				// is an error (an object past the damage may exist),
				// and the next read tries from here again.
				damage = fmt.Errorf("volume %s: no whole record at offset %d, before the flushed end %d: the volume is damaged", volName(id), off, limit)
				break
			}
			if flags&flagDelete != 0 {
				delete(s.tail, key)
			} else {
				s.tail[key] = loc{vol: id, off: off + hlen, size: int64(dlen), mtime: mtime}
			}
			off += hlen + int64(dlen) + 4
		}
		s.tailPos[id] = off
	}
	return nil
}

// tailLookup finds key among the writer's flushed records not yet in the
// map (read-only stores).
func (s *Store) tailLookup(key string) (loc, bool, error) {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if err := s.readTail(); err != nil {
		return loc{}, false, err
	}
	l, ok := s.tail[key]
	if !ok && s.tailErr != nil {
		return loc{}, false, s.tailErr
	}
	return l, ok, nil
}

// tailList returns the writer's flushed records under prefix not yet in
// the map (read-only stores), unsorted.
func (s *Store) tailList(prefix string) ([]objstore.Info, error) {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	if err := s.readTail(); err != nil {
		return nil, err
	}
	if s.tailErr != nil {
		return nil, s.tailErr
	}
	var out []objstore.Info
	for k, l := range s.tail {
		if strings.HasPrefix(k, prefix) {
			out = append(out, objstore.Info{Key: k, Size: l.size, ModTime: time.Unix(0, l.mtime)})
		}
	}
	return out, nil
}
