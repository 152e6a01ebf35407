// Package archive is the single write path and read path of Cairn.
//
// Store.Archive takes one delivery (an ingest.Envelope and the raw bytes)
// and returns a receipt only once the delivery is durable (invariant 1):
//
//  1. parse (never fatal), hash, and look the bytes up: known bytes only
//     record a new delivery (deduplication);
//  2. new bytes are compressed and encrypted under a fresh file key
//     (archive/payload), and two objects are written, write-once: the key
//     object (the file key and commitment salt, wrapped under the KEK) and
//     then the message object, both under keyed-hash names;
//  3. the ledger entry joins a group commit: one signed segment object per
//     batch of concurrent deliveries, then one index transaction;
//  4. only then does Archive return.
//
// A crash before step 3 completes leaves, at worst, unreferenced objects
// (reported by verify as orphans), never an entry without its objects. An
// index that lags the ledger (a crash between the segment write and the
// index commit) catches up from the ledger when the store opens.
//
// The data directory holds the index and a lock file; one process at a time
// writes a given ledger.
package archive
