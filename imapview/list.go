package imapview

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// listEntry is one folder of the hierarchy.
type listEntry struct {
	name     string
	noSelect bool
	children bool
}

// folders returns the account's folder hierarchy, sorted: INBOX, then
// Cases/, Custodians/ and Dates/ with what the scope holds.
func (v *viewer) folders(ctx context.Context) ([]listEntry, error) {
	out := []listEntry{{name: inboxName}}
	custodians, err := v.custodians(ctx)
	if err != nil {
		return nil, err
	}
	var cases []string
	if v.cases != nil {
		all, err := v.cases.Cases(ctx)
		if err != nil {
			return nil, fmt.Errorf("cases: %w", err)
		}
		for _, c := range all {
			if v.scope.CoversCase(c) {
				cases = append(cases, c)
			}
		}
	}
	months, err := v.months(ctx)
	if err != nil {
		return nil, err
	}
	out = append(out, listEntry{name: casesName, noSelect: true, children: len(cases) > 0})
	for _, c := range cases {
		out = append(out, listEntry{name: casesName + "/" + c})
	}
	out = append(out, listEntry{name: custodiansName, noSelect: true, children: len(custodians) > 0})
	for _, c := range custodians {
		out = append(out, listEntry{name: custodiansName + "/" + c})
	}
	out = append(out, listEntry{name: datesName, noSelect: true, children: len(months) > 0})
	year := ""
	for _, m := range months { // "2024/03"
		if y := m[:4]; y != year {
			year = y
			out = append(out, listEntry{name: datesName + "/" + y, noSelect: true, children: true})
		}
		out = append(out, listEntry{name: datesName + "/" + m})
	}
	return out, nil
}

// custodians lists the custodian addresses in scope that have messages,
// by a loose index scan (one index seek per distinct address).
func (v *viewer) custodians(ctx context.Context) ([]string, error) {
	if !v.scope.All && len(v.scope.Custodians) == 0 && len(v.scope.Domains) == 0 {
		return nil, nil
	}
	var out []string
	if !v.scope.All && len(v.scope.Domains) == 0 {
		for _, c := range v.scope.Custodians {
			var n int
			if err := v.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM custodians WHERE addr = ?)`, c).Scan(&n); err != nil {
				return nil, err
			}
			if n != 0 && !strings.Contains(c, "/") {
				out = append(out, c)
			}
		}
		return out, nil
	}
	st, err := v.db.PrepareContext(ctx, `SELECT addr FROM custodians WHERE addr > ? ORDER BY addr LIMIT 1`)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	last := ""
	for {
		var a string
		if err := st.QueryRowContext(ctx, last).Scan(&a); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				break
			}
			return nil, err
		}
		last = a
		// A "/" would split the folder name; such an address cannot be a
		// custodian's folder.
		if v.scope.CoversCustodian(a) && !strings.Contains(a, "/") && a != "" {
			out = append(out, a)
		}
	}
	return out, nil
}

// months lists "yyyy/mm" of the months (UTC, INTERNALDATE) that hold
// messages in scope.
func (v *viewer) months(ctx context.Context) ([]string, error) {
	var out []string
	if v.scope.All {
		var lo, hi *int64
		err := v.db.QueryRowContext(ctx, `SELECT (SELECT MIN(received_at) FROM deliveries INDEXED BY deliveries_received WHERE seq = message),
			(SELECT MAX(received_at) FROM deliveries INDEXED BY deliveries_received WHERE seq = message)`).Scan(&lo, &hi)
		if err != nil || lo == nil || hi == nil {
			return nil, err
		}
		t := time.Unix(0, *lo).UTC()
		m := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		end := time.Unix(0, *hi).UTC()
		st, err := v.db.PrepareContext(ctx, `SELECT EXISTS(SELECT 1 FROM deliveries INDEXED BY deliveries_received
			WHERE received_at >= ? AND received_at < ? AND seq = message)`)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		for n := 0; !m.After(end) && n < 12*500; n++ {
			next := m.AddDate(0, 1, 0)
			var ok int
			if err := st.QueryRowContext(ctx, m.UnixNano(), next.UnixNano()).Scan(&ok); err != nil {
				return nil, err
			}
			if ok != 0 && m.Year() >= 1000 && m.Year() <= 9999 {
				out = append(out, m.Format("2006/01"))
			}
			m = next
		}
		return out, nil
	}
	// The INBOX's members now (numbered first, for an account scoped to
	// cases: its months are listed before the INBOX was ever selected).
	in := &folder{kind: kindInbox}
	st, err := v.numbering(ctx, 0, in)
	if err != nil {
		return nil, err
	}
	head, err := ledgerHead(ctx, v.db)
	if err != nil {
		return nil, err
	}
	inbox, err := v.liveRowsOf(ctx, in, 0, maxKey, head, st.Gen)
	if err != nil {
		return nil, err
	}
	rows, err := v.db.QueryContext(ctx, `SELECT DISTINCT strftime('%Y/%m', dd.received_at / 1000000000, 'unixepoch') AS ym
		FROM (`+inbox.q+`) s JOIN deliveries dd ON dd.seq = s.msg ORDER BY ym`, inbox.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var ym *string
		if err := rows.Scan(&ym); err != nil {
			return nil, err
		}
		if ym != nil && len(*ym) == 7 {
			out = append(out, *ym)
		}
	}
	return out, rows.Err()
}

// exists reports whether name is one of the account's folders.
func (s *session) exists(ctx context.Context, name string) (bool, error) {
	f, err := parseFolder(name)
	if err != nil {
		return false, nil
	}
	switch f.kind {
	case kindInbox:
		return true, nil
	case kindCustodian:
		if !s.viewer.scope.CoversCustodian(f.addr) {
			return false, nil
		}
		var n int
		err := s.srv.db.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM custodians WHERE addr = ?)`, f.addr).Scan(&n)
		return n != 0, err
	}
	all, err := s.viewer.folders(ctx)
	if err != nil {
		return false, err
	}
	for _, e := range all {
		if e.name == f.name {
			return true, nil
		}
	}
	return false, nil
}

// List answers LIST and LSUB (RFC 9051 §6.3.9, RFC 5258): every folder is
// subscribed.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	ctx, cancel := s.command()
	defer cancel()
	if len(patterns) == 1 && patterns[0] == "" {
		// The hierarchy delimiter and root (RFC 9051 §6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delim, Mailbox: ""})
	}
	all, err := s.viewer.folders(ctx)
	if err != nil {
		return s.fail("list", err)
	}
	for _, e := range all {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(e.name, Delim, ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		d := &imap.ListData{Delim: Delim, Mailbox: e.name}
		if e.noSelect {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
		}
		if e.children {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if options.SelectSubscribed || options.ReturnSubscribed {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

// Status answers STATUS (RFC 9051 §6.3.11) from the index. UNSEEN counts
// the messages without the account's own \Seen.
func (s *session) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	ctx, cancel := s.command()
	defer cancel()
	f, err := parseFolder(mailbox)
	if err != nil {
		return nil, errNonexistent
	}
	if ok, err := s.exists(ctx, f.name); err != nil || !ok {
		if err != nil {
			return nil, s.fail("status", err)
		}
		return nil, errNonexistent
	}
	if !f.selectable() {
		return nil, errNoSelect
	}
	nst, err := s.viewer.numbering(ctx, s.srv.uidValidity, f)
	if err != nil {
		return nil, s.fail("status", err)
	}
	mark, err := ledgerHead(ctx, s.srv.db)
	if err != nil {
		return nil, s.fail("status", err)
	}
	count, _, next, err := s.viewer.folderStats(ctx, f, mark, nst.Gen)
	if err != nil {
		return nil, s.fail("status", err)
	}
	data := &imap.StatusData{Mailbox: mailbox, UIDNext: imap.UID(next + 1), UIDValidity: nst.UIDValidity}
	n := uint32(count)
	zero := uint32(0)
	data.NumMessages = &n
	data.NumRecent = &zero
	data.NumDeleted = &zero
	if options.NumUnseen || options.Size {
		live, err := s.viewer.liveRowsOf(ctx, f, 0, maxKey, mark, nst.Gen)
		if err != nil {
			return nil, s.fail("status", err)
		}
		if options.NumUnseen {
			var seen int64
			err := s.srv.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (`+live.q+`) r WHERE EXISTS (SELECT 1 FROM acc.flags af
				WHERE af.user = ? AND af.message = r.msg AND af.flag = '\Seen')`, append(live.args, s.user.Name)...).Scan(&seen)
			if err != nil {
				return nil, s.fail("status", err)
			}
			u := uint32(count - seen)
			data.NumUnseen = &u
		}
		if options.Size {
			var size int64
			err := s.srv.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(m.size), 0) FROM (`+live.q+`) r JOIN messages m ON m.seq = r.msg`, live.args...).Scan(&size)
			if err != nil {
				return nil, s.fail("status", err)
			}
			data.Size = &size
		}
	}
	return data, nil
}
