package journal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
)

// entity is one MIME entity located inside the received bytes: offsets are
// absolute, so a body can be returned as a sub-slice of the input.
type entity struct {
	start, end int // the whole entity: header and body
	bodyStart  int // first byte of the body
	fields     []field
}

func (e entity) mediaType() (string, map[string]string, error) {
	ct, ok := get(e.fields, "Content-Type")
	if !ok || ct == "" {
		// RFC 2045 §5.2: the default is text/plain; charset=us-ascii.
		return "text/plain", map[string]string{"charset": "us-ascii"}, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil, err
	}
	return mt, params, nil
}

func (e entity) transferEncoding() string {
	cte, _ := get(e.fields, "Content-Transfer-Encoding")
	cte = strings.ToLower(strings.TrimSpace(cte))
	// A comment or parameter after the token is not allowed, but seen.
	if i := strings.IndexAny(cte, " \t;("); i >= 0 {
		cte = cte[:i]
	}
	return cte
}

// parseEntity locates the header and body of the entity in raw[start:end].
func parseEntity(raw []byte, start, end int) entity {
	header, body := splitHeader(raw[start:end])
	return entity{start: start, end: end, bodyStart: start + body, fields: parseFields(header)}
}

// errNoBoundary and friends name what is wrong with a multipart body.
var (
	errNoBoundary   = errors.New("multipart without a boundary parameter")
	errNoDelimiter  = errors.New("multipart body has no delimiter line")
	errNoCloseDelim = errors.New("multipart body has no close-delimiter")
	errBadBoundary  = errors.New("boundary parameter is longer than 70 characters")
)

// maxDepth bounds the nesting of multiparts walked when looking for the
// report's parts; Exchange writes a flat multipart/mixed.
const maxDepth = 4

// splitMultipart returns the body parts of the multipart entity e, per
// RFC 2046 §5.1.1: a delimiter is "--" boundary at the start of a line,
// followed by optional transport padding (white space) and the line end;
// the line ending before it belongs to the delimiter, not to the part.
// A missing close-delimiter is reported with the parts found so far.
func splitMultipart(raw []byte, e entity, boundary string) ([]entity, error) {
	if boundary == "" {
		return nil, errNoBoundary
	}
	if len(boundary) > 70 {
		return nil, errBadBoundary
	}
	dash := []byte("--" + boundary)
	var parts []entity
	partStart := -1 // -1 until the first delimiter is seen (preamble)
	pos := e.bodyStart
	for {
		i := indexLineStart(raw[:e.end], dash, pos)
		if i < 0 {
			if partStart < 0 {
				return nil, errNoDelimiter
			}
			parts = append(parts, parseEntity(raw, partStart, e.end))
			return parts, errNoCloseDelim
		}
		after := i + len(dash)
		closing := bytes.HasPrefix(raw[after:e.end], []byte("--"))
		if closing {
			after += 2
		}
		// Only transport padding may follow on the delimiter line.
		lineEnd := after
		for lineEnd < e.end && (raw[lineEnd] == ' ' || raw[lineEnd] == '\t') {
			lineEnd++
		}
		switch {
		case lineEnd == e.end:
		case raw[lineEnd] == '\n':
			lineEnd++
		case raw[lineEnd] == '\r' && lineEnd+1 < e.end && raw[lineEnd+1] == '\n':
			lineEnd += 2
		default:
			if !closing {
				// The boundary is a prefix of other text on this line.
				pos = after
				continue
			}
			// A close-delimiter followed by text: the epilogue starts here.
		}
		if partStart >= 0 {
			parts = append(parts, parseEntity(raw, partStart, trimLineEnd(raw, partStart, i)))
		}
		if closing {
			return parts, nil
		}
		partStart = lineEnd
		pos = lineEnd
	}
}

// indexLineStart finds sep at the start of a line in b, at or after from.
func indexLineStart(b, sep []byte, from int) int {
	for from <= len(b) {
		j := bytes.Index(b[from:], sep)
		if j < 0 {
			return -1
		}
		i := from + j
		if i == 0 || b[i-1] == '\n' {
			return i
		}
		from = i + 1
	}
	return -1
}

// trimLineEnd removes the line ending that precedes a delimiter at i.
func trimLineEnd(raw []byte, start, i int) int {
	if i > start && raw[i-1] == '\n' {
		i--
		if i > start && raw[i-1] == '\r' {
			i--
		}
	}
	return i
}

// decodeBody returns the body of e with its transfer encoding removed. For
// the identity encodings it returns a sub-slice of raw; it never copies then.
func decodeBody(raw []byte, e entity) ([]byte, string, error) {
	body := raw[e.bodyStart:e.end]
	switch cte := e.transferEncoding(); cte {
	case "", "7bit", "8bit", "binary":
		return body, "", nil
	case "base64":
		clean := make([]byte, 0, len(body))
		for _, c := range body {
			switch c {
			case ' ', '\t', '\r', '\n':
			default:
				clean = append(clean, c)
			}
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(out, clean)
		if err != nil {
			return nil, cte, fmt.Errorf("base64: %w", err)
		}
		return out[:n], cte, nil
	case "quoted-printable":
		out, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err != nil {
			return nil, cte, err
		}
		return out, cte, nil
	default:
		return nil, cte, fmt.Errorf("unknown Content-Transfer-Encoding %q", cte)
	}
}
