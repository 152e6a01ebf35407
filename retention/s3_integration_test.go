//go:build integration

// Integration test on a real S3 server with Object Lock. Start one and run:
//
//	eval "$(scripts/s3-server.sh)"
//	go test -tags integration -run Integration ./retention/
//	scripts/s3-server.sh stop
//
// It fails, never skips, without the server.
package retention

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/archive/objstore"
	"github.com/cairn-archive/cairn/archive/objstore/s3"
	"github.com/cairn-archive/cairn/archive/objstore/s3/s3test"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// TestIntegrationS3ObjectLock: on versitygw with Object Lock, message
// objects carry their policy expiry as a GOVERNANCE retention date and a
// legal hold while a case holds them; S3 itself refuses to delete a held
// or retained object; erasing or disposing a locked message destroys its
// key, so the object that stays is unreadable; and afterwards nothing in
// the bucket or the data folder produces an erased message or confirms its
// hash.
func TestIntegrationS3ObjectLock(t *testing.T) {
	ctx := context.Background()
	s3opts := s3test.Options(t, "cairn-retention")
	bucket := s3opts.Bucket
	var s3store *s3.Store
	p := Policy{
		Rules:   []Rule{{Name: "newsletters", Keep: mustPeriod("1d"), From: FromArchived, Erasable: true, Match: Match{Domains: []string{"news.example"}}}},
		Default: Rule{Name: "records-2d", Keep: mustPeriod("2d"), From: FromArchived},
	}
	h := newHarness(t, p, func(objstore.Store, *clock) objstore.Store {
		st, err := s3.Open(ctx, s3opts)
		if err != nil {
			t.Fatal(err)
		}
		s3store = st
		return st
	})
	h.clock.set(time.Now().UTC())
	if !h.m.Locking() {
		t.Fatal("Object Lock not detected on the bucket")
	}
	raw, err := minio.New(s3opts.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s3opts.AccessKey, s3opts.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}

	g := gen.New(91)
	type msgT struct {
		gen.Message
		seq uint64
		row *archive.Message
	}
	mk := func(sender, custodian string) msgT {
		m := g.Next(4000)
		seq := h.archive(m.Raw, &ingest.Envelope{Source: ingest.SourceSMTP, Sender: sender,
			Recipients: []ingest.Recipient{{Address: custodian, Kind: ingest.KindTo}}, ReceivedAt: time.Now()})
		return msgT{Message: m, seq: seq}
	}
	m1 := mk("digest@news.example", "bob@corp.example")
	m2 := mk("x@corp.example", "bob@corp.example")
	m3 := mk("y@corp.example", "alice@corp.example")
	row := func(seq uint64) (object, key string, archived time.Time) {
		r, err := h.st.Index().Message(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		return r.Object, r.KeyObject, r.ArchivedAt
	}
	if _, _, err := h.m.LockNew(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		seq  uint64
		keep time.Duration
	}{{m1.seq, 24 * time.Hour}, {m2.seq, 48 * time.Hour}, {m3.seq, 48 * time.Hour}} {
		obj, key, archived := row(c.seq)
		lk, err := s3store.GetLock(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		if lk.Mode != objstore.Governance || !lk.RetainUntil.Equal(ceilSecond(archived.Add(c.keep))) || lk.LegalHold {
			t.Fatalf("message %d: lock %+v, want GOVERNANCE until %v", c.seq, lk, ceilSecond(archived.Add(c.keep)))
		}
		if lk, err := s3store.GetLock(ctx, key); err != nil || lk.Mode != "" || lk.LegalHold {
			t.Fatalf("key object of %d locked: %+v %v", c.seq, lk, err)
		}
	}

	// A hold: legal hold on alice's message; S3 refuses its deletion,
	// through Cairn's store and through the S3 API by version.
	if _, err := h.m.PlaceHold(ctx, tester, HoldSpec{Case: "C-1", Reason: "r", Custodians: []string{"alice@corp.example"}}); err != nil {
		t.Fatal(err)
	}
	obj3, _, _ := row(m3.seq)
	if lk, _ := s3store.GetLock(ctx, obj3); !lk.LegalHold {
		t.Fatalf("no legal hold on a held object: %+v", lk)
	}
	if err := s3store.Delete(ctx, obj3); !errors.Is(err, objstore.ErrLocked) {
		t.Fatalf("delete of a held object: %v", err)
	}
	info, err := raw.StatObject(ctx, bucket, obj3, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.RemoveObject(ctx, bucket, obj3, minio.RemoveObjectOptions{VersionID: info.VersionID, GovernanceBypass: true}); err == nil {
		t.Fatal("S3 deleted an object under a legal hold (even bypassing governance)")
	}
	obj2, _, _ := row(m2.seq)
	if err := s3store.Delete(ctx, obj2); !errors.Is(err, objstore.ErrLocked) {
		t.Fatalf("delete of an object under retention: %v", err)
	}
	if rep, err := h.m.VerifyLocks(ctx, false); err != nil || len(rep.Problems) != 0 || rep.Checked != 3 {
		t.Fatalf("VerifyLocks: %+v %v", rep, err)
	}

	// Erasure of the newsletter inside its (erasable) day: the key goes,
	// the locked object stays and opens to nothing.
	er, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: "digest@news.example", Reason: "GDPR request 5"})
	if err != nil || len(er.Erased) != 1 || !strings.Contains(er.Erased[0].How, "Object Lock") {
		t.Fatalf("erase: %+v %v", er, err)
	}
	obj1, key1, _ := row(m1.seq)
	if _, err := h.st.OpenMessage(ctx, m1.seq); !errors.Is(err, archive.ErrUnreadable) {
		t.Fatalf("erased message opens: %v", err)
	}
	if _, err := s3store.Stat(ctx, key1); !errors.Is(err, objstore.ErrNotExist) {
		t.Fatalf("key object of the erased message: %v", err)
	}
	if _, err := s3store.Stat(ctx, obj1); err != nil {
		t.Fatalf("the locked object went: %v", err)
	}

	// Release; then two days later (the Manager's clock; S3's real clock
	// still locks the objects) the run disposes m2 and m3 by their keys.
	if _, err := h.m.ReleaseHold(ctx, tester, "C-1", "settled"); err != nil {
		t.Fatal(err)
	}
	if lk, _ := s3store.GetLock(ctx, obj3); lk.LegalHold {
		t.Fatal("legal hold left after release")
	}
	h.clock.advance(49 * time.Hour)
	run, err := h.m.Run(ctx, SystemCaller, false)
	if err != nil || len(run.Disposed) != 2 || !run.Disposed[0].ObjectKept || !run.Disposed[1].ObjectKept {
		t.Fatalf("run: %+v %v", run, err)
	}
	for _, m := range []msgT{m2, m3} {
		if _, err := h.st.OpenMessage(ctx, m.seq); !errors.Is(err, archive.ErrUnreadable) {
			t.Fatalf("disposed locked message %d opens: %v", m.seq, err)
		}
	}
	vr, err := h.st.Verify(ctx, archive.VerifyOptions{Full: true})
	if err != nil || !vr.OK() || len(vr.Disposed) != 3 {
		t.Fatalf("verify --full: %+v %v", vr, err)
	}

	// Nothing in the bucket (every version of every object) or the data
	// folder produces a gone message or confirms its hash.
	needles := func(m msgT) [][]byte {
		sum := sha256.Sum256(m.Raw)
		return [][]byte{[]byte(strings.ToLower(m.Token)), []byte(strings.ToLower(m.Subject)), []byte(strings.ToLower(m.MessageID)),
			[]byte(hex.EncodeToString(sum[:])), sum[:]}
	}
	check := func(where string, b []byte) {
		lb := bytes.ToLower(b)
		for _, m := range []msgT{m1, m2, m3} {
			for _, n := range needles(m) {
				if bytes.Contains(lb, n) {
					t.Errorf("%s holds a trace of message %d (%q)", where, m.seq, n)
				}
			}
		}
	}
	objects := 0
	for o := range raw.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.IsDeleteMarker {
			continue
		}
		r, err := raw.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{VersionID: o.VersionID})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		check("s3://"+bucket+"/"+o.Key+"?versionId="+o.VersionID, b)
		objects++
		if strings.HasPrefix(o.Key, "keys/") && (o.Key == key1) {
			t.Errorf("a version of the erased message's key object remains: %s", o.Key)
		}
	}
	if objects == 0 {
		t.Fatal("listed no object")
	}
	h.close()
	walkFiles(h.dir, func(p string, b []byte) { check(p, b) })
}
