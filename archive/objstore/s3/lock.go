package s3

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// Object Lock, S3 API: PutObjectRetention, PutObjectLegalHold,
// GetObjectRetention, GetObjectLegalHold, GetObjectLockConfiguration.
// Each call works on the object's current version.

// LockEnabled reports whether the bucket has Object Lock enabled.
func (s *Store) LockEnabled(ctx context.Context) (bool, error) {
	on, err := s.lockEnabled(ctx)
	if err != nil {
		return false, fmt.Errorf("objstore/s3: lock config of %s: %w", s.bucket, err)
	}
	return on, nil
}

func (s *Store) lockEnabled(ctx context.Context) (bool, error) {
	var state string
	err := s.retry(ctx, func(ctx context.Context) (err error) {
		state, _, _, _, err = s.client.GetObjectLockConfig(ctx, s.bucket)
		return err
	})
	if errCode(err) == "ObjectLockConfigurationNotFoundError" {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return state == "Enabled", nil
}

// SetRetention sets or extends the retention of key (see objstore.Locker).
// S3 refuses to shorten a retention or to weaken COMPLIANCE, and so does
// this method: it never sends the governance bypass.
func (s *Store) SetRetention(ctx context.Context, key string, mode objstore.LockMode, until time.Time) error {
	if err := s.setRetention(ctx, key, mode, until); err != nil {
		return fmt.Errorf("objstore/s3: set retention %s: %w", key, err)
	}
	return nil
}

func (s *Store) setRetention(ctx context.Context, key string, mode objstore.LockMode, until time.Time) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	var m minio.RetentionMode
	switch mode {
	case objstore.Governance:
		m = minio.Governance
	case objstore.Compliance:
		m = minio.Compliance
	default:
		return fmt.Errorf("unknown lock mode %q", mode)
	}
	if !until.After(time.Now()) {
		return fmt.Errorf("retain-until %v is not in the future", until)
	}
	until = until.UTC()
	return s.onObject(ctx, key, func(ctx context.Context, name string) error {
		return s.client.PutObjectRetention(ctx, s.bucket, name, minio.PutObjectRetentionOptions{Mode: &m, RetainUntilDate: &until})
	})
}

// SetLegalHold turns the legal hold of key on or off (see objstore.Locker).
func (s *Store) SetLegalHold(ctx context.Context, key string, on bool) error {
	if err := s.setLegalHold(ctx, key, on); err != nil {
		return fmt.Errorf("objstore/s3: set legal hold %s: %w", key, err)
	}
	return nil
}

func (s *Store) setLegalHold(ctx context.Context, key string, on bool) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	status := minio.LegalHoldDisabled
	if on {
		status = minio.LegalHoldEnabled
	}
	return s.onObject(ctx, key, func(ctx context.Context, name string) error {
		return s.client.PutObjectLegalHold(ctx, s.bucket, name, minio.PutObjectLegalHoldOptions{Status: &status})
	})
}

// GetLock returns the lock state of key, or ErrNotExist (see
// objstore.Locker). An object without retention has a zero Mode and
// RetainUntil.
func (s *Store) GetLock(ctx context.Context, key string) (objstore.Lock, error) {
	lk, err := s.getLock(ctx, key)
	if err != nil {
		return objstore.Lock{}, fmt.Errorf("objstore/s3: get lock %s: %w", key, err)
	}
	return lk, nil
}

func (s *Store) getLock(ctx context.Context, key string) (objstore.Lock, error) {
	if err := objstore.ValidKey(key); err != nil {
		return objstore.Lock{}, err
	}
	name := s.name(key)
	var lk objstore.Lock
	err := s.retry(ctx, func(ctx context.Context) error {
		lk = objstore.Lock{}
		// HeadObject reports the lock in x-amz-object-lock-* headers when
		// the caller may read it: one request for the whole answer, and it
		// also tells a missing key apart. The headers are left out when no
		// lock is set, or by a service that never sends them; only then ask
		// the lock APIs. (versitygw v1.8.0 answers GetObjectRetention with
		// <ObjectLockRetention>, which minio-go cannot decode, but sends the
		// headers.)
		info, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
		if err != nil {
			return err
		}
		h := info.Metadata
		if mode := h.Get("X-Amz-Object-Lock-Mode"); mode != "" {
			lk.Mode = objstore.LockMode(mode)
			until, err := time.Parse(time.RFC3339, h.Get("X-Amz-Object-Lock-Retain-Until-Date"))
			if err != nil {
				return fmt.Errorf("retain-until header: %w", err)
			}
			lk.RetainUntil = until
		} else {
			mode, until, err := s.client.GetObjectRetention(ctx, s.bucket, name, info.VersionID)
			switch {
			case noLockConfig(err):
			case err != nil:
				return err
			default:
				if mode != nil {
					lk.Mode = objstore.LockMode(*mode)
				}
				if until != nil {
					lk.RetainUntil = *until
				}
			}
		}
		if hold := h.Get("X-Amz-Object-Lock-Legal-Hold"); hold != "" {
			lk.LegalHold = hold == string(minio.LegalHoldEnabled)
		} else {
			hold, err := s.client.GetObjectLegalHold(ctx, s.bucket, name, minio.GetObjectLegalHoldOptions{VersionID: info.VersionID})
			switch {
			case noLockConfig(err):
			case err != nil:
				return err
			default:
				lk.LegalHold = hold != nil && *hold == minio.LegalHoldEnabled
			}
		}
		return nil
	})
	return lk, mapErr(err)
}

// noLockConfig reports S3's answer for an object without retention or
// legal hold.
func noLockConfig(err error) bool {
	return errCode(err) == "NoSuchObjectLockConfiguration"
}

// onObject runs fn on key's object name with retries, after checking the
// object exists: S3 services differ in how they answer lock calls on a
// missing key, and the contract wants ErrNotExist.
func (s *Store) onObject(ctx context.Context, key string, fn func(ctx context.Context, name string) error) error {
	name := s.name(key)
	err := s.retry(ctx, func(ctx context.Context) error {
		if _, err := s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{}); err != nil {
			return err
		}
		return fn(ctx, name)
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return mapErr(err)
	}
	return err
}
