package importer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-archive/cairn/ingest"
)

// Run imports every message under paths (files and directories, detected as
// the package documentation says) into archiver and returns what it did.
//
// One goroutine reads the sources in the order given and hands messages out
// in order; opts.Workers goroutines archive them, so receipts complete out of
// order. A message counts as imported only once archiver returned its
// Receipt. Problems with single messages or files (refusals, read errors,
// archiver errors after retries) are counted and listed in the Summary and
// do not stop the import.
//
// Before reading any message Run resolves every path; a path that does not
// exist or cannot be read is an error ("importer: PATH: cause") and nothing
// is imported. It then walks the paths once, reading directories only, to
// know Progress.TotalBytes before the first message. Run returns a non-nil error, with the Summary of what was
// done, only when it stopped early: ctx was cancelled, or opts.MaxFailures
// messages failed (ErrTooManyFailures). On cancel no new message is handed
// out, and messages already handed to the archiver finish: Archive runs
// under a context that is not cancelled with ctx. Because DeliveryKeys
// depend only on where each message is, running the same import again after
// a stop, a crash or a kill -9 archives exactly what is missing; the rest
// comes back as Replayed.
func Run(ctx context.Context, archiver ingest.Archiver, paths []string, opts Options) (Summary, error) {
	if archiver == nil {
		return Summary{}, errors.New("importer: no archiver")
	}
	if len(paths) == 0 {
		return Summary{}, errors.New("importer: no paths to import")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	roots := make([]root, 0, len(paths))
	for _, p := range paths {
		rt, err := resolveRoot(p)
		if err != nil {
			return Summary{}, err
		}
		roots = append(roots, rt)
	}

	r := &runner{arch: archiver, opts: opts, jobs: make(chan *job), mem: newBudget(opts.MemoryBudget)}
	r.ctx, r.stop = context.WithCancelCause(ctx)
	defer r.stop(nil)
	r.archCtx = context.WithoutCancel(ctx)

	// Plan: the total size, for the progress bar. It walks the same
	// entries as the import, reading directories only.
	for _, rt := range roots {
		err := walkRoot(rt, func(e *entry) error {
			if e.kind == entryFile || e.kind == entryMaildirMsg {
				r.prog.TotalBytes += e.fileSize()
			}
			return r.ctx.Err()
		})
		if err != nil {
			return r.summary(), r.stopError()
		}
	}

	reporterDone := make(chan struct{})
	reporterStop := make(chan struct{})
	go r.report(reporterStop, reporterDone)

	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range r.jobs {
				r.work(j)
			}
		}()
	}
	for _, rt := range roots {
		if walkRoot(rt, r.produce) != nil {
			break
		}
	}
	close(r.jobs)
	wg.Wait()
	close(reporterStop)
	<-reporterDone
	if opts.Progress != nil {
		opts.Progress(r.progress())
	}
	return r.summary(), r.stopError()
}

// runner is the state of one Run.
type runner struct {
	mem     *budget // bytes of messages in memory
	arch    ingest.Archiver
	opts    Options
	ctx     context.Context // cancelled by the caller or by too many failures
	stop    context.CancelCauseFunc
	archCtx context.Context // for Archive: not cancelled, so in-flight messages finish
	jobs    chan *job       // unbuffered: a message waits in the reader, not in a queue

	mu     sync.Mutex
	sum    Summary
	kept   map[IssueKind]int
	prog   Progress
	failed int
}

// jobKind says what a worker does with a job.
type jobKind int

const (
	jobRaw     jobKind = iota // archive raw with env (from an mbox or a .gz)
	jobEML                    // read the file at path: one message (or an mbox named .eml)
	jobMaildir                // read the Maildir message file at path
)

// job is one unit of work for a worker.
type job struct {
	kind   jobKind
	env    *ingest.Envelope
	raw    []byte
	path   string
	offset int64 // mbox offset for issues, -1 otherwise
	bytes  int64 // for jobRaw: source bytes this job completes, for progress
	folder string
	mdDir  string
	name   string
}

// produce handles one entry of the walk, on the reader goroutine. Its error
// (only a stop) ends the walk.
func (r *runner) produce(e *entry) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	switch e.kind {
	case entryError:
		r.issue(IssueFailed, e.path, -1, "cannot read directory: "+e.err.Error(), 0)
	case entrySkip:
		r.issue(IssueSkipped, e.path, -1, e.reason, 0)
	case entryMaildirMsg:
		// The worker stats the file: the reader does no I/O per message file.
		return r.send(&job{kind: jobMaildir, path: e.path, offset: -1, folder: e.folder, mdDir: e.mdDir, name: e.name})
	case entryFile:
		return r.file(e)
	}
	return r.ctx.Err()
}

// send hands j to a worker, or gives up when the import stops.
func (r *runner) send(j *job) error {
	// Messages read here wait for room in the memory budget; files that
	// workers read themselves take theirs when they read.
	if j.raw != nil {
		if err := r.mem.acquire(r.ctx, int64(len(j.raw))); err != nil {
			return err
		}
	}
	// A stopped import hands out nothing more: select alone would pick
	// at random between a waiting worker and the stop, and under load an
	// import stopped by MaxFailures went on failing messages.
	if err := r.ctx.Err(); err != nil {
		if j.raw != nil {
			r.mem.release(int64(len(j.raw)))
		}
		return err
	}
	select {
	case r.jobs <- j:
		return nil
	case <-r.ctx.Done():
		if j.raw != nil {
			r.mem.release(int64(len(j.raw)))
		}
		return r.ctx.Err()
	}
}

// file detects what a file holds and imports it.
func (r *runner) file(e *entry) error {
	lower := strings.ToLower(e.name)
	switch {
	case strings.HasSuffix(lower, ".gz"):
		return r.gzipFile(e)
	case strings.HasSuffix(lower, ".eml"):
		// No need to look first: workers read .eml files in parallel.
		return r.send(&job{kind: jobEML, path: e.path, offset: -1, folder: e.folder})
	}
	f, err := os.Open(e.path)
	if err != nil {
		r.issue(IssueFailed, e.path, -1, "open: "+unwrapPath(err).Error(), e.fileSize())
		return r.ctx.Err()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		r.issue(IssueFailed, e.path, -1, "stat: "+unwrapPath(err).Error(), e.fileSize())
		return r.ctx.Err()
	}
	br := bufio.NewReaderSize(f, mboxBufSize)
	// A read error after some bytes shows again where the bytes end.
	head, err := br.Peek(sniffSize)
	if len(head) == 0 && err != nil && err != io.EOF {
		r.issue(IssueFailed, e.path, -1, "read: "+unwrapPath(err).Error(), fi.Size())
		return r.ctx.Err()
	}
	// A .raw file is a saved message by name, whatever its first bytes
	// look like (corpora of malformed mail use it).
	switch classify(head, e.name, e.explicit || r.opts.AllFiles || strings.HasSuffix(lower, ".raw")) {
	case kindMbox:
		return r.mbox(e, br, fi, nil)
	case kindMessage:
		return r.send(&job{kind: jobEML, path: e.path, offset: -1, folder: e.folder})
	case kindEmpty:
		r.issue(IssueSkipped, e.path, -1, "empty file", fi.Size())
	default:
		r.issue(IssueSkipped, e.path, -1, "not a mail file (neither an mbox nor a message header)", fi.Size())
	}
	return r.ctx.Err()
}

// gzipFile imports a gzip-compressed mbox or message.
func (r *runner) gzipFile(e *entry) error {
	f, err := os.Open(e.path)
	if err != nil {
		r.issue(IssueFailed, e.path, -1, "open: "+unwrapPath(err).Error(), e.fileSize())
		return r.ctx.Err()
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		r.issue(IssueFailed, e.path, -1, "stat: "+unwrapPath(err).Error(), e.fileSize())
		return r.ctx.Err()
	}
	cr := &countingReader{r: f}
	zr, err := gzip.NewReader(bufio.NewReader(cr))
	if err != nil {
		r.issue(IssueFailed, e.path, -1, "gzip: "+err.Error(), fi.Size())
		return r.ctx.Err()
	}
	br := bufio.NewReaderSize(zr, mboxBufSize)
	head, err := br.Peek(sniffSize)
	if len(head) == 0 && err != nil && err != io.EOF {
		r.issue(IssueFailed, e.path, -1, "gzip: "+err.Error(), fi.Size())
		return r.ctx.Err()
	}
	inner := e.name[:len(e.name)-len(".gz")]
	takeAll := e.explicit || r.opts.AllFiles || strings.HasSuffix(strings.ToLower(inner), ".eml")
	switch classify(head, inner, takeAll) {
	case kindMbox:
		return r.mbox(e, br, fi, cr)
	case kindMessage:
		raw, err := io.ReadAll(io.LimitReader(br, r.opts.MaxMessageSize+1))
		switch {
		case err != nil:
			r.issue(IssueFailed, e.path, -1, "gzip: "+err.Error(), fi.Size())
		case int64(len(raw)) > r.opts.MaxMessageSize:
			r.issue(IssueRefused, e.path, -1, r.tooLarge(), fi.Size())
		default:
			env := r.envelope(emlKey(e.path), fi.ModTime(), "mtime", map[string]string{
				"format": "eml", "path": metaPath(e.path), "folder": e.folder,
			})
			return r.send(&job{kind: jobRaw, env: env, raw: raw, path: e.path, offset: -1, bytes: fi.Size()})
		}
	case kindEmpty:
		r.issue(IssueSkipped, e.path, -1, "empty file", fi.Size())
	default:
		r.issue(IssueSkipped, e.path, -1, "not a mail file (neither an mbox nor a message header)", fi.Size())
	}
	return r.ctx.Err()
}

// mbox reads the mbox in br (the file fi; cr counts compressed bytes for a
// .gz) and hands its messages out in order.
func (r *runner) mbox(e *entry, br *bufio.Reader, fi os.FileInfo, cr *countingReader) error {
	rd := newMboxReader(br, r.opts.Quoting, r.opts.MaxMessageSize, 0)
	folder := mboxFolder(e.path)
	var handed int64 // source bytes accounted for so far
	for {
		sp, err := rd.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.issue(IssueFailed, e.path, rd.off, "read: "+unwrapPath(err).Error()+" (the rest of the file is not imported)", 0)
			break
		}
		n := sp.Length
		if cr != nil {
			n = cr.n - handed
		}
		handed += n
		switch {
		case sp.Err == errNoFromLine && sp.blank:
			r.addBytes(n)
		case sp.Err == errNoFromLine:
			r.issue(IssueRefused, e.path, sp.Offset, fmt.Sprintf("the first line is not a From_ line: %d bytes before the first message are not imported", sp.Length), n)
		case sp.Err == errTooLarge:
			r.issue(IssueRefused, e.path, sp.Offset, r.tooLarge(), n)
		case len(sp.Raw) == 0:
			r.issue(IssueRefused, e.path, sp.Offset, "empty message", n)
		default:
			env := r.mboxEnvelope(e.path, folder, fi, sp)
			if err := r.send(&job{kind: jobRaw, env: env, raw: sp.Raw, path: e.path, offset: sp.Offset, bytes: n}); err != nil {
				return err
			}
		}
	}
	if rest := fi.Size() - handed; rest > 0 {
		r.addBytes(rest)
	}
	return r.ctx.Err()
}

// mboxEnvelope describes one mbox message.
func (r *runner) mboxEnvelope(path, folder string, fi os.FileInfo, sp *mboxSpan) *ingest.Envelope {
	at, src := fi.ModTime(), "mtime"
	if t, ok := parseFromLineDate(sp.FromLine, r.opts.Location); ok {
		at, src = t, "from_line"
	}
	return r.envelope(mboxKey(path, sp.Offset), at, src, map[string]string{
		"format":    "mbox",
		"path":      metaPath(path),
		"offset":    strconv.FormatInt(sp.Offset, 10),
		"from_line": strings.ToValidUTF8(sp.FromLine, "\uFFFD"),
		"quoting":   r.opts.Quoting.String(),
		"folder":    folder,
	})
}

// mboxFolder names the folder an mbox file stands for: its name without
// .gz, .mbox or .mbx; for an Apple Mail bundle (Name.mbox/mbox), the bundle.
func mboxFolder(path string) string {
	name := filepath.Base(path)
	name = strings.TrimSuffix(name, ".gz")
	if name == "mbox" {
		if dir := filepath.Base(filepath.Dir(path)); strings.HasSuffix(strings.ToLower(dir), ".mbox") {
			name = dir
		}
	}
	lower := strings.ToLower(name)
	for _, ext := range []string{".mbox", ".mbx"} {
		if strings.HasSuffix(lower, ext) && len(name) > len(ext) {
			name = name[:len(name)-len(ext)]
			break
		}
	}
	return name
}

// envelope builds the Envelope of one import delivery. Meta entries with
// empty values are left out.
func (r *runner) envelope(key string, at time.Time, timeSource string, meta map[string]string) *ingest.Envelope {
	for k, v := range meta {
		if v == "" {
			delete(meta, k)
		}
	}
	meta["time_source"] = timeSource
	return &ingest.Envelope{
		Source:      ingest.SourceImport,
		Custodians:  slices.Clone(r.opts.Custodians),
		ReceivedAt:  at,
		DeliveryKey: key,
		Meta:        meta,
	}
}

// metaPath is a path as Meta records it: escaped like the keys, so that it
// is valid UTF-8 and names the file unambiguously.
func metaPath(p string) string { return escapeKey(p) }

func (r *runner) tooLarge() string {
	return fmt.Sprintf("message over the %d-byte size limit", r.opts.MaxMessageSize)
}

// work runs one job on a worker goroutine.
func (r *runner) work(j *job) {
	switch j.kind {
	case jobRaw:
		r.archive(j.env, j.raw, j.path, j.offset, j.bytes)
		r.mem.release(int64(len(j.raw)))
	case jobEML:
		r.eml(j)
	case jobMaildir:
		r.maildirMessage(j)
	}
}

// readFile reads the message file f (at path), refusing it without reading
// when it is over the limit, and decompresses it if a mail server stored it
// compressed. On a problem it reports an issue and returns nil raw. fi is
// nil only when f could not be stat'ed.
func (r *runner) readFile(path string, f *os.File) (raw []byte, fi os.FileInfo, compression string) {
	fi, err := f.Stat()
	if err != nil {
		r.fail(path, -1, "stat: "+unwrapPath(err).Error(), 0)
		return nil, nil, ""
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() {
		r.issue(IssueSkipped, path, -1, "not a regular file", 0)
		return nil, fi, ""
	}
	if size > r.opts.MaxMessageSize {
		r.issue(IssueRefused, path, -1, r.tooLarge(), size)
		return nil, fi, ""
	}
	// Held until the caller's Archive returns: the caller releases it
	// when raw is not nil; every failure below releases it here.
	if err := r.mem.acquire(r.ctx, size); err != nil {
		r.fail(path, -1, err.Error(), size)
		return nil, fi, ""
	}
	ok := false
	defer func() {
		if !ok {
			r.mem.release(size)
		}
	}()
	raw = make([]byte, 0, size+1)
	raw, err = readAllInto(raw, io.LimitReader(f, r.opts.MaxMessageSize+1))
	if err != nil {
		r.fail(path, -1, "read: "+unwrapPath(err).Error(), size)
		return nil, fi, ""
	}
	raw, compression, err = decompress(raw, r.opts.MaxMessageSize)
	switch {
	case errors.Is(err, errTooLarge):
		r.issue(IssueRefused, path, -1, r.tooLarge(), size)
		return nil, fi, ""
	case errors.Is(err, errCompressed):
		r.issue(IssueRefused, path, -1, err.Error(), size)
		return nil, fi, ""
	case err != nil:
		r.fail(path, -1, err.Error(), size)
		return nil, fi, ""
	}
	ok = true
	return raw, fi, compression
}

// eml imports a file holding one message. A .eml file that starts with a
// From_ line is a small mbox (some clients save one message that way); it is
// read as one, with mbox keys, within the size limit.
func (r *runner) eml(j *job) {
	f, err := os.Open(j.path)
	if err != nil {
		r.fail(j.path, -1, "open: "+unwrapPath(err).Error(), 0)
		return
	}
	raw, fi, compression := r.readFile(j.path, f)
	f.Close()
	if raw == nil {
		return
	}
	defer r.mem.release(fi.Size())
	if !isFromLine(raw) {
		env := r.envelope(emlKey(j.path), fi.ModTime(), "mtime", map[string]string{
			"format": "eml", "path": metaPath(j.path), "folder": j.folder, "compression": compression,
		})
		r.archive(env, raw, j.path, -1, fi.Size())
		return
	}
	rd := newMboxReader(bytes.NewReader(raw), r.opts.Quoting, r.opts.MaxMessageSize, 0)
	for n := fi.Size(); ; n = 0 { // the file's bytes go with its first message
		sp, err := rd.next()
		if err != nil { // io.EOF: a bytes.Reader has no other error
			r.addBytes(n)
			return
		}
		if sp.Err != nil || len(sp.Raw) == 0 {
			r.issue(IssueRefused, j.path, sp.Offset, "empty message", n)
			continue
		}
		r.archive(r.mboxEnvelope(j.path, mboxFolder(j.path), fi, sp), sp.Raw, j.path, sp.Offset, n)
	}
}

// maildirMessage imports one Maildir message file.
func (r *runner) maildirMessage(j *job) {
	path, name := j.path, j.name
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		// Renamed since it was listed (a flag change, new/ to cur/): look
		// for it under its unique name.
		if p := findMaildirMessage(j.mdDir, ParseMaildirName(name).Unique); p != "" {
			path, name = p, filepath.Base(p)
			f, err = os.Open(path)
		}
	}
	if err != nil {
		r.fail(path, -1, "open: "+unwrapPath(err).Error(), 0)
		return
	}
	raw, fi, compression := r.readFile(path, f)
	f.Close()
	if raw == nil {
		return
	}
	defer r.mem.release(fi.Size())
	n := ParseMaildirName(name)
	at, src := maildirReceivedAt(fi.ModTime(), n)
	meta := map[string]string{
		"format":      "maildir",
		"path":        metaPath(path),
		"folder":      folderName(j.folder),
		"maildir":     metaPath(j.mdDir),
		"unique":      escapeKey(n.Unique),
		"compression": compression,
	}
	if strings.HasPrefix(n.Info, "2,") {
		meta["flags"] = escapeKey(n.Flags)
	} else {
		meta["info"] = escapeKey(n.Info)
	}
	r.archive(r.envelope(maildirKey(j.mdDir, n.Unique), at, src, meta), raw, path, -1, fi.Size())
}

// findMaildirMessage returns the path of the message with the given unique
// name in new/ or cur/ of dir, or "".
func findMaildirMessage(dir, unique string) string {
	for _, sub := range []string{"cur", "new"} {
		var found string
		stop := errors.New("found")
		readDirBatches(filepath.Join(dir, sub), func(*entry) error { return nil }, func(de fs.DirEntry) error {
			if ParseMaildirName(de.Name()).Unique == unique {
				found = filepath.Join(dir, sub, de.Name())
				return stop
			}
			return nil
		})
		if found != "" {
			return found
		}
	}
	return ""
}

// archive hands one message to the archiver, retrying temporary errors, and
// records the outcome.
func (r *runner) archive(env *ingest.Envelope, raw []byte, path string, offset, bytesDone int64) {
	if len(raw) == 0 {
		r.issue(IssueRefused, path, offset, "empty message", bytesDone)
		return
	}
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		rc, err := r.arch.Archive(r.archCtx, env, raw)
		if err == nil {
			r.done(rc, path, offset, bytesDone)
			return
		}
		if errors.Is(err, ingest.ErrRefused) {
			r.issue(IssueRefused, path, offset, "archive: "+err.Error(), bytesDone)
			return
		}
		if attempt >= r.opts.Retries {
			r.fail(path, offset, "archive: "+err.Error(), bytesDone)
			return
		}
		select {
		case <-time.After(delay):
			delay *= 4
		case <-r.ctx.Done():
			r.fail(path, offset, "archive: "+err.Error()+" (not retried: the import is stopping)", bytesDone)
			return
		}
	}
}

// done records a receipt.
func (r *runner) done(rc ingest.Receipt, path string, offset, bytesDone int64) {
	r.mu.Lock()
	switch {
	case rc.Replayed:
		r.sum.Replayed++
	case rc.Duplicate:
		r.sum.Duplicates++
	default:
		r.sum.Archived++
	}
	r.mu.Unlock()
	if len(rc.Problems) > 0 {
		reason := strings.Join(rc.Problems, "; ")
		if len(reason) > 500 {
			reason = reason[:500] + "..."
		}
		r.issue(IssueWarning, path, offset, reason, bytesDone)
		return
	}
	r.addBytes(bytesDone)
}

// fail records a failed message and stops the import after MaxFailures.
func (r *runner) fail(path string, offset int64, reason string, bytesDone int64) {
	r.mu.Lock()
	r.failed++
	if r.opts.MaxFailures > 0 && r.failed >= r.opts.MaxFailures {
		// Stopped with the count, under the lock: a worker that made the
		// count and was then descheduled before it stopped the import let
		// the others go on failing messages meanwhile.
		r.stop(fmt.Errorf("%w: %d messages failed, the last: %s", ErrTooManyFailures, r.opts.MaxFailures, reason))
	}
	r.mu.Unlock()
	r.issue(IssueFailed, path, offset, reason, bytesDone)
}

// issue counts and records an issue and the source bytes it completes.
func (r *runner) issue(kind IssueKind, path string, offset int64, reason string, bytesDone int64) {
	is := Issue{Kind: kind, Path: path, Offset: offset, Reason: reason}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch kind {
	case IssueRefused:
		r.sum.Refused++
		r.prog.Refused++
	case IssueFailed:
		r.sum.Failed++
		r.prog.Failed++
	case IssueWarning:
		r.sum.Warnings++
	case IssueSkipped:
		r.sum.Skipped++
	}
	r.prog.Bytes += bytesDone
	if r.kept == nil {
		r.kept = make(map[IssueKind]int)
	}
	if r.kept[kind] < r.opts.MaxIssues {
		r.kept[kind]++
		r.sum.Issues = append(r.sum.Issues, is)
	}
	if r.opts.OnIssue != nil {
		r.opts.OnIssue(is)
	}
}

func (r *runner) addBytes(n int64) {
	r.mu.Lock()
	r.prog.Bytes += n
	r.mu.Unlock()
}

func (r *runner) progress() Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.prog
	p.Messages = r.sum.Messages()
	return p
}

func (r *runner) summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	s.Bytes = r.prog.Bytes
	s.Issues = slices.Clone(r.sum.Issues)
	return s
}

// stopError is Run's error: nil unless the import stopped early.
func (r *runner) stopError() error {
	if r.ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(r.ctx)
	if errors.Is(cause, ErrTooManyFailures) {
		return cause
	}
	return fmt.Errorf("importer: interrupted: %w", cause)
}

// report calls Options.Progress every interval until stop is closed.
func (r *runner) report(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if r.opts.Progress == nil {
		return
	}
	r.opts.Progress(r.progress())
	t := time.NewTicker(r.opts.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.opts.Progress(r.progress())
		case <-stop:
			return
		}
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readAllInto reads r to the end, appending to b.
func readAllInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
