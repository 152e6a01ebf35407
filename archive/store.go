package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cairn-archive/cairn/archive/index"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/payload"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/ingest"
)

// Options configure a Store.
type Options struct {
	// Dir holds the index database and the lock file.
	Dir string
	// Objects is the object store for messages, keys, segments, checkpoints.
	Objects objstore.Store
	// Keys is the opened keyring; Signing the ledger signing key.
	Keys    *crypto.Keyring
	Signing *crypto.SigningKey
	// LogID names this node's ledger in object keys (DESIGN.md: several
	// ingest nodes share one bucket, each with its own ledger).
	LogID string
	// MaxMessageSize refuses larger messages (ingest.ErrRefused). Default 50 MiB.
	MaxMessageSize int64
	// Compression of new message objects; default payload.Fast.
	Compression payload.Compression
	// CheckpointEvery and CheckpointInterval: a signed checkpoint is
	// published after this many new entries or this much time with new
	// entries, whichever comes first. Defaults 10,000 and 10 s.
	CheckpointEvery    uint64
	CheckpointInterval time.Duration
	// OnCheckpoint, if set, receives each published checkpoint (the audit
	// log forwards it to the SIEMs).
	OnCheckpoint func(c ledger.Checkpoint, signed []byte)
	// MaxBatch bounds the deliveries in one group commit. Default 1024.
	MaxBatch int
	// CommitWait bounds how long a group commit waits for writers that
	// announced a message (Announce) before it commits without them.
	// Default 1 ms; negative: never wait.
	CommitWait time.Duration
	// IndexWait bounds how long the index stage gathers, in memory, the
	// group commits that follow one whose writers were answered before it
	// was indexed (ingest.AckWhenDurable, under load), to write them all in
	// one transaction; it stops gathering 5 ms after the last one, when
	// nothing more is on its way. Default 100 ms: BenchmarkCommit measures
	// 43–47 µs of index work a message in transactions of 110 messages (20
	// ms of a 5,500 messages/s load), 38–40 µs in 275 and 37–39 µs in 550:
	// a transaction rewrites the last pages of ~20 B-trees, and the pages
	// its random keys land on (the SHA-256 index), once for all its
	// messages. Negative: never gather.
	IndexWait time.Duration
	// Logger for per-message lines; default slog.Default().
	Logger *slog.Logger
	// ReadOnly opens without the writer lock and without a ledger writer:
	// for verify, cat and search while another process archives.
	ReadOnly bool
	// Holds, if set, is asked before every disposal and erasure.
	Holds HoldChecker
	// OnIndexed, if set, is called after each group commit is indexed,
	// with the last entry's seq: new messages and deliveries are then
	// visible to index readers (retention sets their S3 Object Locks). It
	// runs on the commit path: it must return at once (signal a worker).
	OnIndexed func(last uint64)
	// OwnObjects hands Objects over: Close closes it too (when it has a
	// Close method), after the index. A volume store then flushes its map
	// and ends its volume with its last record.
	OwnObjects bool
}

// Store is the archive. Archive is safe for concurrent use.
type Store struct {
	opts Options
	objs objstore.Store
	keys *crypto.Keyring
	// nameMACs and tokenMACs hold HMACs under the name and search keys:
	// object names and blind tokens take one or more a message.
	nameMACs, tokenMACs *crypto.MACPool
	index               *index.Index
	log                 *ledger.Log
	lock                *os.File
	lg                  *slog.Logger

	locks keyLocks

	queue   chan *pending
	stop    chan struct{}
	stopped chan struct{}

	mu     sync.Mutex
	closed bool

	commitMu sync.Mutex  // one writer of the ledger and index at a time
	behind   atomic.Bool // an index commit failed after its segment was written
	// announced counts the messages announced (Announce) and not yet
	// queued or abandoned: the group commit waits for them. announcements
	// counts every announcement made, arrived every announced message
	// queued or abandoned (about to be queued, for enqueue): fill tells
	// from them when those on their way as a batch began have come.
	announced     atomic.Int64
	announcements atomic.Int64
	arrived       atomic.Int64

	// textGen counts the index writes that may have added full-text
	// tokens (batches with text, catch-ups; 1 at Open for what earlier
	// runs left); flushedGen is the textGen that the last complete flush
	// covered. FlushSearch is free while they are equal, as it is for
	// most IMAP commands and API calls that ask for it.
	textGen, flushedGen atomic.Uint64

	ckptMu   sync.Mutex
	ckptSize atomic.Uint64 // size of the newest published checkpoint
	ckptKick chan struct{}
	ckptDone chan struct{}
	ftsKick  chan struct{}
	ftsDone  chan struct{}

	indexQ    chan *indexed // from the segment stage to the index stage
	indexDone chan struct{}
	indexWG   sync.WaitGroup // batches sent to indexQ and not yet indexed
	indexOpen atomic.Bool    // the index stage gathers or writes batches answered early
	indexKick chan struct{}  // the segment stage has nothing more on its way

	stats commitStats
}

// ErrLocked means another process holds the archive's writer lock.
var ErrLocked = errors.New("archive: another cairn process is writing this archive")

// ErrClosed is returned by Archive after Close.
var ErrClosed = errors.New("archive: store is closed")

// Open opens the archive: it takes the writer lock, opens the index and the
// ledger, and replays into the index any entries committed after the
// index's last transaction.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = 50 << 20
	}
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = 10000
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = 10 * time.Second
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 1024
	}
	if opts.CommitWait == 0 {
		opts.CommitWait = time.Millisecond
	}
	if opts.IndexWait == 0 {
		opts.IndexWait = 100 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LogID == "" || objstore.ValidKey(opts.LogID) != nil {
		return nil, fmt.Errorf("archive: log id %q: want lower-case letters, digits, '.', '_' or '-'", opts.LogID)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	s := &Store{opts: opts, objs: opts.Objects, keys: opts.Keys, lg: opts.Logger,
		nameMACs: crypto.NewMACPool(opts.Keys.NameKey()), tokenMACs: crypto.NewMACPool(opts.Keys.SearchKey())}
	s.textGen.Store(1) // what earlier runs committed: the first flush looks
	if !opts.ReadOnly {
		lock, err := lockFile(filepath.Join(opts.Dir, "lock"))
		if err != nil {
			return nil, err
		}
		s.lock = lock
	}
	ix, err := index.Open(filepath.Join(opts.Dir, "index.db"), opts.Keys.IndexKey())
	if err != nil {
		s.unlock()
		return nil, err
	}
	s.index = ix
	if opts.ReadOnly {
		return s, nil
	}
	if err := s.openLedger(ctx); err != nil {
		ix.Close()
		s.unlock()
		return nil, err
	}
	s.ckptSize.Store(s.lastCheckpointSize(ctx))
	// Before the first commit of this process (the filter must see them all).
	ix.FilterSHAs()
	s.queue = make(chan *pending, opts.MaxBatch)
	s.stop = make(chan struct{})
	s.stopped = make(chan struct{})
	s.ckptKick = make(chan struct{}, 1)
	s.ckptDone = make(chan struct{})
	s.ftsKick = make(chan struct{}, 1)
	s.ftsDone = make(chan struct{})
	// Room for the group commits an index transaction waits for
	// (IndexWait) and for those made while it commits.
	s.indexQ = make(chan *indexed, 64)
	s.indexDone = make(chan struct{})
	s.indexKick = make(chan struct{}, 1)
	go s.commitLoop()
	go s.indexLoop()
	if err := s.FinishDisposals(ctx); err != nil {
		s.lg.Error("interrupted disposals not finished; retried at the next start", "err", err)
	}
	go s.checkpointLoop()
	go s.ftsLoop()
	return s, nil
}

func (s *Store) openLedger(ctx context.Context) error {
	st, err := s.index.LedgerState()
	if err != nil {
		return err
	}
	r := newReplayer(s)
	lg, err := ledger.Open(ctx, s.objs, s.opts.LogID, s.opts.Signing.Signer, s.opts.Signing.Verifier, st, r.replay)
	if err != nil {
		return fmt.Errorf("archive: open ledger: %w", err)
	}
	if err := r.flush(ctx, lg.State()); err != nil {
		return err
	}
	if r.count > 0 {
		s.lg.Info("index caught up with the ledger", "entries", r.count)
	}
	s.log = lg
	return nil
}

func (s *Store) lastCheckpointSize(ctx context.Context) uint64 {
	var last uint64
	s.objs.List(ctx, "checkpoints/"+s.opts.LogID+"/", func(i objstore.Info) error {
		var n uint64
		if _, err := fmt.Sscanf(filepath.Base(i.Key), "%020d.ckpt", &n); err == nil && n > last {
			last = n
		}
		return nil
	})
	return last
}

func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("archive: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		return nil, fmt.Errorf("%w (lock %s held by pid %s); stop it or use its API", ErrLocked, path, bytes.TrimSpace(pid))
	}
	f.Truncate(0)
	f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return f, nil
}

func (s *Store) unlock() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// Index exposes the index to readers (IMAP view, search, verify).
func (s *Store) Index() *index.Index { return s.index }

// Objects exposes the object store to readers.
func (s *Store) Objects() objstore.Store { return s.objs }

// Keys exposes the keyring.
func (s *Store) Keys() *crypto.Keyring { return s.keys }

// LogID is this store's ledger id.
func (s *Store) LogID() string { return s.opts.LogID }

// Close stops accepting deliveries, finishes the commits in flight,
// publishes a final checkpoint and closes the index.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var err error
	if s.queue != nil {
		close(s.stop)
		<-s.stopped
		<-s.indexDone
		<-s.ckptDone
		<-s.ftsDone
		if _, _, e := s.publishCheckpoint(context.Background()); e != nil {
			err = e
		}
	}
	if e := s.index.Close(); e != nil && err == nil {
		err = e
	}
	s.unlock()
	if e := s.closeObjects(); e != nil && err == nil {
		err = e
	}
	return err
}

// closeObjects closes the object store if the archive owns it.
func (s *Store) closeObjects() error {
	if c, ok := s.objs.(interface{ Close() error }); ok && s.opts.OwnObjects {
		return c.Close()
	}
	return nil
}

// pending is one delivery waiting for its group commit.
type pending struct {
	entry    *ledger.Entry
	message  *index.MessageRow // nil for a delivery of known bytes
	delivery index.DeliveryRow
	tokens   string
	receipt  ingest.Receipt
	done     chan error    // the outcome, once indexed (or failed)
	durable  chan struct{} // closed if the writer is answered once durable (ingest.AckWhenDurable)
	unsynced bool          // objects written with PutUnsynced: Sync before the segment
	// release unlocks the writer's delivery key and content hash: once the
	// index lists the delivery (or the commit failed), so that a lookup
	// for the same key or bytes finds it.
	release []func()

	gone       *index.Gone // a tombstone's effect on the index
	noDelivery bool        // tombstones and events record no delivery
}

// Archive implements ingest.Archiver.
func (s *Store) Archive(ctx context.Context, env *ingest.Envelope, raw []byte) (ingest.Receipt, error) {
	var rc ingest.Receipt
	if err := env.Validate(); err != nil {
		return rc, fmt.Errorf("archive: %w", err)
	}
	if int64(len(raw)) > s.opts.MaxMessageSize {
		return rc, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ingest.ErrRefused, len(raw), s.opts.MaxMessageSize)
	}
	s.mu.Lock()
	closed := s.closed || s.queue == nil
	s.mu.Unlock()
	if closed {
		return rc, ErrClosed
	}
	rc.SHA256 = sha256.Sum256(raw)

	// One delivery key and one content hash in flight at a time, so that
	// the index lookups below stay true until the commit. Once the pending
	// delivery is queued, the commit releases them, after its index
	// transaction (the writer may be answered before it).
	var held []func()
	queued := false
	defer func() {
		if !queued {
			release(held)
		}
	}()
	if env.DeliveryKey != "" {
		held = append(held, s.locks.lock("d:"+env.DeliveryKey))
		if err := s.ensureCaughtUp(ctx); err != nil {
			return rc, err
		}
		seq, msg, err := s.index.DeliveryByKey(ctx, env.DeliveryKey)
		if err == nil {
			m, err := s.index.Message(ctx, msg)
			if err != nil {
				return rc, err
			}
			if m.State != index.StateActive {
				// Archived, then disposed or erased: re-importing the same
				// source must not bring it back.
				rc.Seq, rc.MessageSeq, rc.Replayed, rc.Duplicate = seq, msg, true, true
				return rc, nil
			}
			if m.SHA256 != rc.SHA256 {
				return rc, fmt.Errorf("%w: delivery key %q was archived with other bytes (ledger entry %d)", ingest.ErrRefused, env.DeliveryKey, seq)
			}
			rc.Seq, rc.MessageSeq, rc.Replayed, rc.Duplicate = seq, msg, true, true
			return rc, nil
		} else if !errors.Is(err, index.ErrNotFound) {
			return rc, err
		}
	}
	held = append(held, s.locks.lock("s:"+string(rc.SHA256[:])))
	if err := s.ensureCaughtUp(ctx); err != nil {
		return rc, err
	}

	envJSON, err := env.MarshalJSON()
	if err != nil {
		return rc, fmt.Errorf("archive: envelope: %w", err)
	}
	p := &pending{done: make(chan error, 1)}
	p.delivery = deliveryRow(env, envJSON)

	msgSeq, state, err := s.index.MessageBySHA(ctx, rc.SHA256)
	switch {
	case err == nil && state == index.StateActive:
		// Known bytes: record one more delivery.
		m, err := s.index.Message(ctx, msgSeq)
		if err != nil {
			return rc, err
		}
		mk, err := s.messageKey(ctx, m)
		if err != nil {
			return rc, err
		}
		ref := msgSeq
		p.entry = &ledger.Entry{Kind: ledger.KindDelivery, Ref: &ref}
		p.entry.Delivery, err = s.sealDelivery(ctx, p, mk, env, envJSON, rc.SHA256)
		if err != nil {
			return rc, err
		}
		p.delivery.Message = msgSeq
		rc.Duplicate, rc.MessageSeq = true, msgSeq
		rc.Problems = m.Problems
	case err == nil || errors.Is(err, index.ErrNotFound):
		// New bytes (or bytes whose earlier copy was disposed or erased).
		if err := s.storeMessage(ctx, p, env, envJSON, raw, rc.SHA256); err != nil {
			return rc, err
		}
		rc.Problems = p.message.Problems
	default:
		return rc, err
	}

	if ingest.AcksWhenDurable(ctx) {
		p.durable = make(chan struct{})
	}
	p.release = held
	if err := s.enqueue(ctx, p); err != nil {
		return rc, err
	}
	queued = true
	select {
	case err := <-p.done:
		if err != nil {
			select {
			case <-p.durable:
				// Answered as durable, then the index failed: the entry
				// is committed and the index catches up from the ledger.
			default:
				return rc, err
			}
		}
	case <-p.durable:
	}
	rc.Seq = p.entry.Seq
	if !rc.Duplicate {
		rc.MessageSeq = rc.Seq
	}
	s.lg.Debug("archived", "seq", rc.Seq, "message", rc.MessageSeq, "sha256", hex.EncodeToString(rc.SHA256[:]),
		"source", env.Source, "duplicate", rc.Duplicate, "size", len(raw))
	return rc, nil
}

func release(held []func()) {
	for i := len(held) - 1; i >= 0; i-- {
		held[i]()
	}
}

// ensureCaughtUp makes the index hold every committed entry before a
// lookup relies on it (after an index failure, it may not).
func (s *Store) ensureCaughtUp(ctx context.Context) error {
	if !s.behind.Load() {
		return nil
	}
	return s.catchUp(ctx)
}

func (s *Store) enqueue(ctx context.Context, p *pending) error {
	a, _ := ctx.Value(announcementKey{}).(*announcement)
	if a != nil {
		a.arriving() // before the send: a fill that receives p sees it arrived
	}
	select {
	case s.queue <- p:
		if a != nil {
			a.done() // queued: no longer on its way
		}
		return nil
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func deliveryRow(env *ingest.Envelope, envJSON []byte) index.DeliveryRow {
	d := index.DeliveryRow{
		DeliveryKey: env.DeliveryKey,
		Source:      env.Source,
		Sender:      env.Sender,
		ReceivedAt:  env.ReceivedAt.UTC(),
		Envelope:    envJSON,
		Custodians:  env.CustodianList(),
	}
	for _, r := range env.Recipients {
		d.Recipients = append(d.Recipients, index.Recipient{Addr: lowerAddr(r.Address), Kind: string(r.Kind)})
	}
	return d
}

// storeMessage writes the key object and the message object of new bytes
// and prepares their entry and index row.
func (s *Store) storeMessage(ctx context.Context, p *pending, env *ingest.Envelope, envJSON, raw []byte, sha [32]byte) error {
	an := analyze(raw, s.tokenMACs)
	mk := crypto.NewMessageKeySalt()
	var obj bytes.Buffer
	if !payload.OneWrite(len(raw)) {
		obj.Grow(len(raw)/2 + 512) // written chunk by chunk
	}
	if err := payload.Seal(&obj, raw, mk, s.opts.Compression); err != nil {
		return fmt.Errorf("archive: seal: %w", err)
	}
	objSHA := sha256.Sum256(obj.Bytes())

	// The generation in the name is random: names stay keyed hashes, and
	// bytes archived again after their earlier copy was disposed or erased
	// never land on the tombstoned message's names (a key object there would
	// make the erasure look undone), without a lookup per message. A name
	// already taken (an attempt that never committed) just draws again.
	var objKey, keyKey string
	var objHint, keyHint []byte
	for try := 0; ; try++ {
		if try == 16 {
			return fmt.Errorf("archive: no free object name for %x after %d tries", sha[:8], try)
		}
		var g [4]byte
		rand.Read(g[:])
		gen := binary.BigEndian.Uint32(g[:])
		objKey = s.objectName("messages", sha, gen)
		keyKey = s.objectName("keys", sha, gen)
		wrapped := s.keys.WrapMessageKey(mk, objKey)
		// The key object first: a message object never exists without
		// its key, so an orphan found later is at worst an unused key.
		var err error
		keyHint, err = s.putObject(ctx, p, keyKey, wrapped)
		if errors.Is(err, objstore.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("archive: write key object: %w", err)
		}
		objHint, err = s.putObject(ctx, p, objKey, obj.Bytes())
		if errors.Is(err, objstore.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("archive: write message object: %w", err)
		}
		break
	}
	content := mk.Commit(raw)
	p.entry = &ledger.Entry{
		Kind: ledger.KindMessage,
		Message: &ledger.Message{
			Content:      hex.EncodeToString(content[:]),
			Size:         int64(len(raw)),
			Object:       objKey,
			ObjectSHA256: hex.EncodeToString(objSHA[:]),
			ObjectSize:   int64(obj.Len()),
			KeyObject:    keyKey,
		},
	}
	var err error
	p.entry.Delivery, err = s.sealDelivery(ctx, p, mk, env, envJSON, sha)
	if err != nil {
		return err
	}
	p.message = &index.MessageRow{
		SHA256:       sha,
		Size:         int64(len(raw)),
		Object:       objKey,
		KeyObject:    keyKey,
		ObjectSHA256: objSHA,
		ObjectSize:   int64(obj.Len()),
		ObjectHint:   objHint,
		KeyHint:      keyHint,
	}
	an.fill(p.message)
	p.tokens = an.tokens
	return nil
}

// putObject writes an object of p. On a store that batches durability
// (objstore.Batcher) it is written unsynced, and the group commit makes it
// durable with one Sync before the segment that references it. It returns
// the store's hint to the object, if the store gives one (objstore.Hinter).
func (s *Store) putObject(ctx context.Context, p *pending, key string, data []byte) ([]byte, error) {
	if h, ok := s.objs.(objstore.Hinter); ok {
		p.unsynced = true
		return h.PutUnsyncedHint(ctx, key, bytes.NewReader(data), int64(len(data)))
	}
	if b, ok := s.objs.(objstore.Batcher); ok {
		p.unsynced = true
		return nil, b.PutUnsynced(ctx, key, bytes.NewReader(data), int64(len(data)))
	}
	return nil, s.objs.Put(ctx, key, bytes.NewReader(data), int64(len(data)))
}

// sealDelivery seals the envelope (and evidence) of one delivery.
func (s *Store) sealDelivery(ctx context.Context, p *pending, mk *crypto.MessageKey, env *ingest.Envelope, envJSON []byte, sha [32]byte) (*ledger.Delivery, error) {
	commit := mk.Commit(envJSON)
	d := &ledger.Delivery{
		Envelope:       base64.StdEncoding.EncodeToString(mk.Seal("envelope", envJSON)),
		EnvelopeCommit: hex.EncodeToString(commit[:]),
	}
	if len(env.Evidence) > 0 {
		sealed := mk.Seal("evidence", env.Evidence)
		h := sha256.Sum256(sealed)
		// Evidence is per delivery: name it by its own sealed hash.
		key := s.objectName("evidence", h, 0)
		_, err := s.putObject(ctx, p, key, sealed)
		if err != nil && !errors.Is(err, objstore.ErrExist) {
			return nil, fmt.Errorf("archive: write evidence object: %w", err)
		}
		d.Evidence, d.EvidenceSHA256 = key, hex.EncodeToString(h[:])
	}
	return d, nil
}

// objectName is "<kind>/<h0h1h2>/<h>" with h = HMAC-SHA256(name key,
// kind || 0x00 || sha || gen): a keyed hash, so the store's operator cannot
// test whether known bytes are archived (invariant 4). One level of 4,096
// folders: each new folder costs a mkdir and its fsync, so fewer and
// fuller folders ingest faster (a 10M-message archive has ~2,400 objects
// per folder, which filesystems and S3 prefixes handle well).
func (s *Store) objectName(kind string, sha [32]byte, gen uint32) string {
	var in [64]byte
	b := append(in[:0], kind...)
	b = append(b, 0)
	b = append(b, sha[:]...)
	b = binary.BigEndian.AppendUint32(b, gen)
	m := s.nameMACs.Get()
	m.Write(b)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	s.nameMACs.Put(m)
	h := hex.EncodeToString(sum[:])
	return kind + "/" + h[0:3] + "/" + h
}

// messageKey reads and unwraps the key object of a message.
func (s *Store) messageKey(ctx context.Context, m *index.MessageRow) (*crypto.MessageKey, error) {
	b, err := s.readHint(ctx, m.KeyObject, m.KeyHint, crypto.KeyObjectSize, nil)
	if b == nil && err == nil {
		b, err = readSmall(ctx, s.objs, m.KeyObject, crypto.KeyObjectSize)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: key object of message %d: %w", m.Seq, err)
	}
	mk, err := s.keys.UnwrapMessageKey(b, m.Object)
	if err != nil {
		return nil, fmt.Errorf("archive: key object of message %d: %w", m.Seq, err)
	}
	return mk, nil
}

// readHint reads key whole from where hint says it lies, if the store can
// (objstore.Hinter) and the object there is key's and at most max bytes.
// It returns nil and no error when the caller must read the usual way:
// no hint, or one that does not lead to the object (ErrStaleHint, or any
// error of the read, which the usual way then reports or finds around).
func (s *Store) readHint(ctx context.Context, key string, hint []byte, max int64, alloc func(int) []byte) ([]byte, error) {
	h, ok := s.objs.(objstore.Hinter)
	if !ok || len(hint) == 0 {
		return nil, nil
	}
	b, err := h.ReadHint(ctx, key, hint, max, alloc)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, nil
	}
	return b, nil
}

func readSmall(ctx context.Context, objs objstore.Store, key string, max int64) ([]byte, error) {
	rc, err := objs.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", key, max)
	}
	return b, nil
}

// keyLocks is a set of named mutexes, created on demand and dropped when
// unused, so memory stays bounded by the deliveries in flight.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func (k *keyLocks) lock(name string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyLock)
	}
	l := k.m[name]
	if l == nil {
		l = &keyLock{}
		k.m[name] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, name)
		}
		k.mu.Unlock()
	}
}

// CloseWithoutCheckpoint closes like Close but signs no final checkpoint:
// for commands that only read or repair (verify, reindex, cat).
func (s *Store) CloseWithoutCheckpoint() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.queue != nil {
		close(s.stop)
		<-s.stopped
		<-s.indexDone
		<-s.ckptDone
		<-s.ftsDone
	}
	err := s.index.Close()
	s.unlock()
	if e := s.closeObjects(); e != nil && err == nil {
		err = e
	}
	return err
}
