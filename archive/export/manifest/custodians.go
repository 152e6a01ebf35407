package manifest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// envelope is the part of an envelope JSON (docs/FORMAT.md §6) that
// custodians come from.
type envelope struct {
	Source     string `json:"source"`
	Sender     string `json:"sender"`
	Recipients []struct {
		Addr string `json:"addr"`
		Kind string `json:"kind"`
	} `json:"recipients"`
	Custodians []string `json:"custodians"`
}

// Custodians derives a message's custodians from the envelopes of its
// deliveries, as the archive does: each delivery's custodians field, or,
// when it is empty, its recipients' addresses; lower-cased, trimmed, empty
// ones dropped; the union, sorted.
func Custodians(envelopes [][]byte) ([]string, error) {
	set := map[string]bool{}
	for i, b := range envelopes {
		var e envelope
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("envelope %d: %w", i, err)
		}
		src := e.Custodians
		if len(src) == 0 {
			for _, r := range e.Recipients {
				src = append(src, r.Addr)
			}
		}
		for _, a := range src {
			if a = strings.ToLower(strings.TrimSpace(a)); a != "" {
				set[a] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return out, nil
}
