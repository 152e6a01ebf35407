package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// FileConfig configures a sink that appends one record per line to a file
// (the embedded default SIEM: JSON lines), with size-based rotation.
type FileConfig struct {
	// Name keys the sink's cursor; keep it stable (default "file:"+Path).
	Name string `yaml:"name" mapstructure:"name"`
	// Path is the file appended to; created with mode 0600 if missing.
	Path string `yaml:"path" mapstructure:"path"`
	// Format is jsonl (default), cef, leef or syslog (RFC 5424 lines).
	Format Format `yaml:"format" mapstructure:"format"`
	// Render tunes the cef, leef and syslog formats.
	Render RenderOptions `yaml:"render" mapstructure:"render"`
	// MaxBytes rotates the file before it would grow past this size
	// (default 100 MiB; -1 never rotates).
	MaxBytes int64 `yaml:"max_bytes" mapstructure:"max_bytes"`
	// MaxFiles is how many rotated files to keep, oldest removed first
	// (default 0: keep all; the archive's own chain is the record, but a
	// compliance copy is rarely deleted by its writer).
	MaxFiles int `yaml:"max_files" mapstructure:"max_files"`
	// NoSync skips the fsync after each batch. Then a crash can lose lines
	// the cursor already passed: only for files that are not a record.
	NoSync bool `yaml:"no_sync" mapstructure:"no_sync"`
}

// Validate checks c and fills defaults.
func (c *FileConfig) Validate() error {
	if c.Path == "" {
		return errors.New("audit: file sink: path is required")
	}
	if c.Name == "" {
		c.Name = "file:" + c.Path
	}
	if c.Format == "" {
		c.Format = FormatJSONL
	}
	if _, err := ParseFormat(string(c.Format)); err != nil {
		return fmt.Errorf("audit: file sink %s: %w", c.Name, err)
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 100 << 20
	}
	if c.MaxFiles < 0 {
		return fmt.Errorf("audit: file sink %s: max_files < 0", c.Name)
	}
	return c.Render.Validate()
}

// FileSink appends rendered entries to a file. A record is acknowledged
// once written and fsync'd. After a crash, the lines of the last batch may
// appear twice (at-least-once); a torn last line is cut off on reopen.
type FileSink struct {
	c    FileConfig
	r    *Renderer
	f    *os.File
	size int64 // bytes in f known good (whole lines)
	buf  []byte
	last Seq
	now  func() time.Time
}

var _ Sink = (*FileSink)(nil)

// NewFileSink validates c and returns the sink; the file opens on first use.
func NewFileSink(c FileConfig) (*FileSink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	r, err := NewRenderer(c.Format, c.Render)
	if err != nil {
		return nil, err
	}
	return &FileSink{c: c, r: r, now: time.Now}, nil
}

// Name implements Sink.
func (s *FileSink) Name() string { return s.c.Name }

func (s *FileSink) open() error {
	f, err := os.OpenFile(s.c.Path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return err
	}
	// Cut a torn last line (a crash in the middle of a write).
	if good := lastNewline(f, size); good != size {
		if err := f.Truncate(good); err != nil {
			f.Close()
			return err
		}
		size = good
		if _, err := f.Seek(size, io.SeekStart); err != nil {
			f.Close()
			return err
		}
	}
	s.f, s.size = f, size
	return nil
}

// lastNewline returns the offset just past the last '\n' (0 if none).
func lastNewline(f *os.File, size int64) int64 {
	var b [4096]byte
	for end := size; end > 0; {
		start := max(0, end-int64(len(b)))
		n, err := f.ReadAt(b[:end-start], start)
		if err != nil && n < int(end-start) {
			return size // cannot tell; leave it
		}
		if i := bytes.LastIndexByte(b[:n], '\n'); i >= 0 {
			return start + int64(i) + 1
		}
		end = start
	}
	return 0
}

// Send implements Sink.
func (s *FileSink) Send(ctx context.Context, entries []Entry) (Seq, error) {
	if s.f == nil {
		if err := s.open(); err != nil {
			return s.last, fmt.Errorf("audit: file sink %s: %w", s.c.Name, err)
		}
	}
	s.buf = s.buf[:0]
	for i := range entries {
		s.buf = s.r.Append(s.buf, &entries[i])
		s.buf = append(s.buf, '\n')
	}
	if s.c.MaxBytes > 0 && s.size > 0 && s.size+int64(len(s.buf)) > s.c.MaxBytes {
		if err := s.rotate(); err != nil {
			return s.last, fmt.Errorf("audit: file sink %s: rotate: %w", s.c.Name, err)
		}
	}
	if _, err := s.f.Write(s.buf); err != nil {
		return s.last, fmt.Errorf("audit: file sink %s: %w", s.c.Name, err)
	}
	if !s.c.NoSync {
		if err := s.f.Sync(); err != nil {
			return s.last, fmt.Errorf("audit: file sink %s: %w", s.c.Name, err)
		}
	}
	s.size += int64(len(s.buf))
	s.last = entries[len(entries)-1].Seq
	return s.last, nil
}

// rotate renames the full file to Path.<UTC time> and starts a new one.
func (s *FileSink) rotate() error {
	if err := s.f.Close(); err != nil {
		return err
	}
	s.f = nil
	rotated := s.c.Path + "." + s.now().UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(s.c.Path, rotated); err != nil {
		return err
	}
	if err := objstore.SyncDir(filepath.Dir(s.c.Path)); err != nil {
		return err
	}
	if s.c.MaxFiles > 0 {
		old, _ := filepath.Glob(s.c.Path + ".*")
		old = slices.DeleteFunc(old, func(p string) bool {
			return len(p) != len(rotated) || !strings.HasSuffix(p, "Z")
		})
		slices.Sort(old)
		for len(old) > s.c.MaxFiles {
			os.Remove(old[0])
			old = old[1:]
		}
	}
	return s.open()
}

// Sync implements Sink: everything written is already acknowledged.
func (s *FileSink) Sync(context.Context) (Seq, error) { return s.last, nil }

// Reset implements Sink: it cuts a partly written batch off the file.
func (s *FileSink) Reset() {
	if s.f != nil {
		s.f.Truncate(s.size)
		s.f.Close()
		s.f = nil
	}
}

// Close implements Sink.
func (s *FileSink) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
