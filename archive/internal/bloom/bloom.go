// Package bloom is a Bloom filter that lets the writer skip point queries
// whose answer is "not there": the existence checks of the ingest path
// (is this object name taken, are these bytes archived already) cost a
// SQLite read transaction each, and almost always find nothing.
//
// A Filter answers Absent only when it is certain: it never claims a key
// that was added is absent. Its owner loads it from the database in the
// background and, until Ready, it claims nothing, so the caller queries as
// before. Its size is fixed when it is made and bounded (MaxBits), so memory
// stays flat however large the archive grows; past its capacity it only
// grows less useful (more "maybe" answers), never wrong.
//
// Only the one process that writes the database may use a Filter for it:
// keys another process adds never reach it.
package bloom

import (
	"context"
	"database/sql"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

const (
	// MinBits and MaxBits bound a filter's size: 2 MiB and 8 MiB.
	MinBits = 1 << 24
	MaxBits = 1 << 26
	// bitsPerKey gives about 1% false positives at k = 7.
	bitsPerKey = 10
	probes     = 7
)

// Filter is safe for concurrent use.
type Filter struct {
	words []atomic.Uint64
	mask  uint64 // number of bits - 1 (a power of two)
	seed  maphash.Seed
	ready atomic.Bool
}

// New makes a filter sized for about expected keys (within MinBits and
// MaxBits).
func New(expected int) *Filter {
	n := uint64(max(expected, 0)) * bitsPerKey
	size := uint64(MinBits)
	if n > size {
		size = 1 << bits.Len64(n-1)
	}
	return withBits(min(size, MaxBits))
}

// withBits makes a filter of size bits, a power of two of at least 64.
func withBits(size uint64) *Filter {
	return &Filter{words: make([]atomic.Uint64, size/64), mask: size - 1, seed: maphash.MakeSeed()}
}

// Add records key. Call it before the key can be found by the query the
// filter stands in for.
func (f *Filter) Add(key string) {
	h1, h2 := f.hash(key)
	for i := uint64(0); i < probes; i++ {
		b := (h1 + i*h2) & f.mask
		f.words[b/64].Or(1 << (b % 64))
	}
}

// Absent reports whether key was certainly never added. Before Ready it is
// always false.
func (f *Filter) Absent(key string) bool {
	if f == nil || !f.ready.Load() {
		return false
	}
	h1, h2 := f.hash(key)
	for i := uint64(0); i < probes; i++ {
		b := (h1 + i*h2) & f.mask
		if f.words[b/64].Load()&(1<<(b%64)) == 0 {
			return true
		}
	}
	return false
}

// Load adds every value of query's one column from db, then marks the
// filter Ready. If the query fails or ctx ends first, the filter stays
// unready (harmless: it claims nothing).
func (f *Filter) Load(ctx context.Context, db *sql.DB, query string) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return
	}
	defer rows.Close()
	var k string
	for rows.Next() {
		if rows.Scan(&k) != nil {
			return
		}
		f.Add(k)
	}
	if rows.Err() == nil {
		f.Ready()
	}
}

// Ready marks the filter loaded: every key the database held when the
// filter was made has been added (and every key since, by the writer).
func (f *Filter) Ready() { f.ready.Store(true) }

// hash gives the two halves of double hashing (Kirsch and Mitzenmacher);
// h2 is odd, so the probes of one key never repeat a bit position early.
func (f *Filter) hash(key string) (h1, h2 uint64) {
	h := maphash.String(f.seed, key)
	return h, (h>>32|h<<32)*0x9e3779b97f4a7c15 | 1
}
