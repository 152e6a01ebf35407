package crypto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
)

// A pooled HMAC gives what hmac.New gives, however often it is reused,
// whatever was written into it before, and from many goroutines at once;
// the pool keeps its own copy of the key.
func TestMACPoolMatchesHMAC(t *testing.T) {
	key := []byte("a key of some length, longer than nothing")
	p := NewMACPool(key)
	key[0] = 'X' // the caller's slice changes: the pool's key must not
	want := func(msg []byte) []byte {
		m := hmac.New(sha256.New, []byte("a key of some length, longer than nothing"))
		m.Write(msg)
		return m.Sum(nil)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				msg := bytes.Repeat([]byte(fmt.Sprint(g, i)), i%70)
				h := p.Get()
				h.Write(msg)
				got := h.Sum(nil)
				if i%3 == 0 {
					h.Write([]byte("left over")) // the next Get must not see it
				}
				p.Put(h)
				if !bytes.Equal(got, want(msg)) {
					t.Errorf("goroutine %d, message %d: %x, want %x", g, i, got, want(msg))
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkMACPool(b *testing.B) {
	p := NewMACPool([]byte("0123456789abcdef0123456789abcdef"))
	msg := make([]byte, 80)
	var out [sha256.Size]byte
	for b.Loop() {
		h := p.Get()
		h.Write(msg)
		h.Sum(out[:0])
		p.Put(h)
	}
}
