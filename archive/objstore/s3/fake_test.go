package s3

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 is just enough of S3 for the retry tests: one bucket, PUT with
// If-None-Match, HEAD and GET of objects. Its behaviour per PUT attempt is
// scripted, to play the failures that a real server cannot be made to
// produce on demand.
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string]fakeObject
	puts    int
	// onPut picks what the n-th PUT (from 1) does; nil means "normal".
	onPut func(n int) string
	// onGet picks what a GET does; nil means "normal".
	onGet func() string
}

type fakeObject struct {
	data  []byte
	token string
}

// Scripted actions.
const (
	actNormal     = ""
	actStoreDrop  = "store-drop"  // store, then drop the connection unanswered
	act503        = "503"         // answer 503 SlowDown, store nothing
	actForeign503 = "foreign-503" // someone else's object appears; answer 503
	actHang       = "hang"        // never answer
	actHalfHang   = "half-hang"   // GET: send half the body, then stall
)

func newFake(t *testing.T) (*fakeS3, *httptest.Server) {
	f := &fakeS3{objects: map[string]fakeObject{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	if len(parts) == 1 || parts[1] == "" { // bucket requests: HEAD = exists
		w.WriteHeader(http.StatusOK)
		return
	}
	key := parts[1]
	switch r.Method {
	case http.MethodPut:
		f.put(w, r, key)
	case http.MethodHead, http.MethodGet:
		f.mu.Lock()
		obj, ok := f.objects[key]
		act := actNormal
		if f.onGet != nil && r.Method == http.MethodGet {
			act = f.onGet()
		}
		f.mu.Unlock()
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchKey")
			return
		}
		h := w.Header()
		h.Set("Content-Length", strconv.Itoa(len(obj.data)))
		h.Set("ETag", `"`+etag(obj.data)+`"`)
		h.Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		h.Set("X-Amz-Meta-Cairn-Put-Id", obj.token)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			if act == actHalfHang {
				w.Write(obj.data[:len(obj.data)/2])
				w.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			}
			w.Write(obj.data)
		}
	default:
		s3Error(w, http.StatusNotImplemented, "NotImplemented")
	}
}

func (f *fakeS3) put(w http.ResponseWriter, r *http.Request, key string) {
	data, err := readBody(r)
	if err != nil {
		return // a cut request stores nothing
	}
	f.mu.Lock()
	f.puts++
	act := actNormal
	if f.onPut != nil {
		act = f.onPut(f.puts)
	}
	_, exists := f.objects[key]
	switch {
	case act == actHang:
		f.mu.Unlock()
		<-r.Context().Done()
		return
	case act == act503:
		f.mu.Unlock()
		s3Error(w, http.StatusServiceUnavailable, "SlowDown")
		return
	case act == actForeign503:
		f.objects[key] = fakeObject{data: []byte("someone else's"), token: "other"}
		f.mu.Unlock()
		s3Error(w, http.StatusServiceUnavailable, "SlowDown")
		return
	case exists && r.Header.Get("If-None-Match") == "*":
		f.mu.Unlock()
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return
	}
	f.objects[key] = fakeObject{data: data, token: r.Header.Get("X-Amz-Meta-Cairn-Put-Id")}
	f.mu.Unlock()
	if act == actStoreDrop {
		panic(http.ErrAbortHandler) // stored, but the answer is lost
	}
	w.Header().Set("ETag", `"`+etag(data)+`"`)
	w.WriteHeader(http.StatusOK)
}

// readBody reads a PUT body, decoding the aws-chunked framing of the
// streaming V4 signature (chunk signatures are not checked here).
func readBody(r *http.Request) ([]byte, error) {
	if !strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return io.ReadAll(r.Body)
	}
	br := bufio.NewReader(r.Body)
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		sizeHex, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sizeHex, 16, 64)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return out.Bytes(), nil
		}
		if _, err := io.CopyN(&out, br, n); err != nil {
			return nil, err
		}
		if _, err := br.Discard(2); err != nil { // \r\n
			return nil, err
		}
	}
}

func etag(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>fake %s</Message></Error>`, code, code)
}
