package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/export/manifest"
	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/audit"
)

// Formats of the exported messages.
const (
	FormatEML  = manifest.LayoutEML
	FormatMbox = manifest.LayoutMbox
)

// Options say what to export, where, and for whom.
type Options struct {
	// Case exports the messages the case's active holds cover now (Holds
	// lists them). Exactly one of Case and Query.
	Case  string
	Holds HoldSource
	// Query exports the messages a search matches (cairn search's
	// language, imapview/search); BODY and TEXT phrases are confirmed on
	// every match.
	Query string
	// Out is the export folder to create. It must not exist, or be an
	// empty folder. The export is written beside it under a temporary name
	// and renamed into place once complete and verified.
	Out string
	// Format is FormatEML (the default) or FormatMbox.
	Format string
	// Actor and Source are who asks (recorded in the audit event and the
	// manifest): the CLI's operator, the HTTP API's authenticated user.
	Actor  audit.Actor
	Source audit.Source
	// Audit records the export.create event before any message is written
	// (fail closed). Required.
	Audit audit.Recorder
	// CheckpointWait, on a store opened read-only, is how long to wait for
	// the writer (cairn serve) to publish a checkpoint that covers every
	// selected message. Zero refuses at once.
	CheckpointWait time.Duration
	// Progress, if set, is called now and then from Run's goroutine.
	Progress func(Progress)
}

// Progress is how far an export is.
type Progress struct {
	// Phase is "select", "proofs" (reading the ledger's leaf hashes: Done
	// and Total count entries), "write" or "check" (the export verified
	// as written: Done and Total count messages, Bytes their bytes).
	Phase             string
	Done, Total       int64
	Bytes, TotalBytes int64
}

// Result describes a finished export.
type Result struct {
	ID     string
	Dir    string
	Format string
	// Messages, Entries and Bytes are the manifest's counts.
	Messages, Entries, Bytes int64
	Checkpoint               ledger.Checkpoint
	// ManifestSHA256 is the digest manifest.sig signs.
	ManifestSHA256 [32]byte
	// AuditEvent is the id of the export.create event.
	AuditEvent string
}

// Errors a caller may tell apart.
var (
	// ErrExists: Out exists and is not an empty folder.
	ErrExists = errors.New("export: the output folder exists and is not empty")
	// ErrUncovered: on a read-only store, selected messages are newer than
	// the newest signed checkpoint.
	ErrUncovered = errors.New("export: messages not yet covered by a signed checkpoint")
)

func (o *Options) validate() error {
	if (o.Case == "") == (o.Query == "") {
		return errors.New("export: give a case or a query (one of them)")
	}
	if o.Case != "" && o.Holds == nil {
		return errors.New("export: an export by case needs the holds (Options.Holds)")
	}
	if o.Out == "" {
		return errors.New("export: no output folder")
	}
	switch o.Format {
	case "":
		o.Format = FormatEML
	case FormatEML, FormatMbox:
	default:
		return fmt.Errorf("export: format %q: want eml or mbox", o.Format)
	}
	if o.Audit == nil {
		return errors.New("export: no audit log (every export is audited before it is written)")
	}
	return nil
}

// plan is one message with the entries the export includes.
type plan struct {
	selected
	entries []uint64
}

// Run exports the selected messages to opts.Out with a signed manifest
// (docs/FORMAT.md §11) and returns once the export is complete, verified
// with archive/export/manifest as a recipient would, and in place. On a
// writable store it signs a fresh checkpoint covering everything archived;
// on a read-only one it uses the newest stored checkpoint and refuses
// (ErrUncovered) messages it does not cover. The export reflects the
// ledger up to that checkpoint: deliveries recorded after it are not in
// it. It is safe to call from a server, concurrently with archiving.
func Run(ctx context.Context, st *archive.Store, opts Options) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	progress := func(p Progress) {
		if opts.Progress != nil {
			opts.Progress(p)
		}
	}
	if err := checkOut(opts.Out); err != nil {
		return nil, err
	}
	progress(Progress{Phase: "select"})
	msgs, sel, err := selectMessages(ctx, st, &opts)
	if err != nil {
		return nil, err
	}
	ckpt, signed, err := checkpointFor(ctx, st, msgs, opts.CheckpointWait)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.seq >= ckpt.Size {
			return nil, fmt.Errorf("%w: message %d is not covered by the checkpoint of %d entries", ErrUncovered, m.seq, ckpt.Size)
		}
	}
	if err := waitIndexed(ctx, st, ckpt.Size, 30*time.Second); err != nil {
		return nil, err
	}

	// Which entries, and the proofs they need.
	pv := newProver(ckpt.Size)
	plans := make([]plan, len(msgs))
	var nEntries, nBytes int64
	for i, m := range msgs {
		lines, err := st.Index().EntriesOf(ctx, m.seq)
		if err != nil {
			return nil, fmt.Errorf("export: message %d: %w", m.seq, err)
		}
		plans[i].selected = m
		for _, line := range lines {
			e, err := ledger.ParseEntry(line)
			if err != nil {
				return nil, fmt.Errorf("export: message %d: %w", m.seq, err)
			}
			if e.Seq >= ckpt.Size {
				continue // after the checkpoint: not in this export
			}
			plans[i].entries = append(plans[i].entries, e.Seq)
			if err := pv.need(e.Seq); err != nil {
				return nil, err
			}
		}
		nEntries += int64(len(plans[i].entries))
		nBytes += m.size
	}
	err = pv.build(ctx, st.Index(), ckpt.Root, func(done uint64) {
		progress(Progress{Phase: "proofs", Done: int64(done), Total: int64(ckpt.Size)})
	})
	if err != nil {
		return nil, err
	}

	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	auditID, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	hdr := &manifest.Header{
		Format:     manifest.Format,
		ID:         id.String(),
		Created:    time.Now().UTC(),
		CreatedBy:  manifest.Actor{User: opts.Actor.User, Role: opts.Actor.Role, AuthMech: opts.Actor.AuthMech, Service: opts.Source.Service, IP: opts.Source.IP},
		AuditEvent: auditID.String(),
		Selection:  sel,
		Origin:     ckpt.Origin,
		PublicKey:  st.SigningKey().VerifierKey,
		Checkpoint: manifest.Checkpoint{Origin: ckpt.Origin, Size: ckpt.Size, Root: hex.EncodeToString(ckpt.Root[:]), Signed: string(signed)},
		Layout:     opts.Format,
		Counts:     manifest.Counts{Messages: int64(len(msgs)), Entries: nEntries, Bytes: nBytes},
	}

	// Audited before a byte of mail is written (fail closed).
	seqs := make([]uint64, len(msgs))
	for i, m := range msgs {
		seqs[i] = m.seq
	}
	ev := audit.Event{ID: hdr.AuditEvent, Action: audit.ActionExport, Outcome: audit.OutcomeSuccess, Actor: opts.Actor, Source: opts.Source,
		Target: audit.Target{Case: opts.Case, Ledger: audit.FormatSet(seqs)},
		Details: audit.Details{Query: opts.Query, Count: int64(len(msgs)), Bytes: nBytes, Format: opts.Format,
			Note: fmt.Sprintf("export %s to %s; checkpoint %d", hdr.ID, opts.Out, ckpt.Size)}}
	if _, err := opts.Audit.Record(ctx, ev); err != nil {
		return nil, fmt.Errorf("export: audit log: %w (every export is audited, so nothing was written)", err)
	}

	w := &writer{st: st, opts: &opts, hdr: hdr, pv: pv, ckpt: ckpt, progress: progress}
	res, err := w.run(ctx, plans)
	if err != nil {
		// The attempt is on record; so is its failure.
		fail := ev
		fail.ID, fail.Outcome, fail.Reason = "", audit.OutcomeFailure, err.Error()
		if _, aerr := opts.Audit.Record(context.WithoutCancel(ctx), fail); aerr != nil {
			err = fmt.Errorf("%w (and its failure was not audited: %v)", err, aerr)
		}
		return nil, err
	}
	return res, nil
}

// checkOut refuses an output folder that exists with something in it.
func checkOut(out string) error {
	st, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%w: %s is a file", ErrExists, out)
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%w: %s", ErrExists, out)
	}
	return nil
}

// checkpointFor returns the checkpoint the export proves against: a fresh
// one when the store is writable, else the newest stored one, which must
// cover every selected message (waiting up to wait for the writer's next).
func checkpointFor(ctx context.Context, st *archive.Store, msgs []selected, wait time.Duration) (ledger.Checkpoint, []byte, error) {
	if !st.ReadOnly() {
		c, signed, err := st.PublishCheckpoint(ctx)
		if err != nil {
			return c, nil, fmt.Errorf("export: sign a checkpoint: %w", err)
		}
		return c, signed, nil
	}
	var newest uint64
	for _, m := range msgs {
		newest = max(newest, m.seq+1)
	}
	deadline := time.Now().Add(wait)
	for {
		c, signed, err := st.LatestCheckpoint(ctx)
		if err != nil && !errors.Is(err, archive.ErrNoCheckpoint) {
			return c, nil, fmt.Errorf("export: %w", err)
		}
		if err == nil && c.Size >= newest {
			return c, signed, nil
		}
		if time.Now().After(deadline) {
			var late []uint64
			for _, m := range msgs {
				if m.seq >= c.Size {
					late = append(late, m.seq)
				}
			}
			return c, nil, fmt.Errorf("%w: %d selected messages (ledger entries %s) were archived after the newest signed checkpoint (%d entries); "+
				"an export proves each message against a signed checkpoint: retry once the archive has published its next one (cairn serve does every ledger.checkpoint_interval), or export through cairn serve",
				ErrUncovered, len(late), audit.FormatSet(late), c.Size)
		}
		select {
		case <-ctx.Done():
			return c, nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// writer writes one export into a temporary folder beside Out.
type writer struct {
	st       *archive.Store
	opts     *Options
	hdr      *manifest.Header
	pv       *prover
	ckpt     ledger.Checkpoint
	progress func(Progress)

	tmp     string
	records *os.File // message records (JSON lines) until the manifest is assembled
	rec     *bufio.Writer
	csvF    *os.File
	csvHash hash.Hash
	csv     *csv.Writer
	mbox    *os.File
	mboxBuf *bufio.Writer
	mboxOff int64
	mboxSum hash.Hash
}

func (w *writer) run(ctx context.Context, plans []plan) (*Result, error) {
	out := filepath.Clean(w.opts.Out)
	w.tmp = filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".partial-"+w.hdr.ID)
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := os.Mkdir(w.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	ok := false
	defer func() {
		w.closeAll()
		if !ok {
			os.RemoveAll(w.tmp)
		}
	}()
	if err := w.open(); err != nil {
		return nil, err
	}
	var done, bytes int64
	for _, p := range plans {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := w.message(ctx, p)
		if err != nil {
			return nil, err
		}
		done++
		bytes += n
		w.progress(Progress{Phase: "write", Done: done, Total: int64(len(plans)), Bytes: bytes, TotalBytes: w.hdr.Counts.Bytes})
	}
	digest, err := w.finish()
	if err != nil {
		return nil, err
	}

	// Verified as a recipient will verify it, before it is in place.
	rep, err := manifest.Verify(ctx, w.tmp, w.st.SigningKey().Verifier, manifest.Options{Progress: func(m, tm, b, tb int64) {
		w.progress(Progress{Phase: "check", Done: m, Total: tm, Bytes: b, TotalBytes: tb})
	}})
	if err != nil {
		return nil, fmt.Errorf("export: verify the export: %w", err)
	}
	if !rep.OK() {
		var ps []string
		for _, p := range rep.Problems[:min(len(rep.Problems), 5)] {
			ps = append(ps, p.String())
		}
		return nil, fmt.Errorf("export: the export does not verify (%d problems): %s", len(rep.Problems), strings.Join(ps, "; "))
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("export: %w", err) // not empty after all
	}
	if err := os.Rename(w.tmp, out); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	ok = true
	syncDir(filepath.Dir(out))
	return &Result{ID: w.hdr.ID, Dir: out, Format: w.hdr.Layout, Messages: w.hdr.Counts.Messages, Entries: w.hdr.Counts.Entries,
		Bytes: w.hdr.Counts.Bytes, Checkpoint: w.ckpt, ManifestSHA256: digest, AuditEvent: w.hdr.AuditEvent}, nil
}

func (w *writer) create(rel string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(w.tmp, filepath.FromSlash(rel)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return f, nil
}

func (w *writer) open() error {
	var err error
	if w.records, err = w.create(".records"); err != nil {
		return err
	}
	w.rec = bufio.NewWriterSize(w.records, 256<<10)
	if w.csvF, err = w.create(manifest.FileCSV); err != nil {
		return err
	}
	w.csvHash = sha256.New()
	cw := io.MultiWriter(w.csvF, w.csvHash)
	io.WriteString(cw, manifest.CSVBOM)
	w.csv = csv.NewWriter(cw)
	w.csv.UseCRLF = true
	w.csv.Write(manifest.CSVHeader)
	switch w.hdr.Layout {
	case FormatEML:
		if err := os.Mkdir(filepath.Join(w.tmp, manifest.DirMessages), 0o700); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	case FormatMbox:
		if w.mbox, err = w.create(manifest.FileMbox); err != nil {
			return err
		}
		w.mboxSum = sha256.New()
		w.mboxBuf = bufio.NewWriterSize(io.MultiWriter(w.mbox, w.mboxSum), 256<<10)
	}
	return nil
}

func (w *writer) closeAll() {
	for _, f := range []*os.File{w.records, w.csvF, w.mbox} {
		if f != nil {
			f.Close()
		}
	}
}

// envelopeFacts are what the mbox From_ line takes from an envelope.
type envelopeFacts struct {
	Sender     string    `json:"sender"`
	ReceivedAt time.Time `json:"received_at"`
}

// message writes one message and its manifest record; it returns its size.
func (w *writer) message(ctx context.Context, p plan) (int64, error) {
	d, err := w.st.Disclose(ctx, p.seq)
	if err != nil {
		return 0, fmt.Errorf("export: message %d: %w", p.seq, err)
	}
	var entries []archive.DisclosedEntry
	for _, e := range d.Entries {
		if e.Seq < w.ckpt.Size {
			entries = append(entries, e)
		}
	}
	var got []uint64
	for _, e := range entries {
		got = append(got, e.Seq)
	}
	if !slices.Equal(got, p.entries) {
		return 0, fmt.Errorf("export: message %d changed during the export (entries %v, then %v)", p.seq, p.entries, got)
	}
	if len(entries) == 0 || entries[0].Entry.Message == nil {
		return 0, fmt.Errorf("export: message %d: no message entry before the checkpoint", p.seq)
	}
	msgEntry := entries[0].Entry
	m, err := w.st.OpenMessage(ctx, p.seq)
	if err != nil {
		return 0, fmt.Errorf("export: message %d: %w", p.seq, err)
	}
	defer m.Close()

	rec := manifest.Message{Seq: p.seq, Size: m.Size(), Salt: hex.EncodeToString(d.Salt[:]),
		From: m.Row.From, Subject: m.Row.Subject, MessageID: m.Row.MessageID}
	if !m.Row.Date.IsZero() {
		rec.Date = m.Row.Date.UTC().Format(time.RFC3339)
	}
	sum, commit := sha256.New(), sha256.New()
	commit.Write(d.Salt[:])
	switch w.hdr.Layout {
	case FormatEML:
		f, err := w.create(manifest.DirMessages + "/.partial")
		if err != nil {
			return 0, err
		}
		bw := bufio.NewWriterSize(io.MultiWriter(f, sum, commit), 256<<10)
		_, err = m.WriteTo(bw)
		if err == nil {
			err = bw.Flush()
		}
		if e := f.Close(); err == nil {
			err = e
		}
		if err != nil {
			return 0, fmt.Errorf("export: message %d: %w", p.seq, err)
		}
		rec.SHA256 = hex.EncodeToString(sum.Sum(nil))
		rec.File = manifest.EMLName(p.seq, rec.SHA256)
		if err := os.Rename(filepath.Join(w.tmp, manifest.DirMessages, ".partial"), filepath.Join(w.tmp, filepath.FromSlash(rec.File))); err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
	case FormatMbox:
		raw, err := m.Bytes()
		if err != nil {
			return 0, fmt.Errorf("export: message %d: %w", p.seq, err)
		}
		sum.Write(raw)
		commit.Write(raw)
		rec.SHA256 = hex.EncodeToString(sum.Sum(nil))
		var ef envelopeFacts
		json.Unmarshal(entries[0].Envelope, &ef)
		date := ef.ReceivedAt
		if date.IsZero() {
			date = msgEntry.Time
		}
		n, added, err := manifest.WriteMboxRecord(w.mboxBuf, ef.Sender, date, raw)
		if err != nil {
			return 0, fmt.Errorf("export: %w", err)
		}
		rec.Mbox = &manifest.Span{Offset: w.mboxOff, Length: n, EOLAdded: added}
		w.mboxOff += n
	}
	// The bytes written are the archived ones: they open the ledger's
	// commitment with the salt.
	if hex.EncodeToString(commit.Sum(nil)) != msgEntry.Message.Content || rec.Size != msgEntry.Message.Size {
		return 0, fmt.Errorf("export: message %d does not match the ledger's content commitment (run cairn verify --full)", p.seq)
	}
	if m.Row.SHA256 != ([32]byte{}) && hex.EncodeToString(m.Row.SHA256[:]) != rec.SHA256 {
		return 0, fmt.Errorf("export: message %d differs from the index's SHA-256 (run cairn verify --full)", p.seq)
	}

	var envs [][]byte
	for _, e := range entries {
		leaf := ledger.LeafHash(e.Line)
		pr, err := w.pv.proof(e.Seq, leaf, w.ckpt.Root)
		if err != nil {
			return 0, err
		}
		rec.Entries = append(rec.Entries, manifest.Entry{Seq: e.Seq, Line: string(e.Line), Envelope: string(e.Envelope), Proof: pr})
		envs = append(envs, e.Envelope)
	}
	if rec.Custodians, err = manifest.Custodians(envs); err != nil {
		return 0, fmt.Errorf("export: message %d: %w", p.seq, err)
	}
	if err := w.csv.Write(manifest.CSVRecord(&rec)); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	b, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	w.rec.Write(b)
	if err := w.rec.WriteByte('\n'); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	return rec.Size, nil
}

// finish closes the message files, writes README.txt, assembles and signs
// the manifest; it returns the manifest's digest.
func (w *writer) finish() ([32]byte, error) {
	var digest [32]byte
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		return digest, fmt.Errorf("export: %w", err)
	}
	csvFile, err := closeFile(w.csvF, manifest.FileCSV, w.csvHash)
	w.csvF = nil
	if err != nil {
		return digest, err
	}
	files := []manifest.File{csvFile}
	readme := w.readme()
	rs := sha256.Sum256(readme)
	if err := w.writeFile(manifest.FileReadme, readme); err != nil {
		return digest, err
	}
	files = append(files, manifest.File{Path: manifest.FileReadme, SHA256: hex.EncodeToString(rs[:]), Size: int64(len(readme))})
	if w.mbox != nil {
		if err := w.mboxBuf.Flush(); err != nil {
			return digest, fmt.Errorf("export: %w", err)
		}
		mf, err := closeFile(w.mbox, manifest.FileMbox, w.mboxSum)
		w.mbox = nil
		if err != nil {
			return digest, err
		}
		files = append(files, mf)
	}
	w.hdr.Files = files

	// manifest.json: the header, then the records.
	if err := w.rec.Flush(); err != nil {
		return digest, fmt.Errorf("export: %w", err)
	}
	if _, err := w.records.Seek(0, io.SeekStart); err != nil {
		return digest, fmt.Errorf("export: %w", err)
	}
	mf, err := w.create(manifest.FileManifest)
	if err != nil {
		return digest, err
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(mf, h), 256<<10)
	mw, err := manifest.NewWriter(bw, w.hdr)
	if err == nil {
		sc := bufio.NewScanner(w.records)
		sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
		for sc.Scan() && err == nil {
			var m manifest.Message
			if err = json.Unmarshal(sc.Bytes(), &m); err == nil {
				err = mw.Add(&m)
			}
		}
		if err == nil {
			err = sc.Err()
		}
	}
	if err == nil {
		err = mw.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = mf.Sync()
	}
	if e := mf.Close(); err == nil {
		err = e
	}
	if err != nil {
		return digest, fmt.Errorf("export: write %s: %w", manifest.FileManifest, err)
	}
	w.records.Close()
	w.records = nil
	os.Remove(filepath.Join(w.tmp, ".records"))

	h.Sum(digest[:0])
	sig, err := manifest.Sign(w.hdr.ID, digest, w.st.SigningKey().Signer)
	if err != nil {
		return digest, err
	}
	return digest, w.writeFile(manifest.FileSignature, sig)
}

func (w *writer) writeFile(rel string, b []byte) error {
	f, err := w.create(rel)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("export: write %s: %w", rel, err)
	}
	return nil
}

func closeFile(f *os.File, rel string, h hash.Hash) (manifest.File, error) {
	st, err := f.Stat()
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err != nil {
		return manifest.File{}, fmt.Errorf("export: write %s: %w", rel, err)
	}
	return manifest.File{Path: rel, SHA256: hex.EncodeToString(h.Sum(nil)), Size: st.Size()}, nil
}

// syncDir makes dir's entries durable, as far as it can (the manifest's
// hashes, not the fsync, are what an export's checks rely on).
func syncDir(dir string) { objstore.SyncDir(dir) }

// readme is README.txt: what the folder is and how to check it.
func (w *writer) readme() []byte {
	h := w.hdr
	var b strings.Builder
	fmt.Fprintf(&b, "Cairn eDiscovery export %s\n\n", h.ID)
	fmt.Fprintf(&b, "Created %s by %s from the archive %s.\n", h.Created.Format(time.RFC3339), h.CreatedBy.User, h.Origin)
	switch {
	case h.Selection.Case != "":
		fmt.Fprintf(&b, "Selection: the messages the active holds of case %s cover.\n", h.Selection.Case)
	default:
		fmt.Fprintf(&b, "Selection: the messages matching the search %q.\n", h.Selection.Query)
	}
	fmt.Fprintf(&b, "%d messages (%d bytes), %d ledger entries, proven against the signed checkpoint of %d entries.\n\n",
		h.Counts.Messages, h.Counts.Bytes, h.Counts.Entries, h.Checkpoint.Size)
	if h.Layout == FormatMbox {
		b.WriteString("The messages are in messages.mbox (mboxrd); manifest.json gives each one's byte range.\n")
	} else {
		b.WriteString("The messages are in messages/, one file each, named <ledger seq>-<SHA-256>.eml, byte for byte as archived.\n")
	}
	b.WriteString(`manifest.json lists every message with its SHA-256, the salt that opens the
archive ledger's commitment to it, its ledger entries and their Merkle
inclusion proofs; manifest.csv is the same list for spreadsheets;
manifest.sig is the archive's signature over manifest.json.

To check this export without the archive, get the archive's public key
from its operator (the file keys/ledger.key.pub; not from this folder,
which anyone could rebuild with a key of their own) and run

    cairn verify-export <this folder> --key <key file or key>

For reference, the key that signed this export is
` + h.PublicKey + `

Cairn's docs/FORMAT.md (section 11) specifies every file, so that a
verifier can also be written independently.
`)
	return []byte(b.String())
}
