package importer

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// errCompressed marks a message file compressed in a format the importer
// cannot read.
var errCompressed = errors.New("compressed")

// decompress undoes the compression some servers apply to stored message
// files (Dovecot's zlib and mail_compress plugins keep Maildir files as gzip,
// bzip2, xz, lz4 or zstd). A message never starts with these magic numbers:
// RFC 5322 text starts with a printable header field. It returns raw
// unchanged, with method "", when raw is not compressed. gzip and bzip2 are
// read; the others are refused with errCompressed, naming the format. Output
// over max is errTooLarge.
func decompress(raw []byte, max int64) (out []byte, method string, err error) {
	var zr io.Reader
	switch {
	case bytes.HasPrefix(raw, []byte{0x1f, 0x8b}):
		method = "gzip"
		gz, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, method, fmt.Errorf("gzip: %w", err)
		}
		zr = gz
	case bytes.HasPrefix(raw, []byte("BZh")) && len(raw) >= 10 && bytes.Equal(raw[4:10], []byte("1AY&SY")):
		method = "bzip2"
		zr = bzip2.NewReader(bytes.NewReader(raw))
	case bytes.HasPrefix(raw, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, "zstd", fmt.Errorf("%w with zstd (Dovecot mail_compress?); decompress it before importing", errCompressed)
	case bytes.HasPrefix(raw, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, "xz", fmt.Errorf("%w with xz (Dovecot mail_compress?); decompress it before importing", errCompressed)
	case bytes.HasPrefix(raw, []byte{0x04, 0x22, 0x4d, 0x18}), bytes.HasPrefix(raw, []byte("Dovecot-LZ4")):
		return nil, "lz4", fmt.Errorf("%w with lz4 (Dovecot mail_compress?); decompress it before importing", errCompressed)
	default:
		return raw, "", nil
	}
	out, err = readAllInto(make([]byte, 0, 2*len(raw)+512), io.LimitReader(zr, max+1))
	if err != nil {
		return nil, method, fmt.Errorf("%s: %w", method, err)
	}
	if int64(len(out)) > max {
		return nil, method, errTooLarge
	}
	return out, method, nil
}
