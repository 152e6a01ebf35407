package imapview

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/cairn-archive/cairn/audit"
	"github.com/cairn-archive/cairn/auth"
)

// session is one connection. go-imap calls its methods one command at a
// time (IDLE runs alone), so it needs no lock of its own.
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	id     string
	addr   netip.AddrPort
	ctx    context.Context
	cancel context.CancelFunc

	user    *auth.User
	viewer  *viewer
	sel     *view
	checked time.Time      // when the account was last checked to be enabled
	ahead   map[string]int // UID FETCHes recorded ahead (pipeline.go)
	ra      *readahead     // messages opened ahead for them (prefetch.go)
	next    *nextRows      // rows of the next batch of bodies, read ahead (prefetch.go)
}

var (
	_ imapserver.Session            = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
	_ imapserver.SessionAppendCheck = (*session)(nil)
)

// cmdTimeout bounds one command's work against the index and the store.
const cmdTimeout = 10 * time.Minute

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	var addr netip.AddrPort
	if ta, ok := c.NetConn().RemoteAddr().(*net.TCPAddr); ok {
		addr = ta.AddrPort()
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	}
	if !s.admit(addr.Addr()) {
		return nil, nil, errTooManyConns
	}
	var id [8]byte
	rand.Read(id[:])
	ctx, cancel := context.WithCancel(context.Background())
	return &session{srv: s, conn: c, id: hex.EncodeToString(id[:]), addr: addr, ctx: ctx, cancel: cancel}, nil, nil
}

func (s *session) Close() error {
	s.cancel()
	s.stopReadahead()
	s.dropNext()
	s.srv.release(s.addr.Addr())
	return nil
}

func (s *session) isTLS() bool {
	_, ok := s.conn.NetConn().(*tls.Conn)
	return ok
}

func (s *session) command() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, cmdTimeout)
}

// cleanText makes a client-supplied string safe for an audit event.
func cleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// event returns an audit event of this session with actor and source set.
func (s *session) event(action audit.Action, outcome audit.Outcome) audit.Event {
	ev := audit.Event{Action: action, Outcome: outcome,
		Actor:  audit.Actor{Session: s.id, AuthMech: "password"},
		Source: audit.Source{Port: int(s.addr.Port()), TLS: s.isTLS(), Service: "imap"}}
	if s.addr.Addr().IsValid() {
		ev.Source.IP = s.addr.Addr().String()
	}
	if s.user != nil {
		ev.Actor.User, ev.Actor.Role = s.user.Name, string(s.user.Role)
	}
	return ev
}

// record records ev; the caller refuses the access when it fails.
func (s *session) record(ctx context.Context, ev audit.Event) error {
	if _, err := s.srv.opts.Audit.Record(ctx, ev); err != nil {
		return errAudit{err}
	}
	return nil
}

func (s *session) fail(op string, err error) error { return imapError(s.srv.lg, op, err) }

// Login checks a password (LOGIN, and AUTHENTICATE PLAIN through go-imap).
// RFC 9051 §6.2.3. Every answer to a failure is the same.
func (s *session) Login(username, password string) error {
	ctx, cancel := s.command()
	defer cancel()
	u, _, err := s.srv.opts.Accounts.Authenticate(ctx, username, password, s.addr.Addr())
	if err != nil {
		ev := s.event(audit.ActionLoginFailure, audit.OutcomeFailure)
		ev.Actor.User = cleanText(username, 256)
		ev.Reason = "authentication failed"
		if !errors.Is(err, auth.ErrAuthFailed) {
			ev.Reason = "authentication error"
			s.srv.lg.Error("login check failed", "err", err)
		}
		if rerr := s.record(ctx, ev); rerr != nil {
			s.srv.lg.Error("audit event not recorded", "action", ev.Action, "err", rerr)
		}
		return imapserver.ErrAuthFailed
	}
	s.user = u
	ev := s.event(audit.ActionLogin, audit.OutcomeSuccess)
	if err := s.record(ctx, ev); err != nil {
		s.user = nil
		return s.fail("login", err)
	}
	s.viewer = &viewer{db: s.srv.db, scope: u.Scope, user: u.Name, cases: s.srv.opts.Cases,
		acc: s.srv.opts.Accounts, numberMu: &s.srv.numberMu}
	s.checked = time.Now()
	return nil
}

// Namespace: one personal namespace, "/" delimited (RFC 2342).
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: Delim}}}, nil
}

// The archive is never changed (DESIGN.md invariant 5): every command that
// would add, alter, move or delete is refused with NO [NOPERM], never
// TRYCREATE, whatever the folder.

// Create is refused (RFC 9051 §6.3.4).
func (s *session) Create(mailbox string, options *imap.CreateOptions) error { return errReadOnly }

// Delete is refused (RFC 9051 §6.3.5).
func (s *session) Delete(mailbox string) error { return errReadOnly }

// Rename is refused (RFC 9051 §6.3.6).
func (s *session) Rename(mailbox, newName string, options *imap.RenameOptions) error {
	return errReadOnly
}

// CheckAppend refuses APPEND before the client sends the message (RFC 9051
// §6.3.12; go-imap patch 3).
func (s *session) CheckAppend(mailbox string, options *imap.AppendOptions) error {
	return errReadOnly
}

// Append is refused; CheckAppend already refused it before the literal.
func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, errReadOnly
}

// Copy is refused (RFC 9051 §6.4.7): nothing is added anywhere.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	return nil, errReadOnly
}

// Move is refused (RFC 6851).
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return errReadOnly
}

// Expunge is refused; CLOSE (which calls it on a folder opened with
// SELECT) removes nothing and succeeds (RFC 9051 §6.4.1, go-imap patch 2).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	if w.ForClose() {
		return nil
	}
	return errReadOnly
}

// Subscribe: every folder is always subscribed; a folder that does not
// exist (a client's Trash) cannot be.
func (s *session) Subscribe(mailbox string) error {
	ctx, cancel := s.command()
	defer cancel()
	if ok, err := s.exists(ctx, mailbox); err != nil || !ok {
		if err != nil {
			return s.fail("subscribe", err)
		}
		return errReadOnly
	}
	return nil
}

// Unsubscribe is refused: subscriptions are fixed.
func (s *session) Unsubscribe(mailbox string) error { return errNoSubscriptionChange }

// Unselect leaves the folder; nothing is removed (RFC 3691).
func (s *session) Unselect() error {
	s.stopReadahead()
	s.dropNext()
	s.sel, s.ahead = nil, nil
	return nil
}

// Select opens a folder (RFC 9051 §6.3.2, §6.3.3). SELECT lets the account
// set its own flags (READ-WRITE: the flags, never the archive); EXAMINE
// changes nothing, not even \Seen.
func (s *session) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	ctx, cancel := s.command()
	defer cancel()
	s.stopReadahead()
	s.dropNext()
	s.sel, s.ahead = nil, nil
	f, err := parseFolder(mailbox)
	if err != nil {
		return nil, errNonexistent
	}
	if !f.selectable() {
		if ok, err := s.exists(ctx, mailbox); err != nil || !ok {
			return nil, errNonexistent
		}
		return nil, errNoSelect
	}
	if ok, err := s.exists(ctx, f.name); err != nil || !ok {
		if err != nil {
			return nil, s.fail("select", err)
		}
		return nil, errNonexistent
	}
	w, err := s.viewer.open(ctx, f, options.ReadOnly, s.srv.uidValidity)
	if err != nil {
		return nil, s.fail("select", err)
	}
	ev := s.event(audit.ActionSelect, audit.OutcomeSuccess)
	ev.Target = audit.Target{Folder: f.name, UIDValidity: w.uidValidity}
	ev.Details.Count = w.count
	if options.ReadOnly {
		ev.Details.Note = "EXAMINE"
	} else {
		ev.Details.Note = "SELECT"
	}
	if err := s.record(ctx, ev); err != nil {
		return nil, s.fail("select", err)
	}
	s.sel = w
	data := &imap.SelectData{
		Flags:       mailboxFlags,
		NumMessages: uint32(w.count),
		UIDNext:     imap.UID(w.next + 1),
		UIDValidity: w.uidValidity,
	}
	if options.ReadOnly {
		data.PermanentFlags = []imap.Flag{}
	} else {
		data.PermanentFlags = permanentFlags
	}
	return data, nil
}

// The flags of every folder: the system flags, and review keywords an
// auditor may set (any other keyword too: \*). \Deleted is listed because
// clients expect it, and refused.
var (
	reviewKeywords = []imap.Flag{"$Reviewed", "$Privileged", "$Responsive", "$NotResponsive"}
	mailboxFlags   = append([]imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}, reviewKeywords...)
	permanentFlags = append(append([]imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft}, reviewKeywords...), imap.FlagWildcard)
)

// Poll tells the client what changed after each command (RFC 9051 §7.5):
// EXPUNGE for disposed messages when allowed, EXISTS for new ones. It also
// ends the session of an account disabled meanwhile.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if err := s.checkAccount(); err != nil {
		return err
	}
	if s.sel == nil {
		return nil
	}
	ctx, cancel := s.command()
	defer cancel()
	return s.writeUpdates(ctx, w, allowExpunge)
}

func (s *session) writeUpdates(ctx context.Context, w *imapserver.UpdateWriter, allowExpunge bool) error {
	u, err := s.sel.poll(ctx, allowExpunge)
	if err != nil {
		return s.fail("poll", err)
	}
	for _, seq := range u.expunge {
		if err := w.WriteExpunge(uint32(seq)); err != nil {
			return err
		}
	}
	if u.exists > 0 {
		return w.WriteNumMessages(uint32(u.exists))
	}
	return nil
}

// checkAccount ends the session (BYE) if the account was disabled.
func (s *session) checkAccount() error {
	if s.user == nil || time.Since(s.checked) < 10*time.Second {
		return nil
	}
	s.checked = time.Now()
	ok, err := s.srv.opts.Accounts.Active(s.ctx, s.user.Name)
	if err == nil && !ok {
		s.conn.Bye("This account was disabled")
		return errors.New("imapview: account disabled")
	}
	return nil
}

// Idle reports new and disposed messages as they are archived (RFC 2177).
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		changed := s.srv.changes()
		select {
		case <-stop:
			return nil
		case <-s.ctx.Done():
			return nil
		case <-t.C:
			if err := s.checkAccount(); err != nil {
				return err
			}
			continue
		case <-changed:
		}
		if s.sel == nil {
			continue
		}
		ctx, cancel := s.command()
		err := s.writeUpdates(ctx, w, true)
		cancel()
		if err != nil {
			return err
		}
	}
}

// setLedger records the message-ledger seqs of an event (they start at 0).
func setLedger(ev *audit.Event, seqs []uint64) { ev.Target.Ledger = audit.FormatSet(seqs) }
