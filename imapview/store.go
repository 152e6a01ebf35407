package imapview

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
)

// Store sets the account's own flags (RFC 9051 §6.4.6). They are
// annotations in access.db, never a change to the archive; each batch of
// changes is audited before it is made. \Deleted cannot be set (nothing
// can be deleted), nor can anything be set under EXAMINE.
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	ctx, cancel := s.command()
	defer cancel()
	sel := s.sel
	if sel.readOnly {
		return errExamined
	}
	var names []string
	for _, f := range flags.Flags {
		switch {
		case strings.EqualFold(string(f), string(imap.FlagDeleted)) && flags.Op != imap.StoreFlagsDel:
			return errDeleteFlag
		case strings.EqualFold(string(f), `\Recent`), f == imap.FlagWildcard:
			return &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "This flag cannot be stored: " + string(f)}
		}
		names = append(names, string(f))
	}
	op, sign := auth.FlagsSet, ""
	switch flags.Op {
	case imap.StoreFlagsAdd:
		op, sign = auth.FlagsAdd, "+"
	case imap.StoreFlagsDel:
		op, sign = auth.FlagsRemove, "-"
	}
	changes := make([]string, len(names))
	for i, n := range names {
		changes[i] = sign + n
	}
	if op == auth.FlagsSet && len(changes) == 0 {
		changes = []string{"="}
	}
	ranges, err := s.resolve(ctx, numSet)
	if err != nil {
		return s.fail("store", err)
	}
	_, isUID := numSet.(imap.UIDSet)
	err = sel.each(ctx, ranges, fetchBatch, func(ms []member, seqs []int64) error {
		msgs := make([]uint64, len(ms))
		uids := make([]uint64, len(ms))
		for i, m := range ms {
			msgs[i], uids[i] = uint64(m.msg), uint64(m.key+1)
		}
		ev := s.event(audit.ActionFlag, audit.OutcomeSuccess)
		ev.Target = audit.Target{Folder: sel.f.name, UIDValidity: sel.uidValidity, UIDs: audit.FormatSet(uids)}
		ev.Details = audit.Details{Flags: changes, Count: int64(len(ms))}
		setLedger(&ev, msgs)
		if err := s.record(ctx, ev); err != nil {
			return err
		}
		now, err := s.srv.opts.Accounts.StoreFlags(ctx, s.user.Name, msgs, op, names)
		if err != nil {
			return err
		}
		if flags.Silent {
			return nil
		}
		for i, m := range ms {
			mw := w.CreateMessage(uint32(seqs[i]))
			if isUID {
				mw.WriteUID(imap.UID(m.key + 1))
			}
			mw.WriteFlags(toFlags(now[uint64(m.msg)]))
			if err := mw.Close(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.fail("store", err)
	}
	return nil
}
