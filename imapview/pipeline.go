package imapview

import (
	"bytes"
	"context"
	"regexp"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/imapview/search"
)

// Audit for pipelined FETCH commands.
//
// Every FETCH is recorded in the audit log before any of its data is sent,
// and Record returns only once the event is durable (an fsync). Clients
// such as mbsync fetch one message per command, pipelining hundreds of
// commands; recording each alone would cost one fsync per message. So
// before serving a UID FETCH, the session reads (without consuming) the
// UID FETCH commands the client has already sent behind it and records
// them too, in one event; when they come up, their access is on record and
// they are served without another event. A pipelined command is covered
// only when it asks for exactly the items its event names; anything else
// is recorded on its own. If the client hangs up first, the log names
// accesses that did not happen: it may say more than happened, never less.

// maxPreAudited bounds the commands recorded ahead (the read buffer holds
// at most ~150 short ones).
const maxPreAudited = 1024

var pipelinedFetch = regexp.MustCompile(`(?i)^[!#-'*+,.-Z^-z|~]+ UID FETCH ([0-9:*,]+) (.+)$`)

// itemsKey is the canonical form of FETCH items: upper case, sorted, UID
// included (UID FETCH always returns it).
func itemsKey(parts []string) string {
	out := append([]string{"UID"}, parts...)
	for i := range out {
		out[i] = strings.ToUpper(out[i])
	}
	sort.Strings(out)
	return strings.Join(sliceCompact(out), " ")
}

func sliceCompact(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// rawItems splits the items of a FETCH command line as written: "(A B[C D]
// E)" into [A, B[C D], E]. It gives up (ok false) on literals, partials
// with spaces and anything it does not know to read like go-imap does.
func rawItems(s string) (items []string, ok bool) {
	s = strings.TrimSpace(s)
	if strings.ContainsAny(s, "{\"") {
		return nil, false
	}
	if strings.HasPrefix(s, "(") {
		if !strings.HasSuffix(s, ")") {
			return nil, false
		}
		s = s[1 : len(s)-1]
	}
	depth, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || (s[i] == ' ' && depth == 0) {
			if i > start {
				items = append(items, s[start:i])
			}
			start = i + 1
			continue
		}
		switch s[i] {
		case '[', '(':
			depth++
		case ']', ')':
			depth--
		}
	}
	for _, it := range items {
		switch strings.ToUpper(it) {
		case "ALL", "FAST", "FULL", "BODY":
			return nil, false // macros and BODY: go-imap expands them
		}
	}
	return items, len(items) > 0 && depth == 0
}

// preAuditKey names a UID FETCH for the pre-audit set.
func preAuditKey(set, items string) string { return set + "\x00" + items }

// preAudited reports (and consumes) whether this UID FETCH was recorded
// ahead with a pipelined burst.
func (s *session) preAudited(numSet imap.NumSet, parts []string) bool {
	set, ok := numSet.(imap.UIDSet)
	if !ok || s.ahead == nil {
		return false
	}
	k := preAuditKey(set.String(), itemsKey(parts))
	if s.ahead[k] > 0 {
		if s.ahead[k]--; s.ahead[k] == 0 {
			delete(s.ahead, k)
		}
		return true
	}
	return false
}

// recordPipelined records, in one event, the UID FETCH commands for the
// same items already pipelined behind the current one, and remembers them;
// when they send bodies, it starts opening their messages ahead. The
// current command (head) goes into the same event when it names at most
// maxPreAudited UIDs: then covered is true and it records nothing itself.
// Recorded apart, it was a second durable write for every burst, during
// which the session sent nothing.
func (s *session) recordPipelined(ctx context.Context, head imap.UIDSet, parts []string, body bool) (covered bool, err error) {
	if len(s.ahead) >= maxPreAudited {
		return false, nil
	}
	buf := s.conn.Pipelined()
	if len(buf) == 0 {
		return false, nil
	}
	want := itemsKey(parts)
	var ranges []keyRange
	var keys []string
	w := s.sel
	for _, line := range bytes.Split(buf, []byte("\r\n")) {
		m := pipelinedFetch.FindSubmatch(line)
		if m == nil {
			continue
		}
		items, ok := rawItems(string(m[2]))
		if !ok || itemsKey(items) != want {
			continue
		}
		set, err := search.ParseSet(string(m[1]))
		if err != nil {
			continue
		}
		var uids imap.UIDSet
		for _, r := range set {
			lo, hi := r.Lo, r.Hi
			if hi == ^uint32(0) {
				hi = 0 // "*"
			}
			if lo == ^uint32(0) {
				lo = 0
			}
			uids = append(uids, imap.UIDRange{Start: imap.UID(lo), Stop: imap.UID(hi)})
		}
		rs, err := s.resolve(ctx, uids)
		if err != nil {
			return false, err
		}
		ranges = append(ranges, rs...)
		keys = append(keys, preAuditKey(uids.String(), want))
		if len(keys)+len(s.ahead) >= maxPreAudited {
			break
		}
	}
	if len(keys) == 0 {
		return false, nil
	}
	if smallUIDSet(head, maxPreAudited) {
		rs, err := s.resolve(ctx, head)
		if err != nil {
			return false, err
		}
		ranges, covered = append(ranges, rs...), true
	}
	var uids, ledger []uint64
	rs := normalizeRanges(ranges)
	for _, r := range rs {
		for lo := r.lo; lo <= r.hi; {
			ms, err := w.page(ctx, lo, r.hi, bodyBatch)
			if err != nil {
				return false, err
			}
			if len(ms) == 0 {
				break
			}
			for _, m := range ms {
				uids, ledger = append(uids, uint64(m.key+1)), append(ledger, uint64(m.msg))
			}
			lo = ms[len(ms)-1].key + 1
		}
	}
	ev := s.event(audit.ActionFetch, audit.OutcomeSuccess)
	ev.Target = audit.Target{Folder: w.f.name, UIDValidity: w.uidValidity, UIDs: audit.FormatSet(uids)}
	ev.Details = audit.Details{Parts: parts, Count: int64(len(uids)),
		Note: "recorded ahead for pipelined UID FETCH commands"}
	setLedger(&ev, ledger)
	if err := s.record(ctx, ev); err != nil {
		return false, err
	}
	if s.ahead == nil {
		s.ahead = map[string]int{}
	}
	for _, k := range keys {
		s.ahead[k]++
	}
	if body {
		msgs := make([]int64, len(ledger))
		for i, l := range ledger {
			msgs[i] = int64(l)
		}
		s.startReadahead(msgs)
	}
	return covered, nil
}

// smallUIDSet reports whether set names at most n UIDs ("*" counts as
// many).
func smallUIDSet(set imap.UIDSet, n uint64) bool {
	var total uint64
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 {
			return false
		}
		lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
		total += uint64(hi-lo) + 1
		if total > n {
			return false
		}
	}
	return true
}
