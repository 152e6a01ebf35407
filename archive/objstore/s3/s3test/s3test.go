// Package s3test points integration tests at the S3 server that
// scripts/s3-server.sh started (versitygw on 127.0.0.1), through the
// CAIRN_TEST_S3_* variables it prints.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore/s3"
)

// Options returns the options of a new bucket with Object Lock on that
// server, named prefix-RANDOM; the test fails (never skips) when the
// variables are not set.
func Options(t testing.TB, prefix string) s3.Options {
	t.Helper()
	endpoint, access, secret := os.Getenv("CAIRN_TEST_S3_ENDPOINT"), os.Getenv("CAIRN_TEST_S3_ACCESS_KEY"), os.Getenv("CAIRN_TEST_S3_SECRET_KEY")
	if endpoint == "" || access == "" || secret == "" {
		t.Fatal(`CAIRN_TEST_S3_* must be set: run eval "$(scripts/s3-server.sh)" first`)
	}
	var b [5]byte
	rand.Read(b[:])
	return s3.Options{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Region: "us-east-1",
		Bucket: prefix + "-" + hex.EncodeToString(b[:]), Lookup: s3.LookupPath, CreateBucket: true, ObjectLock: true,
		Timeout: 20 * time.Second}
}
