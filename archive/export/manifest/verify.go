package manifest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Problem kinds found by Verify. Each names one kind of damage.
const (
	ProblemSignature  = "signature"  // manifest.sig is missing, does not verify with the key, or is not a manifest signature
	ProblemManifest   = "manifest"   // manifest.json was changed after signing, does not parse, or contradicts itself
	ProblemCheckpoint = "checkpoint" // the checkpoint's signature does not verify, or its fields differ from its signed text
	ProblemMissing    = "missing"    // a file the manifest lists is gone
	ProblemExtra      = "extra"      // a file the manifest does not list is in the folder
	ProblemAltered    = "altered"    // a file's SHA-256 or size differs from the manifest's
	ProblemContent    = "content"    // a message does not open the ledger's content commitment with its salt
	ProblemEnvelope   = "envelope"   // an envelope does not open its entry's envelope commitment
	ProblemEntry      = "entry"      // an entry line is malformed or does not belong to its message
	ProblemProof      = "proof"      // an inclusion proof does not lead to the checkpoint's root
	ProblemCustodians = "custodians" // a message's custodians differ from those of its envelopes
	ProblemCSV        = "csv"        // manifest.csv differs from manifest.json
	ProblemMbox       = "mbox"       // a record of messages.mbox is malformed, or bytes belong to no message
)

// Problem is one finding.
type Problem struct {
	Kind string
	// Seq is the message concerned (its ledger seq), or -1.
	Seq int64
	// File is the file concerned, relative to the export folder, if any.
	File   string
	Detail string
}

func (p Problem) String() string {
	s := p.Kind
	if p.Seq >= 0 {
		s += fmt.Sprintf(" message %d", p.Seq)
	}
	if p.File != "" {
		s += " " + p.File
	}
	return s + ": " + p.Detail
}

// Report is the outcome of Verify.
type Report struct {
	Problems []Problem
	// Header is the manifest's header, when it parsed.
	Header *Header
	// Checkpoint is the verified checkpoint: origin, size, root.
	Origin string
	Size   uint64
	Root   [32]byte
	// What was checked.
	Messages, Entries int64
	Bytes             int64
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Options tune Verify.
type Options struct {
	// Progress, if set, is called after each message with the messages and
	// bytes checked and the manifest's totals.
	Progress func(messages, totalMessages, bytes, totalBytes int64)
}

// Verify checks the export in dir with the archive's public key v alone:
// the manifest's signature and digest, the checkpoint's signature, every
// message file's SHA-256 and content commitment (with its salt), every
// envelope commitment, every inclusion proof against the checkpoint's root,
// the custodians, manifest.csv and the other listed files, and that the
// folder holds nothing else. It names each problem in the Report; it
// returns an error only when it cannot run (ctx ended, a read error other
// than a missing file).
func Verify(ctx context.Context, dir string, v note.Verifier, opts Options) (*Report, error) {
	vr := &verifier{ctx: ctx, dir: dir, key: v, opts: opts, rep: &Report{}, expected: map[string]bool{
		FileManifest: true, FileSignature: true,
	}}
	if err := vr.run(); err != nil {
		return vr.rep, err
	}
	return vr.rep, nil
}

type verifier struct {
	ctx  context.Context
	dir  string
	key  note.Verifier
	opts Options
	rep  *Report

	hdr      *Header
	root     []byte // the signed root; nil when the checkpoint did not verify
	expected map[string]bool

	csv      *csv.Reader
	csvFile  *os.File
	csvDone  bool
	mbox     *os.File
	mboxEnd  int64 // where the next record must start
	mboxSize int64
	lastSeq  int64
}

func (vr *verifier) problem(kind string, seq int64, file, format string, args ...any) {
	vr.rep.Problems = append(vr.rep.Problems, Problem{Kind: kind, Seq: seq, File: file, Detail: fmt.Sprintf(format, args...)})
}

func (vr *verifier) path(rel string) string { return filepath.Join(vr.dir, filepath.FromSlash(rel)) }

func (vr *verifier) run() error {
	if st, err := os.Stat(vr.dir); err != nil || !st.IsDir() {
		return fmt.Errorf("manifest: %s is not an export folder", vr.dir)
	}
	// The signature first: it says which manifest the archive signed.
	sigID, digest, sigOK := vr.checkSignature()
	f, err := vr.openRegular(FileManifest)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			vr.problem(ProblemMissing, -1, FileManifest, "the manifest is gone")
			return vr.walk()
		}
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return fmt.Errorf("manifest: read %s: %w", FileManifest, err)
	}
	if sigOK && !bytes.Equal(h.Sum(nil), digest[:]) {
		vr.problem(ProblemManifest, -1, FileManifest, "its SHA-256 is %x, the signature covers %x: the manifest was changed after it was signed", h.Sum(nil), digest[:])
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	vr.lastSeq = -1
	err = Decode(f, func(hd *Header) error {
		return vr.header(hd, sigID, sigOK)
	}, vr.message)
	f.Close()
	if vr.mbox != nil {
		defer vr.mbox.Close()
	}
	if vr.csvFile != nil {
		defer vr.csvFile.Close()
	}
	if err != nil {
		if ctxErr := vr.ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		vr.problem(ProblemManifest, -1, FileManifest, "%v", err)
		return vr.walk()
	}
	vr.finish()
	return vr.walk()
}

// checkSignature opens manifest.sig.
func (vr *verifier) checkSignature() (id string, digest [32]byte, ok bool) {
	b, err := vr.readSmall(FileSignature, 64<<10)
	if err != nil {
		vr.problem(ProblemMissing, -1, FileSignature, "the manifest's signature is gone: %v", err)
		return "", digest, false
	}
	id, digest, err = OpenSignature(b, vr.key)
	if err != nil {
		vr.problem(ProblemSignature, -1, FileSignature, "does not verify with key %s: %v", vr.key.Name(), err)
		return "", digest, false
	}
	return id, digest, true
}

func (vr *verifier) header(h *Header, sigID string, sigOK bool) error {
	vr.hdr = h
	vr.rep.Header = h
	if sigOK && h.ID != sigID {
		vr.problem(ProblemManifest, -1, FileManifest, "export id %q, the signature is for export %q", h.ID, sigID)
	}
	if h.ID == "" {
		vr.problem(ProblemManifest, -1, FileManifest, "no export id")
	}
	if h.Origin != vr.key.Name() {
		vr.problem(ProblemManifest, -1, FileManifest, "origin %q, the key is %q's", h.Origin, vr.key.Name())
	}
	if pk, err := note.NewVerifier(h.PublicKey); err != nil || pk.Name() != vr.key.Name() || pk.KeyHash() != vr.key.KeyHash() {
		vr.problem(ProblemManifest, -1, FileManifest, "public_key %q is not the key verifying it", h.PublicKey)
	}
	vr.checkpoint(&h.Checkpoint)

	// The covered files: exactly manifest.csv, README.txt and, for mbox,
	// messages.mbox.
	want := []string{FileCSV, FileReadme}
	if h.Layout == LayoutMbox {
		want = append(want, FileMbox)
	} else {
		vr.expected[DirMessages+"/"] = true
	}
	var got []string
	for _, f := range h.Files {
		got = append(got, f.Path)
		if !slices.Contains(want, f.Path) || vr.expected[f.Path] {
			vr.problem(ProblemManifest, -1, FileManifest, "files lists %q: want each of %s once", f.Path, strings.Join(want, ", "))
			continue
		}
		vr.expected[f.Path] = true
		vr.checkFile(f)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			vr.problem(ProblemManifest, -1, FileManifest, "files does not list %s", w)
		}
	}
	if vr.expected[FileCSV] {
		if f, err := vr.openRegular(FileCSV); err == nil {
			vr.csvFile = f
			br := bufio.NewReader(f)
			if bom, err := br.Peek(len(CSVBOM)); err == nil && string(bom) == CSVBOM {
				br.Discard(len(CSVBOM))
			} else {
				vr.problem(ProblemCSV, -1, FileCSV, "it does not start with a UTF-8 byte order mark")
			}
			vr.csv = csv.NewReader(br)
			vr.csv.FieldsPerRecord = len(CSVHeader)
			vr.csv.ReuseRecord = true
			row, err := vr.csv.Read()
			if err != nil || !slices.Equal(row, CSVHeader) {
				vr.problem(ProblemCSV, -1, FileCSV, "the header row is not %s", strings.Join(CSVHeader, ","))
				vr.csv = nil
			}
		}
	}
	if h.Layout == LayoutMbox && vr.expected[FileMbox] {
		f, err := vr.openRegular(FileMbox)
		if err == nil {
			vr.mbox = f
			if st, err := f.Stat(); err == nil {
				vr.mboxSize = st.Size()
			}
		}
	}
	return nil
}

// checkpoint verifies the checkpoint's signature and compares its signed
// text with the manifest's fields; the root used for proofs is the signed
// one.
func (vr *verifier) checkpoint(c *Checkpoint) {
	n, err := note.Open([]byte(c.Signed), note.VerifierList(vr.key))
	if err != nil {
		vr.problem(ProblemCheckpoint, -1, FileManifest, "the checkpoint's signature does not verify with key %s: %v", vr.key.Name(), err)
		return
	}
	origin, size, root, err := ParseCheckpoint(n.Text)
	if err != nil {
		vr.problem(ProblemCheckpoint, -1, FileManifest, "%v", err)
		return
	}
	if origin != vr.key.Name() {
		vr.problem(ProblemCheckpoint, -1, FileManifest, "the checkpoint's origin %q is not the key's name %q", origin, vr.key.Name())
		return
	}
	if c.Origin != origin || c.Size != size || c.Root != hex.EncodeToString(root[:]) {
		vr.problem(ProblemCheckpoint, -1, FileManifest, "origin, size or root (%q, %d, %s) differ from the signed checkpoint (%q, %d, %x)", c.Origin, c.Size, c.Root, origin, size, root[:])
	}
	vr.rep.Origin, vr.rep.Size, vr.rep.Root = origin, size, root
	vr.root = root[:]
}

// ParseCheckpoint parses a checkpoint's text (SPEC: c2sp.org/tlog-checkpoint):
// the origin line, the tree size in decimal, the root hash in base64, each
// ending in a newline, then optional extension lines.
func ParseCheckpoint(text string) (origin string, size uint64, root [32]byte, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" || lines[0] == "" {
		return "", 0, root, errors.New("the checkpoint does not have origin, size and root lines")
	}
	size, err = strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return "", 0, root, fmt.Errorf("the checkpoint's size %q is not a decimal number", lines[1])
	}
	b, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(b) != 32 {
		return "", 0, root, fmt.Errorf("the checkpoint's root %q is not 32 bytes in base64", lines[2])
	}
	copy(root[:], b)
	return lines[0], size, root, nil
}

// checkFile compares a covered file with its size and SHA-256.
func (vr *verifier) checkFile(want File) {
	f, err := vr.openRegular(want.Path)
	if err != nil {
		vr.problem(ProblemMissing, -1, want.Path, "%v", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		vr.problem(ProblemMissing, -1, want.Path, "%v", err)
		return
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 || n != want.Size {
		vr.problem(ProblemAltered, -1, want.Path, "%d bytes with SHA-256 %s, the manifest says %d bytes with SHA-256 %s", n, got, want.Size, want.SHA256)
	}
}

// ledgerEntry is what the verifier reads of an entry line (docs/FORMAT.md §7).
type ledgerEntry struct {
	Seq     *uint64 `json:"seq"`
	Kind    string  `json:"kind"`
	Ref     *uint64 `json:"ref"`
	Message *struct {
		Content string `json:"content"`
		Size    *int64 `json:"size"`
	} `json:"message"`
	Delivery *struct {
		EnvelopeCommit string `json:"envelope_commit"`
	} `json:"delivery"`
}

func (vr *verifier) message(m *Message) error {
	if err := vr.ctx.Err(); err != nil {
		return err
	}
	seq := int64(m.Seq)
	bad := func(kind, format string, args ...any) { vr.problem(kind, seq, "", format, args...) }
	vr.rep.Messages++
	vr.rep.Entries += int64(len(m.Entries))
	vr.rep.Bytes += m.Size
	defer func() {
		if vr.opts.Progress != nil {
			vr.opts.Progress(vr.rep.Messages, vr.hdr.Counts.Messages, vr.rep.Bytes, vr.hdr.Counts.Bytes)
		}
	}()
	if seq <= vr.lastSeq {
		bad(ProblemManifest, "listed after message %d: messages must be in ascending ledger order, each once", vr.lastSeq)
	}
	vr.lastSeq = max(vr.lastSeq, seq)
	vr.checkCSV(m)

	salt, err := hex.DecodeString(m.Salt)
	if err != nil || len(salt) != 32 {
		bad(ProblemManifest, "salt %q is not 32 bytes in hex", m.Salt)
		salt = nil
	}
	if b, err := hex.DecodeString(m.SHA256); err != nil || len(b) != 32 || hex.EncodeToString(b) != m.SHA256 {
		bad(ProblemManifest, "sha256 %q is not 64 lower-case hex digits", m.SHA256)
	}

	// The message's bytes: hashed, and hashed with the salt.
	var content []byte
	sum, commit := sha256.New(), sha256.New()
	commit.Write(salt)
	var n int64
	readOK := false
	switch vr.hdr.Layout {
	case LayoutEML:
		if m.Mbox != nil {
			bad(ProblemManifest, "an mbox span in the eml layout")
		}
		if m.File != EMLName(m.Seq, m.SHA256) {
			bad(ProblemManifest, "file %q: want %q", m.File, EMLName(m.Seq, m.SHA256))
			break
		}
		vr.expected[m.File] = true
		n, readOK = vr.hashFile(seq, m.File, io.MultiWriter(sum, commit))
	case LayoutMbox:
		if m.File != "" || m.Mbox == nil {
			bad(ProblemManifest, "no mbox span (or a file) in the mbox layout")
			break
		}
		raw, ok := vr.mboxRecord(seq, m)
		if ok {
			sum.Write(raw)
			commit.Write(raw)
			n, readOK = int64(len(raw)), true
		}
	}
	if readOK {
		if got := hex.EncodeToString(sum.Sum(nil)); got != m.SHA256 || n != m.Size {
			file := m.File
			if file == "" {
				file = FileMbox
			}
			vr.problem(ProblemAltered, seq, file, "the message has %d bytes with SHA-256 %s, the manifest says %d bytes with SHA-256 %s: it was changed", n, got, m.Size, m.SHA256)
		} else {
			content = commit.Sum(nil)
		}
	}

	// The entries: the message entry, then its deliveries.
	var envelopes [][]byte
	if len(m.Entries) == 0 {
		bad(ProblemManifest, "no ledger entries")
	}
	last := int64(-1)
	for i, e := range m.Entries {
		envelopes = append(envelopes, []byte(e.Envelope))
		vr.entry(seq, i, last, &e, salt, content, m.Size)
		last = max(last, int64(e.Seq))
	}
	if cs, err := Custodians(envelopes); err != nil {
		bad(ProblemEnvelope, "an envelope is not JSON: %v", err)
	} else if !slices.Equal(cs, m.Custodians) && !(len(cs) == 0 && len(m.Custodians) == 0) {
		bad(ProblemCustodians, "custodians %v, the envelopes name %v", m.Custodians, cs)
	}
	return nil
}

// entry checks entry i of message seq: its line, its proof, its
// commitments. content is SHA-256(salt || bytes) when the bytes matched.
func (vr *verifier) entry(seq int64, i int, last int64, e *Entry, salt, content []byte, size int64) {
	bad := func(kind, format string, args ...any) {
		vr.problem(kind, seq, "", "entry %d: "+format, append([]any{e.Seq}, args...)...)
	}
	line := []byte(e.Line)
	var le ledgerEntry
	if err := json.Unmarshal(line, &le); err != nil || le.Seq == nil {
		bad(ProblemEntry, "the line is not a ledger entry")
		return
	}
	if *le.Seq != e.Seq {
		bad(ProblemEntry, "the line is entry %d", *le.Seq)
	}
	if int64(e.Seq) <= last {
		bad(ProblemManifest, "entries must be in ascending order, each once")
	}
	switch {
	case i == 0 && (le.Kind != "message" || int64(e.Seq) != seq || le.Message == nil):
		bad(ProblemEntry, "the first entry must be the message entry %d, it is a %q entry", seq, le.Kind)
	case i > 0 && (le.Kind != "delivery" || le.Ref == nil || int64(*le.Ref) != seq):
		bad(ProblemEntry, "a %q entry that is not a delivery of message %d", le.Kind, seq)
	}

	// RFC 9162 §2.1.3.2: the leaf hash and its path to the signed root.
	if vr.root != nil {
		leaf := sha256.Sum256(append([]byte{0}, line...))
		hashes := make([][]byte, 0, len(e.Proof))
		ok := len(e.Proof) <= 64
		for _, p := range e.Proof {
			b, err := hex.DecodeString(p)
			if err != nil || len(b) != 32 {
				ok = false
				break
			}
			hashes = append(hashes, b)
		}
		switch {
		case e.Seq >= vr.rep.Size:
			bad(ProblemProof, "not covered by the checkpoint of %d entries", vr.rep.Size)
		case !ok:
			bad(ProblemProof, "the proof is not a list of hex SHA-256 hashes")
		default:
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, e.Seq, vr.rep.Size, leaf[:], hashes, vr.root); err != nil {
				bad(ProblemProof, "the inclusion proof does not lead to the checkpoint's root: %v", err)
			}
		}
	}

	if salt == nil {
		return
	}
	if i == 0 && le.Message != nil {
		if le.Message.Size == nil || *le.Message.Size != size {
			bad(ProblemContent, "the entry records a size other than the manifest's %d", size)
		}
		if content != nil && hex.EncodeToString(content) != le.Message.Content {
			bad(ProblemContent, "SHA-256(salt || message) is %x, the ledger committed to %s: the message or its salt is not the archived one", content, le.Message.Content)
		}
	}
	if le.Delivery == nil {
		bad(ProblemEnvelope, "the entry has no delivery")
		return
	}
	c := sha256.New()
	c.Write(salt)
	c.Write([]byte(e.Envelope))
	if hex.EncodeToString(c.Sum(nil)) != le.Delivery.EnvelopeCommit {
		bad(ProblemEnvelope, "SHA-256(salt || envelope) does not match the entry's envelope_commit: the envelope was changed")
	}
}

// hashFile streams an eml file into w.
func (vr *verifier) hashFile(seq int64, rel string, w io.Writer) (int64, bool) {
	f, err := vr.openRegular(rel)
	if err != nil {
		vr.problem(ProblemMissing, seq, rel, "%v", err)
		return 0, false
	}
	defer f.Close()
	n, err := io.Copy(w, f)
	if err != nil {
		vr.problem(ProblemMissing, seq, rel, "%v", err)
		return 0, false
	}
	return n, true
}

// mboxRecord reads and decodes message m's record of messages.mbox.
func (vr *verifier) mboxRecord(seq int64, m *Message) ([]byte, bool) {
	sp := m.Mbox
	if sp.Offset != vr.mboxEnd {
		vr.problem(ProblemMbox, seq, FileMbox, "the record starts at byte %d, the previous one ended at %d: records must tile the file", sp.Offset, vr.mboxEnd)
	}
	if sp.Offset < 0 || sp.Length <= 0 || m.Size < 0 || sp.Length > 2*m.Size+4096 {
		vr.problem(ProblemMbox, seq, FileMbox, "record [%d, +%d) is not a record of a %d-byte message", sp.Offset, sp.Length, m.Size)
		return nil, false
	}
	vr.mboxEnd = sp.Offset + sp.Length
	if vr.mbox == nil {
		return nil, false
	}
	if sp.Offset > vr.mboxSize || sp.Length > vr.mboxSize-sp.Offset {
		vr.problem(ProblemMbox, seq, FileMbox, "record [%d, +%d) is past the end of the file (%d bytes)", sp.Offset, sp.Length, vr.mboxSize)
		return nil, false
	}
	rec := make([]byte, sp.Length)
	if n, err := vr.mbox.ReadAt(rec, sp.Offset); n != len(rec) {
		vr.problem(ProblemMbox, seq, FileMbox, "record [%d, +%d) is past the end of the file: %v", sp.Offset, sp.Length, err)
		return nil, false
	}
	raw, err := ReadMboxRecord(rec, sp.EOLAdded)
	if err != nil {
		vr.problem(ProblemMbox, seq, FileMbox, "record at byte %d: %v", sp.Offset, err)
		return nil, false
	}
	return raw, true
}

// checkCSV compares the next row of manifest.csv with message m.
func (vr *verifier) checkCSV(m *Message) {
	if vr.csv == nil || vr.csvDone {
		return
	}
	row, err := vr.csv.Read()
	if err != nil {
		if err == io.EOF {
			vr.problem(ProblemCSV, int64(m.Seq), FileCSV, "no row for this message (rows removed)")
		} else {
			vr.problem(ProblemCSV, int64(m.Seq), FileCSV, "%v", err)
		}
		vr.csvDone = true
		return
	}
	want := CSVRecord(m)
	for i := range want {
		if row[i] != want[i] {
			vr.problem(ProblemCSV, int64(m.Seq), FileCSV, "column %s is %q, manifest.json says %q", CSVHeader[i], row[i], want[i])
			if row[0] != want[0] {
				vr.csvDone = true // rows are out of step: one problem is enough
			}
			return
		}
	}
}

// finish checks what only the end tells: counts, the rest of the CSV and
// of the mbox.
func (vr *verifier) finish() {
	h := vr.hdr
	if h == nil {
		return
	}
	if h.Counts.Messages != vr.rep.Messages || h.Counts.Entries != vr.rep.Entries || h.Counts.Bytes != vr.rep.Bytes {
		vr.problem(ProblemManifest, -1, FileManifest, "counts say %d messages, %d entries, %d bytes; the manifest lists %d, %d, %d",
			h.Counts.Messages, h.Counts.Entries, h.Counts.Bytes, vr.rep.Messages, vr.rep.Entries, vr.rep.Bytes)
	}
	if vr.csv != nil && !vr.csvDone {
		if row, err := vr.csv.Read(); err != io.EOF {
			seq := int64(-1)
			if err == nil {
				if n, e := strconv.ParseInt(row[0], 10, 64); e == nil {
					seq = n
				}
			}
			vr.problem(ProblemCSV, seq, FileCSV, "a row for no message of the manifest (rows added)")
		}
	}
	if h.Layout == LayoutMbox && vr.mbox != nil {
		if st, err := vr.mbox.Stat(); err == nil && st.Size() != vr.mboxEnd {
			vr.problem(ProblemMbox, -1, FileMbox, "bytes %d to %d belong to no message of the manifest (added, or records removed)", vr.mboxEnd, st.Size())
		}
	}
}

// walk reports every file of the folder the manifest does not account for,
// and every listed message file that is gone is reported where it is read.
func (vr *verifier) walk() error {
	return filepath.WalkDir(vr.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(vr.dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if !vr.expected[rel+"/"] {
				vr.problem(ProblemExtra, -1, rel+"/", "a folder the manifest does not list")
				return fs.SkipDir
			}
			return nil
		}
		if !vr.expected[rel] {
			vr.problem(ProblemExtra, -1, rel, "a file the manifest does not list (added)")
		} else if !d.Type().IsRegular() {
			vr.problem(ProblemExtra, -1, rel, "not a regular file")
		}
		return nil
	})
}

// openRegular opens a file of the export, refusing anything but a regular
// file inside the folder (a symbolic link could point anywhere).
func (vr *verifier) openRegular(rel string) (*os.File, error) {
	if !fs.ValidPath(rel) {
		return nil, fmt.Errorf("%q is not a path inside the export", rel)
	}
	st, err := os.Lstat(vr.path(rel))
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	return os.Open(vr.path(rel))
}

func (vr *verifier) readSmall(rel string, max int64) ([]byte, error) {
	f, err := vr.openRegular(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", rel, max)
	}
	return b, nil
}
