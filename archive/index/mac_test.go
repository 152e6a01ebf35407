package index

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/crypto"
)

// The row MACs are stored: a change in how they are computed would make
// every row an older build wrote fail verify. These values were computed
// by the field-by-field writer before the MACs were pooled and gathered in
// one buffer (8fbd7d0).
func TestRowMACsAreStable(t *testing.T) {
	m := &MessageRow{Seq: 7, Size: 1234, Object: "messages/abc/abcdef", KeyObject: "keys/abc/abcdef", ObjectSize: 99,
		ArchivedAt: time.Unix(1700000000, 123456789), Date: time.Unix(1690000000, 0), From: "a@example.com", To: "b@example.com,c@example.com",
		Cc: "d@example.com", Subject: "Grüße", MessageID: "<x@y>", Header: []byte("From: a@example.com\r\n\r\n"), Structure: []byte{1, 2, 3},
		Problems: []string{"p1", "p2"}, State: 1}
	for i := range m.SHA256 {
		m.SHA256[i] = byte(i)
		m.ObjectSHA256[i] = byte(255 - i)
	}
	d := &DeliveryRow{Seq: 8, Message: 7, DeliveryKey: "k", Source: "smtp", Sender: "a@example.com", ReceivedAt: time.Unix(1700000001, 5), Envelope: []byte(`{"x":1}`)}
	ix := &Index{macs: crypto.NewMACPool([]byte("golden key"))}
	for i := 0; i < 3; i++ { // pooled HMACs reused
		if got, want := hex.EncodeToString(ix.messageMAC(m)), "5d3491e4f3fa745c0fc8ec96fb564500ee821e2b545e7af532b2b2ceed50aff7"; got != want {
			t.Fatalf("message MAC %s, want %s", got, want)
		}
		if got, want := hex.EncodeToString(ix.deliveryMAC(d)), "7c86bb35ae571523b6a1aba8962d6b78f951ac1b9ef092697349bfc302f5f9a0"; got != want {
			t.Fatalf("delivery MAC %s, want %s", got, want)
		}
	}
	m.Date = time.Time{} // the zero date's own encoding
	if hex.EncodeToString(ix.messageMAC(m)) == "5d3491e4f3fa745c0fc8ec96fb564500ee821e2b545e7af532b2b2ceed50aff7" {
		t.Fatal("the MAC does not cover the date")
	}
}

func BenchmarkRowMACs(b *testing.B) {
	m := &MessageRow{Seq: 7, Size: 10000, Object: "messages/abc/" + strings.Repeat("a", 64), KeyObject: "keys/abc/" + strings.Repeat("b", 64),
		ArchivedAt: time.Now(), From: "a@example.com", To: "b@example.com", Subject: "hello", MessageID: "<x@example.com>",
		Header: []byte(strings.Repeat("Received: from a.example.com by b.example.com; Thu, 26 Nov 2026\r\n", 5)), Structure: make([]byte, 120)}
	d := &DeliveryRow{Seq: 8, Message: 7, Source: "smtp", Sender: "a@example.com", ReceivedAt: time.Now(), Envelope: make([]byte, 300)}
	ix := &Index{macs: crypto.NewMACPool([]byte("k"))}
	for b.Loop() {
		ix.messageMAC(m)
		ix.deliveryMAC(d)
	}
}
