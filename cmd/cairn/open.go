package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/archive/objstore/s3"
	"github.com/cairn-archive/cairn/archive/objstore/volume"
	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/retention"
)

// openObjects opens the configured object store.
func openObjects(ctx context.Context, cfg *Config) (objstore.Store, error) {
	switch cfg.Store.Type {
	case "fs":
		dir := cfg.fsDir()
		// An existing store keeps the layout it was made with.
		hasVolumes := fileExists(filepath.Join(dir, "volumes"))
		hasFiles := fileExists(filepath.Join(dir, ".tmp"))
		if hasFiles && !hasVolumes && cfg.Store.FS.Layout == "volumes" {
			return nil, fmt.Errorf("store.fs.layout is volumes, but %s holds a store of one file per object: set store.fs.layout: files", dir)
		}
		if hasVolumes && !hasFiles && cfg.Store.FS.Layout == "files" {
			return nil, fmt.Errorf("store.fs.layout is files, but %s holds a volume store: set store.fs.layout: volumes", dir)
		}
		if cfg.Store.FS.Layout == "files" {
			return fs.Open(dir)
		}
		return volume.Open(dir)
	case "s3":
		c := cfg.Store.S3
		secret := c.SecretKey
		if c.SecretKeyFile != "" {
			b, err := os.ReadFile(c.SecretKeyFile)
			if err != nil {
				return nil, fmt.Errorf("store.s3.secret_key_file: %w", err)
			}
			secret = strings.TrimSpace(string(b))
		}
		lookup := s3.Lookup(c.Lookup)
		if c.Lookup == "" {
			lookup = s3.LookupAuto
		}
		return s3.Open(ctx, s3.Options{
			Endpoint:     c.Endpoint,
			Region:       c.Region,
			Bucket:       c.Bucket,
			Prefix:       c.Prefix,
			AccessKey:    c.AccessKey,
			SecretKey:    secret,
			Secure:       c.Secure,
			CAFile:       c.CAFile,
			Lookup:       lookup,
			CreateBucket: c.CreateBucket,
			ObjectLock:   c.ObjectLock,
			MaxRetries:   c.MaxRetries,
			Timeout:      c.Timeout,
		})
	}
	return nil, fmt.Errorf("store.type %q: want fs or s3", cfg.Store.Type)
}

func escrowRecipients(cfg *Config) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, s := range cfg.Keys.EscrowRecipients {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("keys.escrow_recipients: %q is not an age X25519 recipient (age1...)", s)
		}
		out = append(out, r)
	}
	return out, nil
}

// keys holds what opening an archive needs besides the stores.
type keys struct {
	ids     *crypto.IdentityFile
	ring    *crypto.Keyring
	signing *crypto.SigningKey
}

var errNotInitialised = errors.New("this archive has no keys yet; run `cairn init` first (or `cairn serve`, which initialises the embedded default)")

func loadKeys(ctx context.Context, cfg *Config, objs objstore.Store) (*keys, error) {
	if !fileExists(cfg.archiveKeyPath()) {
		return nil, fmt.Errorf("%s is missing: %w", cfg.archiveKeyPath(), errNotInitialised)
	}
	ids, err := crypto.LoadIdentities(cfg.archiveKeyPath())
	if err != nil {
		return nil, err
	}
	ring, err := crypto.LoadKeyring(ctx, objs, ids)
	if errors.Is(err, crypto.ErrNoKEK) {
		return nil, fmt.Errorf("the object store holds no key-encryption key: %w", errNotInitialised)
	}
	if err != nil {
		return nil, err
	}
	sk, err := crypto.LoadSigningKey(cfg.signingKeyPath())
	if err != nil {
		return nil, err
	}
	return &keys{ids: ids, ring: ring, signing: sk}, nil
}

// logID turns the checkpoint origin into the ledger's folder name.
func logID(origin string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(origin) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), ".-_")
	if s == "" {
		s = "ledger"
	}
	return s
}

type openMode int

const (
	readWrite openMode = iota
	readOnly
)

// openParts opens the object store and the keys that open it.
func openParts(ctx context.Context, cfg *Config) (objstore.Store, *keys, error) {
	objs, err := openObjects(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	k, err := loadKeys(ctx, cfg, objs)
	if err != nil {
		closeObjects(objs)
		return nil, nil, err
	}
	return objs, k, nil
}

// openArchive opens the archive described by cfg.
func openArchive(ctx context.Context, cfg *Config, mode openMode) (*archive.Store, *keys, error) {
	objs, k, err := openParts(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	st, err := openArchiveWithOwned(ctx, cfg, objs, k, mode, nil, true)
	if err != nil {
		closeObjects(objs)
		return nil, nil, err
	}
	return st, k, nil
}

// openArchiveWith opens the archive on an opened store and keys; onCkpt,
// if set, receives every published checkpoint. Every disposal asks the
// holds in retention.db first (invariant 7), whoever asks for it.
func openArchiveWith(ctx context.Context, cfg *Config, objs objstore.Store, k *keys, mode openMode, onCkpt func(ledger.Checkpoint, []byte)) (*archive.Store, error) {
	return openArchiveWithOwned(ctx, cfg, objs, k, mode, onCkpt, false)
}

// openArchiveWithOwned is openArchiveWith; own hands objs over to the
// archive, whose Close then closes it.
func openArchiveWithOwned(ctx context.Context, cfg *Config, objs objstore.Store, k *keys, mode openMode, onCkpt func(ledger.Checkpoint, []byte), own bool) (*archive.Store, error) {
	return archive.Open(ctx, archive.Options{
		OwnObjects:         own,
		Holds:              retention.NewChecker(cfg.retentionDB(), cfg.indexDB(), k.ring.SearchKey()),
		OnIndexed:          notifyIndexed,
		Dir:                cfg.DataDir,
		Objects:            objs,
		Keys:               k.ring,
		Signing:            k.signing,
		LogID:              logID(k.signing.Origin()),
		MaxMessageSize:     int64(cfg.Ingest.MaxMessageSize),
		Compression:        cfg.compression(),
		CheckpointEvery:    cfg.Ledger.CheckpointEvery,
		CheckpointInterval: cfg.Ledger.CheckpointInterval,
		ReadOnly:           mode == readOnly,
		OnCheckpoint:       onCkpt,
		Logger:             logger,
	})
}

// closeObjects releases a store opened for a short task (the volume store
// holds the writer lock until closed).
func closeObjects(objs objstore.Store) {
	if c, ok := objs.(interface{ Close() error }); ok {
		c.Close()
	}
}

// openAuditedReader opens the archive read-only and the audit log to
// record into, for the commands that read (cat, search): nothing is read
// unless its access can be recorded. refusal ends the error when the audit
// log does not open. done closes both, and the object store.
func openAuditedReader(ctx context.Context, cfg *Config, refusal string) (st *archive.Store, alog *audit.Log, done func(), err error) {
	objs, k, err := openParts(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err = openArchiveWithOwned(ctx, cfg, objs, k, readOnly, nil, true)
	if err != nil {
		closeObjects(objs)
		return nil, nil, nil, err
	}
	alog, err = openAudit(cfg, objs, k, auditRecord)
	if err != nil {
		st.CloseWithoutCheckpoint()
		return nil, nil, nil, fmt.Errorf("audit log: %w (%s)", err, refusal)
	}
	return st, alog, func() { alog.Close(); st.CloseWithoutCheckpoint() }, nil
}
