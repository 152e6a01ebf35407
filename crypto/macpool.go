package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"
)

// MACPool hands out HMAC-SHA256 instances keyed with one key. hmac.New
// allocates five times and hashes the padded key; a pooled instance is
// only reset (~1 µs against ~0.25 µs here). For MACs made once or more a
// message under a long-lived key: object names, index row MACs, blind
// search tokens.
type MACPool struct {
	pool sync.Pool
}

// NewMACPool returns a pool of HMAC-SHA256 instances under a copy of key.
func NewMACPool(key []byte) *MACPool {
	key = bytes.Clone(key)
	p := &MACPool{}
	p.pool.New = func() any { return hmac.New(sha256.New, key) }
	return p
}

// Get returns an HMAC in its initial state. Put it back when done with it
// (its Sum already copied out).
func (p *MACPool) Get() hash.Hash {
	h := p.pool.Get().(hash.Hash)
	h.Reset()
	return h
}

// Put returns h to the pool.
func (p *MACPool) Put(h hash.Hash) { p.pool.Put(h) }
