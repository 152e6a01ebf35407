// Package s3 is the object store on any S3 service with conditional writes
// (AWS S3, MinIO, versitygw, Ceph RGW, SeaweedFS), through minio-go.
//
// Invariants (on top of the objstore contract):
//   - Write-once: every Put is a single conditional PUT with
//     "If-None-Match: *" (RFC 9110 §13.1.2; S3 conditional writes), so the
//     service refuses to replace an object (412 -> objstore.ErrExist) and of
//     racing Puts exactly one wins. Multipart uploads are never used (a Put
//     is at most 5 GiB), so no part of an object is visible before the
//     whole.
//   - Exact size: the body is streamed with the announced Content-Length;
//     a reader that gives fewer bytes, or more, fails the request before
//     its last byte is sent, so the service never completes it.
//   - Durable on return: Put returns nil only on the service's 200.
//   - Bounded: every request attempt is bounded by Options.Timeout and
//     ctx; transient failures are retried at most Options.MaxRetries times
//     with exponential backoff. Nothing waits forever on a dead server.
//   - Missing keys: minio-go's GetObject is lazy and reports a missing
//     object only on the first Read (minio-go#1720), and S3's DeleteObject
//     succeeds on a missing key. Get issues the GET itself and Delete reads
//     the object's metadata first, so both report objstore.ErrNotExist.
//
// An ambiguous Put: when an attempt fails without an answer (timeout, lost
// connection) the service may have stored the object anyway. A PUT sends
// its body only after the service's 100 Continue, which narrows this to a
// service that failed after it had the whole body. Each Put tags
// its object with a random token (metadata Cairn-Put-Id). When a retry of
// the same Put meets 412, or when the last attempt failed without an
// answer, Put reads the stored object's token: if it is its own, the object
// is whole and Put returns nil. If the service cannot be reached even for
// that, Put returns an error although the object may appear later (whole,
// never partial); a later Put of the same key then gets ErrExist. A body
// that is an io.Seeker is rewound for a retry; any other body is retried
// only if the failed attempt read none of it.
//
// Object Lock: Store implements objstore.Locker. Delete removes the exact
// version it found, so on a versioned (Object Lock) bucket a Delete really
// destroys the object instead of hiding it behind a delete marker; that is
// what makes erasing a key object (crypto-shredding) work, and what lets S3
// refuse it under a retention period or legal hold (objstore.ErrLocked).
package s3

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// maxPutSize is S3's limit for a single PUT.
const maxPutSize = 5 << 30

// tokenMeta is the user metadata that names the Put that wrote an object.
const tokenMeta = "Cairn-Put-Id"

// Store is an objstore.Store on one S3 bucket (and prefix). It implements
// objstore.RangeReader and objstore.Locker. Safe for concurrent use.
type Store struct {
	client  *minio.Client
	core    minio.Core
	bucket  string
	prefix  string // "" or "folder/"
	retries int
	timeout time.Duration
	backoff time.Duration // first backoff; doubles per attempt
}

var (
	_ objstore.Store       = (*Store)(nil)
	_ objstore.RangeReader = (*Store)(nil)
	_ objstore.Locker      = (*Store)(nil)
)

// Open connects to the service and checks the bucket: it creates it when
// opts.CreateBucket is set and it is missing, and fails when opts.ObjectLock
// is set and the bucket has no Object Lock. Open's own requests are bounded
// by ctx and opts.Timeout.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	tr, err := transport(opts)
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: open %s: %w", opts.Bucket, err)
	}
	lookup := map[Lookup]minio.BucketLookupType{
		LookupAuto: minio.BucketLookupAuto,
		LookupPath: minio.BucketLookupPath,
		LookupDNS:  minio.BucketLookupDNS,
	}[opts.Lookup]
	client, err := minio.New(opts.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, opts.SessionToken),
		Secure:       opts.Secure,
		Transport:    tr,
		Region:       opts.Region,
		BucketLookup: lookup,
		// One attempt per call: this package retries itself, because a
		// retried conditional PUT needs care (see the package comment).
		MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: open %s: %w", opts.Bucket, err)
	}
	s := &Store{
		client:  client,
		core:    minio.Core{Client: client},
		bucket:  opts.Bucket,
		retries: opts.MaxRetries,
		timeout: opts.Timeout,
		backoff: 200 * time.Millisecond,
	}
	if opts.Prefix != "" {
		s.prefix = opts.Prefix + "/"
	}
	if err := s.checkBucket(ctx, opts); err != nil {
		return nil, fmt.Errorf("objstore/s3: open %s: %w", opts.Bucket, err)
	}
	return s, nil
}

func (s *Store) checkBucket(ctx context.Context, opts Options) error {
	var exists bool
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		exists, err = s.client.BucketExists(ctx, s.bucket)
		return err
	})
	if err != nil {
		return err
	}
	if !exists {
		if !opts.CreateBucket {
			return errors.New("bucket does not exist (set CreateBucket to create it)")
		}
		err := s.retry(ctx, func(ctx context.Context) error {
			err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: opts.Region, ObjectLocking: opts.ObjectLock})
			if code := errCode(err); code == "BucketAlreadyOwnedByYou" {
				return nil // a retry after a lost answer, or a race with ourselves
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
	}
	if opts.ObjectLock {
		on, err := s.lockEnabled(ctx)
		if err != nil {
			return err
		}
		if !on {
			return errors.New("bucket has no Object Lock, and ObjectLock is required (it can only be enabled when a bucket is created)")
		}
	}
	return nil
}

// transport is an HTTP transport whose every wait has a bound.
func transport(opts Options) (http.RoundTripper, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("CAFile: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CAFile %s: no PEM certificate in it", opts.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   opts.DialTimeout,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		// Objects are compressed and encrypted already; gzip would only
		// hide the Content-Length that size checks rely on.
		DisableCompression: true,
	}
	if opts.DisableExpectContinue {
		return tr, nil
	}
	// Wait for the 100 longer than the attempt may last, so that the
	// attempt's deadline always ends the wait: sending the body to a
	// silent server is what makes a failed Put ambiguous (the body sits in
	// the socket buffers and is stored whenever the server comes back).
	// A wait equal to the attempt's was a tie the body sometimes won.
	tr.ExpectContinueTimeout = opts.Timeout + time.Hour
	return expectContinue{tr}, nil
}

// expectContinue asks for 100 Continue before a PUT's body goes out.
// The header is not signed; S3 signs only the headers it lists.
type expectContinue struct{ *http.Transport }

func (e expectContinue) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && req.ContentLength > 0 && req.Header.Get("Expect") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("Expect", "100-continue")
	}
	return e.Transport.RoundTrip(req)
}

// name is the S3 object name of a key.
func (s *Store) name(key string) string { return s.prefix + key }

// Put stores exactly size bytes from r under key with a conditional PUT
// (see objstore.Store and the package comment). A nil return means the
// service acknowledged the whole object.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.put(ctx, key, r, size); err != nil {
		return fmt.Errorf("objstore/s3: put %s: %w", key, err)
	}
	return nil
}

func (s *Store) put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	switch {
	case size < 0:
		return fmt.Errorf("negative size %d", size)
	case size > maxPutSize:
		return fmt.Errorf("%d bytes is more than a single S3 PUT takes (5 GiB)", size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	body := &exactReader{r: r, size: size}
	if size == 0 {
		// No body is sent, so nothing would notice a reader with bytes.
		if err := body.probe(); err != nil {
			return err
		}
	}
	seeker, _ := r.(io.Seeker)
	var start int64
	if seeker != nil {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			seeker = nil
		}
	}
	token, err := newToken()
	if err != nil {
		return err
	}
	name := s.name(key)
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if body.n > 0 && seeker == nil {
				break // the failed attempt consumed a body we cannot rewind
			}
			if err := s.sleep(ctx, attempt); err != nil {
				lastErr = err
				break
			}
			if seeker != nil {
				if _, err := seeker.Seek(start, io.SeekStart); err != nil {
					return fmt.Errorf("rewind the body for a retry: %w (after %v)", err, lastErr)
				}
			}
			// A fresh reader: the transport may still read the failed
			// attempt's after it ended; that one's done context keeps it
			// off r.
			body = &exactReader{r: r, size: size}
		}
		timedOut, err := s.putOnce(ctx, name, body, size, token)
		if err == nil {
			return nil
		}
		if body.err != nil {
			// The request was cut before its last byte: nothing stored.
			return body.err
		}
		if errCode(err) == "PreconditionFailed" {
			if attempt == 0 {
				return objstore.ErrExist
			}
			// An earlier attempt of ours may have stored it.
			actx, cancel := context.WithTimeout(ctx, s.timeout)
			ours, serr := s.isOurs(actx, name, token, size)
			cancel()
			switch {
			case serr != nil:
				return fmt.Errorf("412 on a retry, and checking whose object it is failed: %w", serr)
			case ours:
				return nil
			}
			return objstore.ErrExist
		}
		lastErr = err
		if timedOut {
			lastErr = fmt.Errorf("no answer within %v: %w", s.timeout, err)
		}
		if ctx.Err() != nil || !(timedOut || transient(err)) || attempt >= s.retries {
			break
		}
	}
	// Without an answer the service may have stored the object. If it did,
	// it is ours and whole: report that rather than a failure. One attempt
	// only: the service has just failed us (1+retries) times.
	if ctx.Err() == nil && !isAnswer(lastErr) {
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		ours, serr := s.isOurs(actx, name, token, size)
		cancel()
		if serr == nil && ours {
			return nil
		}
	}
	return lastErr
}

// putOnce makes one PUT attempt, bounded by the store's timeout. timedOut
// reports that the bound, not ctx, ended it.
func (s *Store) putOnce(ctx context.Context, name string, body *exactReader, size int64, token string) (timedOut bool, err error) {
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	opts := minio.PutObjectOptions{
		ContentType:      "application/octet-stream",
		UserMetadata:     map[string]string{tokenMeta: token},
		DisableMultipart: true,
	}
	opts.SetMatchETagExcept("*") // If-None-Match: *
	body.ctx = actx
	_, err = s.client.PutObject(actx, s.bucket, name, body, size, opts)
	return err != nil && actx.Err() != nil && ctx.Err() == nil, err
}

// isOurs reports whether the object stored under name was written by the
// Put holding token.
func (s *Store) isOurs(ctx context.Context, name, token string, size int64) (bool, error) {
	info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if errCode(err) == "NoSuchKey" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for k, v := range info.UserMetadata {
		if strings.EqualFold(k, tokenMeta) || strings.EqualFold(k, "X-Amz-Meta-"+tokenMeta) {
			return v == token && info.Size == size, nil
		}
	}
	return false, nil
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// Get opens the object for reading (see objstore.Store). The GET is made
// before Get returns, so a missing key is ErrNotExist here. The stream is
// bound to ctx, and a Read that waits longer than Options.Timeout fails.
// The caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: get %s: %w", key, err)
	}
	return rc, nil
}

func (s *Store) get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := objstore.ValidKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(s.timeout, cancel)
		body, _, _, err := s.core.GetObject(rctx, s.bucket, s.name(key), minio.GetObjectOptions{})
		stalled := !timer.Stop() && ctx.Err() == nil
		if err == nil && !stalled {
			return &stream{body: body, cancel: cancel, timer: timer, timeout: s.timeout}, nil
		}
		if body != nil {
			body.Close()
		}
		cancel()
		if err == nil || stalled {
			err = fmt.Errorf("no answer within %v: %w", s.timeout, context.DeadlineExceeded)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !(stalled || transient(err)) || attempt >= s.retries {
			return nil, mapErr(err)
		}
		if err := s.sleep(ctx, attempt+1); err != nil {
			return nil, err
		}
	}
}

// stream is a Get body whose every Read is bounded by a timer.
type stream struct {
	body    io.ReadCloser
	cancel  context.CancelFunc
	timer   *time.Timer
	timeout time.Duration
}

func (st *stream) Read(p []byte) (int, error) {
	st.timer.Reset(st.timeout)
	n, err := st.body.Read(p)
	if !st.timer.Stop() && err != nil && err != io.EOF {
		err = fmt.Errorf("objstore/s3: read stalled for %v: %w", st.timeout, err)
	}
	return n, err
}

func (st *stream) Close() error {
	st.timer.Stop()
	st.cancel()
	return st.body.Close()
}

// Stat returns the object's Info, or ErrNotExist (see objstore.Store).
func (s *Store) Stat(ctx context.Context, key string) (objstore.Info, error) {
	info, err := s.stat(ctx, key)
	if err != nil {
		return objstore.Info{}, fmt.Errorf("objstore/s3: stat %s: %w", key, err)
	}
	return objstore.Info{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

func (s *Store) stat(ctx context.Context, key string) (minio.ObjectInfo, error) {
	if err := objstore.ValidKey(key); err != nil {
		return minio.ObjectInfo{}, err
	}
	var info minio.ObjectInfo
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		info, err = s.client.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{})
		return err
	})
	return info, mapErr(err)
}

// Delete removes the object (see objstore.Store): ErrNotExist if it is
// missing, ErrLocked if a retention period or legal hold protects it. It
// deletes the version it found, so on a versioned bucket the bytes are gone,
// not hidden behind a delete marker. A nil return means S3 acknowledged it.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.delete(ctx, key); err != nil {
		return fmt.Errorf("objstore/s3: delete %s: %w", key, err)
	}
	return nil
}

func (s *Store) delete(ctx context.Context, key string) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	name := s.name(key)
	removeSent := false
	err := s.retry(ctx, func(ctx context.Context) error {
		info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
		if errCode(err) == "NoSuchKey" && removeSent {
			return nil // an earlier attempt removed it and lost the answer
		}
		if err != nil {
			return err
		}
		removeSent = true
		return s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{VersionID: info.VersionID})
	})
	if err == nil {
		return nil
	}
	if errCode(err) == "AccessDenied" {
		// S3 answers a delete under Object Lock with 403 AccessDenied, like
		// a missing permission. AWS and versitygw say "object lock" in the
		// message; otherwise look at the object's lock to tell them apart.
		locked := strings.Contains(strings.ToLower(err.Error()), "object lock")
		if !locked {
			lk, lerr := s.getLock(ctx, key)
			locked = lerr == nil && (lk.LegalHold || lk.RetainUntil.After(time.Now()))
		}
		if locked {
			return fmt.Errorf("%w (%v)", objstore.ErrLocked, err)
		}
	}
	return mapErr(err)
}

// List calls fn for every object whose key starts with prefix, in lexical
// key order, as S3 lists them (see objstore.Store). Objects under the
// store's prefix whose names are not valid keys are skipped. A listing
// that fails transiently resumes after the last key it reported; each wait
// for a page is bounded by Options.Timeout.
func (s *Store) List(ctx context.Context, prefix string, fn func(objstore.Info) error) error {
	if err := s.list(ctx, prefix, fn); err != nil {
		return fmt.Errorf("objstore/s3: list %s: %w", prefix, err)
	}
	return nil
}

// errStop marks an error that came from fn.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

func (s *Store) list(ctx context.Context, prefix string, fn func(objstore.Info) error) error {
	if err := objstore.ValidPrefix(prefix); err != nil {
		return err
	}
	after := ""
	for failures := 0; ; {
		progressed := false
		stalled, err := s.listFrom(ctx, prefix, after, func(name string, info objstore.Info) error {
			after, progressed = name, true
			return fn(info)
		})
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if progressed {
			failures = 0
		}
		if !(stalled || transient(err)) || failures >= s.retries {
			return mapErr(err)
		}
		failures++
		if err := s.sleep(ctx, failures); err != nil {
			return err
		}
	}
}

// listFrom lists the objects after the object name `after`, calling fn
// with each object's name and Info.
func (s *Store) listFrom(ctx context.Context, prefix, after string, fn func(string, objstore.Info) error) (stalled bool, err error) {
	lctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(s.timeout, cancel)
	timer.Stop()
	ch := s.client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{
		Prefix:     s.name(prefix),
		Recursive:  true,
		StartAfter: after,
	})
	defer func() {
		timer.Stop()
		cancel()
		for range ch { // let the listing goroutine end
		}
	}()
	for {
		timer.Reset(s.timeout)
		obj, ok := <-ch
		if !timer.Stop() && ctx.Err() == nil {
			return true, fmt.Errorf("no listing page within %v: %w", s.timeout, context.DeadlineExceeded)
		}
		if !ok {
			return false, nil
		}
		if obj.Err != nil {
			return false, obj.Err
		}
		key, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || objstore.ValidKey(key) != nil {
			continue // not ours: a folder marker or a foreign object
		}
		if err := fn(obj.Key, objstore.Info{Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return false, errStop{err}
		}
	}
}

// OpenReaderAt opens key for ranged reads (see objstore.RangeReader): one
// HEAD now, then one ranged GET per ReadAt, each bound to ctx and to
// Options.Timeout per attempt. ReadAt only reads the version it opened: it
// fails rather than mix bytes of two objects.
func (s *Store) OpenReaderAt(ctx context.Context, key string) (objstore.ReaderAt, error) {
	info, err := s.stat(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("objstore/s3: open %s: %w", key, err)
	}
	return &rangeReader{s: s, ctx: ctx, key: key, size: info.Size, etag: info.ETag}, nil
}

type rangeReader struct {
	s    *Store
	ctx  context.Context
	key  string
	size int64
	etag string
}

func (r *rangeReader) Size() int64  { return r.size }
func (r *rangeReader) Close() error { return nil }

// ReadAt follows io.ReaderAt: it returns len(p) bytes, or fewer and io.EOF
// at the end of the object.
func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("objstore/s3: read %s: negative offset %d", r.key, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	end := min(off+int64(len(p)), r.size)
	want := p[:end-off]
	var n int
	err := r.s.retry(r.ctx, func(ctx context.Context) error {
		opts := minio.GetObjectOptions{}
		if err := opts.SetRange(off, end-1); err != nil {
			return err
		}
		if r.etag != "" {
			if err := opts.SetMatchETag(r.etag); err != nil {
				return err
			}
		}
		body, _, _, err := r.s.core.GetObject(ctx, r.s.bucket, r.s.name(r.key), opts)
		if err != nil {
			return err
		}
		defer body.Close()
		n, err = io.ReadFull(body, want)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("objstore/s3: read %s at %d: %w", r.key, off, mapErr(err))
	}
	if end < off+int64(len(p)) {
		return n, io.EOF
	}
	return n, nil
}

// retry runs fn, one attempt per call bounded by the store's timeout, and
// tries again after transient failures, at most s.retries times.
func (s *Store) retry(ctx context.Context, fn func(ctx context.Context) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, s.timeout)
		err := fn(actx)
		timedOut := err != nil && actx.Err() != nil && ctx.Err() == nil
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if timedOut {
			err = fmt.Errorf("no answer within %v: %w", s.timeout, err)
		}
		if !(timedOut || transient(err)) || attempt >= s.retries {
			return err
		}
		if err := s.sleep(ctx, attempt+1); err != nil {
			return err
		}
	}
}

// sleep waits before retry number attempt (1, 2, ...): exponential backoff
// from s.backoff, capped at 5 s, with jitter so that many clients do not
// retry in step.
func (s *Store) sleep(ctx context.Context, attempt int) error {
	d := min(s.backoff<<(attempt-1), 5*time.Second)
	d = d/2 + mathrand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errCode is the S3 error code of err, or "".
func errCode(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

// isAnswer reports whether err is an answer of the service (an S3 error
// response) rather than a failure to get one.
func isAnswer(err error) bool {
	var resp minio.ErrorResponse
	return errors.As(err, &resp) && resp.StatusCode != 0
}

// transient reports whether a failed request may succeed if tried again.
// Errors with an answer are transient only if S3 says so (5xx, throttling);
// failures to get one (refused or lost connections, cut bodies) are.
// Anything else, such as a malformed answer, is not.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var uerr *url.Error
	var nerr net.Error
	if errors.As(err, &uerr) || errors.As(err, &nerr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException":
			return true
		}
		switch resp.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// mapErr turns S3's "no such object" into objstore.ErrNotExist, keeping
// the S3 error in the text.
func mapErr(err error) error {
	switch errCode(err) {
	case "NoSuchKey", "NoSuchVersion":
		return fmt.Errorf("%w (%v)", objstore.ErrNotExist, err)
	}
	return err
}
