package retention

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-archive/cairn/archive"
	"github.com/cairn-archive/cairn/ingest"
	"github.com/cairn-archive/cairn/ingest/importer/gen"
)

// The simulation checks invariant 7 against an oracle: a plain Go
// evaluation of the rules and holds, written apart from the SQL that the
// package runs, over thousands of generated messages, random policies,
// holds placed and released, erasure requests, and a clock moving forward
// by months and years.

// simMsg is what the oracle knows of one message.
type simMsg struct {
	seq        uint64
	date       time.Time // zero: no Date field
	archived   time.Time
	from       []string // From field addresses
	hdrTo      []string // To and Cc field addresses
	senders    []string // envelope senders
	recipients []string // envelope recipients
	custodians []string
	sources    []string
	folders    []string
	dept       string // X-Department value
}

func (m *simMsg) addrs() []string {
	return slices.Concat(m.from, m.hdrTo, m.senders, m.recipients)
}

func domainOfAddr(a string) string { return a[strings.LastIndexByte(a, '@')+1:] }

func anyIn(xs, set []string) bool {
	for _, x := range xs {
		if slices.Contains(set, x) {
			return true
		}
	}
	return false
}

// oracleMatch is Match, evaluated in Go.
func oracleMatch(r *Match, m *simMsg) bool {
	if len(r.Custodians) > 0 && !anyIn(m.custodians, r.Custodians) {
		return false
	}
	if len(r.Addresses) > 0 && !anyIn(m.addrs(), r.Addresses) {
		return false
	}
	if len(r.Domains) > 0 {
		ok := false
		for _, a := range m.addrs() {
			d := domainOfAddr(a)
			for _, want := range r.Domains {
				if base, sub := strings.CutPrefix(want, "*."); sub && strings.HasSuffix(d, "."+base) || !sub && d == want {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.Sources) > 0 && !anyIn(m.sources, r.Sources) {
		return false
	}
	if len(r.Folders) > 0 && !anyIn(m.folders, lowerAll(r.Folders)) {
		return false
	}
	if len(r.Headers) > 0 {
		ok := false
		for _, h := range r.Headers {
			if m.dept != "" && strings.EqualFold(h.Field, "X-Department") && strings.Contains(strings.ToLower(m.dept), strings.ToLower(h.Value)) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func oracleRule(p *Policy, m *simMsg) *Rule {
	for i := range p.Rules {
		if oracleMatch(&p.Rules[i].Match, m) {
			return &p.Rules[i]
		}
	}
	return &p.Default
}

func oracleExpiry(p *Policy, m *simMsg) (time.Time, bool) {
	return oracleRule(p, m).Expiry(m.date, m.archived)
}

// oracleHeld: custodians (custodian, envelope sender, From), dates, and
// the simulation's queries (FROM address, SUBJECT word: see simHold).
func oracleHeld(h *Hold, m *simMsg, subjects map[uint64]string) bool {
	if len(h.Custodians) > 0 && !anyIn(slices.Concat(m.custodians, m.senders, m.from), h.Custodians) {
		return false
	}
	d := m.date
	if d.IsZero() {
		d = m.archived.Truncate(time.Second)
	}
	if !h.From.IsZero() && d.Before(h.From) {
		return false
	}
	if !h.To.IsZero() && !d.Before(h.To.AddDate(0, 0, 1)) {
		return false
	}
	if h.Query != "" {
		kw, arg, _ := strings.Cut(h.Query, " ")
		switch kw {
		case "FROM":
			if !slices.ContainsFunc(m.from, func(a string) bool { return strings.Contains(a, arg) }) {
				return false
			}
		case "SUBJECT":
			if !strings.Contains(strings.ToLower(subjects[m.seq]), strings.ToLower(arg)) {
				return false
			}
		default:
			panic("simulation query " + h.Query)
		}
	}
	return true
}

type sim struct {
	t        *testing.T
	h        *harness
	rng      *rand.Rand
	g        *gen.Generator
	msgs     map[uint64]*simMsg
	subjects map[uint64]string
	raws     map[uint64][]byte
	people   []string // addresses the generator used
	holds    []*Hold  // active, as the oracle knows them
	requests map[uint64][]string
	nextCase int
}

var simDomains = []string{"corp.example", "finra.example", "eu.partner.example", "partner.example", "news.example"}
var simDepts = []string{"", "", "Trading Desk", "Sales", "Legal"}

func randomPolicy(rng *rand.Rand, people []string) Policy {
	var p Policy
	pick := func(xs []string, n int) []string {
		var out []string
		for range n {
			x := xs[rng.IntN(len(xs))]
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
		return out
	}
	period := func() Period {
		switch rng.IntN(4) {
		case 0:
			return Period{Days: 30 + rng.IntN(700)}
		case 1:
			return Period{Months: 1 + rng.IntN(60)}
		case 2:
			return Period{Years: 1 + rng.IntN(12), Months: rng.IntN(12)}
		}
		return Period{Years: []int{6, 7, 10}[rng.IntN(3)]}
	}
	base := func() Base { return []Base{FromDate, FromArchived}[rng.IntN(2)] }
	for i := range 2 + rng.IntN(6) {
		var m Match
		for !m.IsZero() == false || rng.IntN(3) == 0 {
			switch rng.IntN(6) {
			case 0:
				m.Custodians = pick(people, 1+rng.IntN(4))
			case 1:
				m.Addresses = pick(people, 1+rng.IntN(4))
			case 2:
				d := pick(simDomains, 1+rng.IntN(2))
				if rng.IntN(3) == 0 {
					d = append(d, "*.partner.example")
				}
				m.Domains = d
			case 3:
				m.Sources = pick([]string{ingest.SourceSMTP, ingest.SourceJournal, ingest.SourceImport, ingest.SourceHarvest}, 1+rng.IntN(2))
			case 4:
				m.Folders = pick([]string{"INBOX", "Sent", "Archive/Legal"}, 1+rng.IntN(2))
			case 5:
				m.Headers = []HeaderMatch{{"X-Department", []string{"trading", "sales", "LEGAL"}[rng.IntN(3)]}}
			}
		}
		p.Rules = append(p.Rules, Rule{Name: fmt.Sprintf("rule-%d", i), Keep: period(), From: base(), Erasable: rng.IntN(3) == 0, Match: m})
	}
	p.Default = Rule{Name: "default", Keep: period(), From: base(), Erasable: rng.IntN(4) == 0}
	return p
}

// archive adds n messages (some delivered again to other custodians).
func (s *sim) archive(n int) {
	type job struct {
		raw []byte
		env *ingest.Envelope
		m   *simMsg
		sub string
		dup uint64
	}
	var jobs []job
	for range n {
		if len(s.msgs) > 0 && s.rng.IntN(8) == 0 {
			// A further delivery of a known message: new custodian, source.
			var seqs []uint64
			for seq := range s.msgs {
				seqs = append(seqs, seq)
			}
			slices.Sort(seqs)
			seq := seqs[s.rng.IntN(len(seqs))]
			env := s.envelope()
			jobs = append(jobs, job{raw: s.raws[seq], env: env, dup: seq})
			continue
		}
		x := s.g.Next(2500 + s.rng.IntN(2000))
		m := &simMsg{}
		if s.rng.IntN(10) == 0 {
			x.Raw = setHeader(x.Raw, "Date", "")
			x.Raw = []byte(strings.Replace(string(x.Raw), "Date: \n", "", 1))
		} else {
			m.date = x.Date.UTC().Truncate(time.Second)
		}
		// Replace From and To with people the policies name.
		from := s.people[s.rng.IntN(len(s.people))]
		to := s.people[s.rng.IntN(len(s.people))]
		x.Raw = setHeader(x.Raw, "From", from)
		x.Raw = setHeader(x.Raw, "To", to)
		x.Raw = setHeader(x.Raw, "Cc", "")
		m.from, m.hdrTo = []string{from}, []string{to}
		if dept := simDepts[s.rng.IntN(len(simDepts))]; dept != "" {
			x.Raw = setHeader(x.Raw, "X-Department", dept)
			m.dept = dept
		}
		jobs = append(jobs, job{raw: x.Raw, env: s.envelope(), m: m, sub: x.Subject})
	}
	seqs := make([]ingest.Receipt, len(jobs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				rc, err := s.h.st.Archive(context.Background(), jobs[i].env, jobs[i].raw)
				if err != nil {
					s.t.Error(err)
				}
				seqs[i] = rc
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
	for i, j := range jobs {
		rc := seqs[i]
		m := s.msgs[rc.MessageSeq]
		if m == nil {
			if j.m == nil {
				// The bytes of a message since gone: archived anew, as a
				// new message with the same header.
				o := s.msgs[j.dup]
				j.m = &simMsg{date: o.date, from: o.from, hdrTo: o.hdrTo, dept: o.dept}
			}
			m = j.m
			m.seq = rc.MessageSeq
			row, err := s.h.st.Index().Message(context.Background(), m.seq)
			if err != nil {
				s.t.Fatal(err)
			}
			if row.State != 0 {
				continue
			}
			m.archived = row.ArchivedAt
			s.msgs[m.seq] = m
			s.subjects[m.seq] = row.Subject
			s.raws[m.seq] = j.raw
		}
		e := j.env
		m.senders = append(m.senders, strings.ToLower(e.Sender))
		for _, r := range e.Recipients {
			m.recipients = append(m.recipients, strings.ToLower(r.Address))
		}
		m.custodians = append(m.custodians, e.CustodianList()...)
		m.sources = append(m.sources, e.Source)
		if f := e.Meta["folder"]; f != "" {
			m.folders = append(m.folders, strings.ToLower(f))
		}
	}
}

func (s *sim) envelope() *ingest.Envelope {
	src := []string{ingest.SourceSMTP, ingest.SourceJournal, ingest.SourceImport, ingest.SourceHarvest}[s.rng.IntN(4)]
	sender := s.people[s.rng.IntN(len(s.people))]
	var rs []ingest.Recipient
	for range 1 + s.rng.IntN(3) {
		kind := []ingest.RecipientKind{ingest.KindTo, ingest.KindCc, ingest.KindBcc}[s.rng.IntN(3)]
		rs = append(rs, ingest.Recipient{Address: s.people[s.rng.IntN(len(s.people))], Kind: kind})
	}
	var cust []string
	if s.rng.IntN(2) == 0 {
		cust = []string{s.people[s.rng.IntN(len(s.people))]}
	}
	e := &ingest.Envelope{Source: src, Sender: sender, Recipients: rs, Custodians: cust, ReceivedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if src == ingest.SourceImport || src == ingest.SourceHarvest {
		e.Meta = map[string]string{"folder": []string{"INBOX", "Sent", "Archive/Legal", "inbox"}[s.rng.IntN(4)]}
	}
	return e
}

// simHold is a random hold the oracle can evaluate.
func (s *sim) simHold() HoldSpec {
	s.nextCase++
	spec := HoldSpec{Case: fmt.Sprintf("C-%d", s.nextCase), Reason: "simulation"}
	for spec.Custodians == nil && spec.From.IsZero() && spec.Query == "" {
		if s.rng.IntN(2) == 0 {
			spec.Custodians = []string{s.people[s.rng.IntN(len(s.people))]}
		}
		if s.rng.IntN(3) == 0 {
			from := time.Date(2015+s.rng.IntN(10), time.Month(1+s.rng.IntN(12)), 1+s.rng.IntN(28), 0, 0, 0, 0, time.UTC)
			spec.From, spec.To = from, from.AddDate(0, 1+s.rng.IntN(12), 0)
		}
		if s.rng.IntN(3) == 0 {
			if s.rng.IntN(2) == 0 {
				spec.Query = "FROM " + s.people[s.rng.IntN(len(s.people))]
			} else {
				spec.Query = "SUBJECT " + []string{"budget", "review", "meeting", "contract", "invoice", "plan"}[s.rng.IntN(6)]
			}
		}
	}
	return spec
}

func (s *sim) heldBy(m *simMsg) *Hold {
	for _, h := range s.holds {
		if oracleHeld(h, m, s.subjects) {
			return h
		}
	}
	return nil
}

// states returns the state of every message the oracle tracks.
func (s *sim) states() map[uint64]int {
	out := map[uint64]int{}
	rows, err := s.h.st.Index().DB().Query(`SELECT seq, state FROM messages`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq uint64
		var st int
		rows.Scan(&seq, &st)
		out[seq] = st
	}
	return out
}

// checkGone checks every message that left the archive during one step:
// it was unheld, and expired (disposal) or erasable (erasure) at that
// instant, by the oracle.
func (s *sim) checkGone(step string, before map[uint64]int, now time.Time, erasing map[uint64]bool) {
	p := &s.h.policy
	for seq, st := range s.states() {
		if before[seq] != 0 || st == 0 {
			continue
		}
		m := s.msgs[seq]
		if m == nil {
			s.t.Fatalf("%s: message %d, unknown to the oracle, was removed", step, seq)
		}
		if h := s.heldBy(m); h != nil {
			s.t.Fatalf("%s: message %d removed (state %d) while hold %s (case %s: %s) covers it", step, seq, st, h.ID, h.Case, h.Describe())
		}
		exp, ok := oracleExpiry(p, m)
		expired := ok && !now.Before(exp)
		switch st {
		case 1:
			if !expired {
				s.t.Fatalf("%s: message %d disposed at %v, its rule %s keeps it until %v", step, seq, now, oracleRule(p, m).Name, exp)
			}
		case 2:
			if !erasing[seq] {
				s.t.Fatalf("%s: message %d erased, but no erasure request named it", step, seq)
			}
			if !expired && !oracleRule(p, m).Erasable {
				s.t.Fatalf("%s: message %d erased at %v inside the obligation of rule %s (until %v)", step, seq, now, oracleRule(p, m).Name, exp)
			}
		}
	}
}

// checkAllExpiredGone: after a run, no active message is expired and
// unheld.
func (s *sim) checkAllExpiredGone(now time.Time) {
	for seq, st := range s.states() {
		m := s.msgs[seq]
		if st != 0 || m == nil {
			continue
		}
		exp, ok := oracleExpiry(&s.h.policy, m)
		if ok && !now.Before(exp) && s.heldBy(m) == nil {
			s.t.Fatalf("after a run at %v: message %d expired %v (rule %s) and unheld, still active", now, seq, exp, oracleRule(&s.h.policy, m).Name)
		}
	}
}

func TestSimulation(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	var people []string
	for i := range 24 {
		people = append(people, fmt.Sprintf("user%d@%s", i, simDomains[i%len(simDomains)]))
	}
	p := randomPolicy(rng, people)
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Rules {
		t.Logf("rule %s: keep %s from %s, erasable %v, %s", r.Name, r.Keep, r.From, r.Erasable, r.Match.Describe())
	}
	t.Logf("default: keep %s from %s, erasable %v", p.Default.Keep, p.Default.From, p.Default.Erasable)
	h := newHarness(t, p, nil)
	h.clock.set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	s := &sim{t: t, h: h, rng: rng, g: gen.New(seed), msgs: map[uint64]*simMsg{}, subjects: map[uint64]string{},
		raws: map[uint64][]byte{}, people: people, requests: map[uint64][]string{}}
	total := 2400
	if testing.Short() {
		total = 600
	}
	t0 := time.Now()
	s.archive(total / 3)
	t.Logf("[%v] archived %d", time.Since(t0).Round(time.Millisecond), total/3)
	ctx := context.Background()
	erasable := map[uint64]bool{} // named by some erasure request so far
	for step := 0; step < 18; step++ {
		// Holds come and go.
		for range 1 + rng.IntN(2) {
			r, err := h.m.PlaceHold(ctx, tester, s.simHold())
			if err != nil {
				t.Fatal(err)
			}
			s.holds = append(s.holds, r.Hold)
		}
		if len(s.holds) > 0 && rng.IntN(3) > 0 {
			i := rng.IntN(len(s.holds))
			if _, err := h.m.ReleaseHold(ctx, tester, s.holds[i].Case, "simulation"); err != nil {
				t.Fatal(err)
			}
			s.holds = slices.Delete(s.holds, i, i+1)
		}
		if step == 6 || step == 12 {
			s.archive(total / 3)
		}
		// An erasure request now and then.
		if rng.IntN(2) == 0 {
			subj := people[rng.IntN(len(people))]
			for seq, m := range s.msgs {
				if slices.Contains(slices.Concat(m.addrs(), m.custodians), subj) {
					erasable[seq] = true
				}
			}
			before := s.states()
			dry, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: subj, Reason: fmt.Sprintf("request %d", step), DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := h.m.Erase(ctx, tester, ErasureRequest{Subject: subj, Reason: fmt.Sprintf("request %d", step)})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Erased) != len(dry.Erased) || len(rep.Kept) != len(dry.Kept) {
				t.Fatalf("erasure of %s: dry run %d erased %d kept, run %d erased %d kept", subj, len(dry.Erased), len(dry.Kept), len(rep.Erased), len(rep.Kept))
			}
			s.checkGone(fmt.Sprintf("step %d erasure of %s", step, subj), before, h.clock.now(), erasable)
			t.Logf("step %d: erasure of %s: %d erased, %d kept", step, subj, len(rep.Erased), len(rep.Kept))
		}
		// Time passes, then a run.
		h.clock.advance(time.Duration(20+rng.IntN(300)) * 24 * time.Hour)
		now := h.clock.now()
		before := s.states()
		dry, err := h.m.Run(ctx, SystemCaller, true)
		if err != nil {
			t.Fatal(err)
		}
		run, err := h.m.Run(ctx, SystemCaller, false)
		if err != nil {
			t.Fatal(err)
		}
		if !equalSeqs(seqsOf(dry.Disposed), seqsOf(run.Disposed)) || len(dry.Erased) != len(run.Erased) {
			t.Fatalf("step %d: the dry run listed %d disposals and %d erasures, the run made %d and %d",
				step, len(dry.Disposed), len(dry.Erased), len(run.Disposed), len(run.Erased))
		}
		if len(run.Failed) > 0 {
			t.Fatalf("step %d: failures %v", step, run.Failed)
		}
		s.checkGone(fmt.Sprintf("step %d run at %v", step, now), before, now, erasable)
		s.checkAllExpiredGone(now)
		t.Logf("[%v] step %d at %s: %d checked, %d disposed, %d erased, %d expired but held; %d holds", time.Since(t0).Round(time.Millisecond), step, now.Format(time.DateOnly),
			run.Checked, len(run.Disposed), len(run.Erased), run.Held, len(s.holds))
	}
	rep, err := h.st.Verify(ctx, archive.VerifyOptions{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	gone := 0
	for _, st := range s.states() {
		if st != 0 {
			gone++
		}
	}
	if !rep.OK() || len(rep.Disposed) != gone {
		t.Fatalf("verify --full: %d problems (%v), %d named disposed of %d gone", len(rep.Problems), rep.Problems, len(rep.Disposed), gone)
	}
}
