package s3

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Lookup says how requests name the bucket.
type Lookup string

// Bucket lookup styles.
const (
	LookupAuto Lookup = "auto" // let the client decide from the endpoint (the default)
	LookupPath Lookup = "path" // https://endpoint/bucket/key: MinIO, versitygw, Ceph RGW, SeaweedFS
	LookupDNS  Lookup = "dns"  // https://bucket.endpoint/key: AWS S3 virtual-hosted style
)

// Defaults for the zero values of Options.
const (
	DefaultMaxRetries  = 3
	DefaultDialTimeout = 5 * time.Second
	DefaultTimeout     = 30 * time.Second
)

// Options configure a Store. The zero value of each optional field picks
// the documented default.
type Options struct {
	// Endpoint is host[:port] of the S3 service, without a scheme:
	// "s3.eu-central-1.amazonaws.com", "minio.internal:9000".
	Endpoint string
	// Region of the bucket. Empty asks the service (one extra request at
	// the first use of the bucket).
	Region string
	// Bucket holds the objects. It must exist unless CreateBucket is set.
	Bucket string
	// Prefix is a folder inside the bucket ("cairn/prod"); every key is
	// stored as Prefix + "/" + key, and List sees only this folder. Empty
	// uses the whole bucket. It follows the key syntax of objstore.ValidKey,
	// up to 256 bytes.
	Prefix string

	// AccessKey and SecretKey sign the requests (AWS Signature V4).
	AccessKey string
	SecretKey string
	// SessionToken is set for temporary (STS) credentials only.
	SessionToken string

	// Secure talks HTTPS. Without it, bodies travel in the clear but are
	// still integrity-checked by the streaming V4 signature.
	Secure bool
	// CAFile is a PEM bundle of extra roots to trust (a private CA), on top
	// of the system's. Only with Secure.
	CAFile string
	// Lookup is the bucket addressing style; empty means LookupAuto.
	Lookup Lookup

	// CreateBucket creates Bucket at Open if it does not exist.
	CreateBucket bool
	// ObjectLock requires Object Lock on the bucket: Open creates the
	// bucket with it (with CreateBucket) and refuses a bucket without it.
	// Object Lock can only be enabled when a bucket is created.
	ObjectLock bool

	// DisableExpectContinue stops Put from sending "Expect: 100-continue"
	// (RFC 9110 §10.1.1). By default a PUT sends its body only after the
	// server answered 100 Continue, so a server that froze before that
	// never holds a whole request that it could complete after Put gave up.
	// Set it only for a server that ignores Expect: there every Put would
	// wait Timeout for the 100 and fail.
	DisableExpectContinue bool

	// MaxRetries is how many times a failed request is tried again after
	// transient failures (network errors, timeouts, 5xx, throttling), with
	// exponential backoff. 0 means DefaultMaxRetries; negative means never.
	MaxRetries int
	// DialTimeout bounds a TCP connect plus TLS handshake; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Timeout bounds one attempt of one request, including the upload of a
	// Put's body and the wait for its answer, and each Read of a Get
	// stream. 0 means DefaultTimeout. Raise it for large objects on slow
	// links. A call takes at most about (1+MaxRetries)*Timeout plus the
	// backoff between attempts (a Put one Timeout more, to learn whether
	// a lost attempt stored its object), and never longer than ctx allows.
	Timeout time.Duration
}

// withDefaults returns o with the zero values replaced by defaults.
func (o Options) withDefaults() Options {
	if o.Lookup == "" {
		o.Lookup = LookupAuto
	}
	switch {
	case o.MaxRetries == 0:
		o.MaxRetries = DefaultMaxRetries
	case o.MaxRetries < 0:
		o.MaxRetries = 0
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	return o
}

// Validate reports the first problem with o, naming the field.
func (o Options) Validate() error {
	switch {
	case o.Endpoint == "":
		return errors.New("objstore/s3: Endpoint is empty")
	case strings.Contains(o.Endpoint, "://"):
		return fmt.Errorf("objstore/s3: Endpoint %q has a scheme: give host[:port] and set Secure for HTTPS", o.Endpoint)
	case strings.ContainsAny(o.Endpoint, "/?#"):
		return fmt.Errorf("objstore/s3: Endpoint %q has a path: give host[:port]", o.Endpoint)
	case o.AccessKey == "" || o.SecretKey == "":
		return errors.New("objstore/s3: AccessKey and SecretKey are required")
	case o.CAFile != "" && !o.Secure:
		return errors.New("objstore/s3: CAFile is set but Secure is not")
	case o.DialTimeout < 0 || o.Timeout < 0:
		return errors.New("objstore/s3: negative timeout")
	}
	if err := s3utils.CheckValidBucketNameStrict(o.Bucket); err != nil {
		return fmt.Errorf("objstore/s3: Bucket %q: %w", o.Bucket, err)
	}
	if p := strings.TrimSuffix(o.Prefix, "/"); p != "" {
		if err := objstore.ValidKey(p); err != nil {
			return fmt.Errorf("objstore/s3: Prefix: %w", err)
		}
		// S3 keys end at 1,024 bytes; a key takes up to 512.
		if len(p) > 256 {
			return fmt.Errorf("objstore/s3: Prefix is longer than 256 bytes")
		}
	}
	switch o.Lookup {
	case "", LookupAuto, LookupPath, LookupDNS:
	default:
		return fmt.Errorf("objstore/s3: Lookup %q: want auto, path or dns", o.Lookup)
	}
	return nil
}
