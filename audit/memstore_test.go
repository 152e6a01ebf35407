package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-archive/cairn/archive/objstore"
)

// memStore is a write-once objstore.Store in memory, for tests. It can be
// made to fail (down) and its objects can be damaged (tamper) as an attacker
// with access to the bucket would.
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
	down bool
	puts int
}

func newMemStore() *memStore { return &memStore{objs: map[string][]byte{}} }

var _ objstore.Store = (*memStore)(nil)

func (m *memStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := objstore.ValidKey(key); err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != size {
		return fmt.Errorf("memstore: size %d, got %d", size, len(b))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return fmt.Errorf("memstore: down")
	}
	if _, ok := m.objs[key]; ok {
		return fmt.Errorf("memstore: %s: %w", key, objstore.ErrExist)
	}
	m.objs[key] = b
	m.puts++
	return nil
}

func (m *memStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, fmt.Errorf("memstore: down")
	}
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("memstore: %s: %w", key, objstore.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(b))), nil
}

func (m *memStore) Stat(ctx context.Context, key string) (objstore.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return objstore.Info{}, fmt.Errorf("memstore: %s: %w", key, objstore.ErrNotExist)
	}
	return objstore.Info{Key: key, Size: int64(len(b)), ModTime: time.Now()}, nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; !ok {
		return objstore.ErrNotExist
	}
	delete(m.objs, key)
	return nil
}

func (m *memStore) List(ctx context.Context, prefix string, fn func(objstore.Info) error) error {
	m.mu.Lock()
	var keys []string
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	m.mu.Unlock()
	slices.Sort(keys)
	for _, k := range keys {
		m.mu.Lock()
		n := len(m.objs[k])
		m.mu.Unlock()
		if err := fn(objstore.Info{Key: k, Size: int64(n)}); err != nil {
			return err
		}
	}
	return nil
}

// tamper replaces an object's bytes, bypassing write-once.
func (m *memStore) tamper(key string, f func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = f(bytes.Clone(m.objs[key]))
}

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	m.down = down
	m.mu.Unlock()
}
