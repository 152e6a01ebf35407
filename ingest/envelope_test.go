package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// reflected is Envelope without its MarshalJSON: what encoding/json writes
// for the struct by reflection, as the archive recorded envelopes before
// MarshalJSON existed.
type reflected Envelope

func FuzzEnvelopeJSON(f *testing.F) {
	seeds := []*Envelope{
		{Source: SourceSMTP, Sender: "a@example.com", Recipients: []Recipient{{Address: "b@example.com", Kind: KindRecipient}},
			ReceivedAt: time.Date(2026, 11, 27, 20, 0, 0, 123000000, time.UTC), Meta: map[string]string{"client_ip": "127.0.0.1", "helo": "<x> & y"}},
		{Source: SourceJournal, Recipients: []Recipient{{Address: "c@example.com", Kind: KindBcc, ExpandedFrom: "list@example.com"},
			{Address: "d@example.com", Kind: KindTo, ForwardedFrom: "e@example.com"}},
			Custodians: []string{"c@example.com", "\xff"}, DeliveryKey: "k\u2028", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -7*3600))},
		{},
	}
	for _, e := range seeds {
		b, err := json.Marshal((*reflected)(e))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"recipients":[],"custodians":[],"meta":{},"received_at":"0001-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Envelope
		if json.Unmarshal(b, &e) != nil {
			return
		}
		want, werr := json.Marshal((*reflected)(&e))
		got, gerr := e.MarshalJSON()
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("MarshalJSON of %+v:\n got %s, %v\nwant %s, %v", e, got, gerr, want, werr)
		}
		// json.Marshal uses MarshalJSON now, with the same bytes.
		if werr == nil {
			if via, err := json.Marshal(&e); err != nil || !bytes.Equal(via, want) {
				t.Fatalf("json.Marshal(&e) = %s, %v; want %s", via, err, want)
			}
		}
	})
}
