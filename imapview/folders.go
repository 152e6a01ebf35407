package imapview

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/auth"
)

// Folder names (virtual, computed from the index; RFC 9051 §5.1). The
// hierarchy delimiter is "/".
const (
	Delim          = '/'
	inboxName      = "INBOX"
	custodiansName = "Custodians"
	casesName      = "Cases"
	datesName      = "Dates"
)

type folderKind int

const (
	kindInbox folderKind = iota
	kindCustodian
	kindCase
	kindDate
	kindContainer // Custodians, Cases, Dates, Dates/<yyyy>: \Noselect
)

// folder is one parsed folder name.
type folder struct {
	name   string // canonical name
	kind   folderKind
	addr   string // kindCustodian: lower-case address
	caseID string
	year   int // kindDate; kindContainer "Dates/<yyyy>"
	month  int
}

var errNoFolder = fmt.Errorf("no such folder")

// parseFolder reads a folder name as a client sends it (INBOX in any case).
func parseFolder(name string) (*folder, error) {
	if strings.EqualFold(name, inboxName) {
		return &folder{name: inboxName, kind: kindInbox}, nil
	}
	parts := strings.Split(name, string(Delim))
	switch {
	case len(parts) == 1 && (parts[0] == custodiansName || parts[0] == casesName || parts[0] == datesName):
		return &folder{name: name, kind: kindContainer}, nil
	case len(parts) == 2 && parts[0] == custodiansName && parts[1] != "":
		addr := strings.ToLower(parts[1])
		return &folder{name: custodiansName + "/" + addr, kind: kindCustodian, addr: addr}, nil
	case len(parts) == 2 && parts[0] == casesName && parts[1] != "":
		return &folder{name: name, kind: kindCase, caseID: parts[1]}, nil
	case len(parts) == 2 && parts[0] == datesName:
		y, err := strconv.Atoi(parts[1])
		if err != nil || len(parts[1]) != 4 {
			return nil, errNoFolder
		}
		return &folder{name: name, kind: kindContainer, year: y}, nil
	case len(parts) == 3 && parts[0] == datesName:
		y, err1 := strconv.Atoi(parts[1])
		m, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || len(parts[1]) != 4 || len(parts[2]) != 2 || m < 1 || m > 12 {
			return nil, errNoFolder
		}
		return &folder{name: name, kind: kindDate, year: y, month: m}, nil
	}
	return nil, errNoFolder
}

func (f *folder) selectable() bool { return f.kind != kindContainer }

// monthRange is the month of a Dates/ folder in UTC unix nanoseconds.
func (f *folder) monthRange() (from, to int64) {
	t := time.Date(f.year, time.Month(f.month), 1, 0, 0, 0, 0, time.UTC)
	return t.UnixNano(), t.AddDate(0, 1, 0).UnixNano()
}

// sqlPart is a fragment of SQL with its arguments.
type sqlPart struct {
	q    string
	args []any
}

// scopeCond returns the condition "a custodian address column col is in
// scope" for the custodian and domain terms of a scope ("" when it has
// none).
func scopeCond(s auth.Scope, col string) sqlPart {
	var conds []string
	var args []any
	if len(s.Custodians) > 0 {
		conds = append(conds, col+" IN (?"+strings.Repeat(",?", len(s.Custodians)-1)+")")
		for _, c := range s.Custodians {
			args = append(args, c)
		}
	}
	for _, d := range s.Domains {
		conds = append(conds, col+" LIKE ? ESCAPE '\\'")
		args = append(args, "%@"+strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(d))
	}
	if len(conds) == 0 {
		return sqlPart{}
	}
	return sqlPart{"(" + strings.Join(conds, " OR ") + ")", args}
}

// membersSQL returns a SELECT yielding (k, msg) for the members of folder f
// as account scope sees them, restricted to lo <= k <= hi, in no
// particular order. UID = k + 1: the ledger seq of the entry that brought
// the message into the folder (the message entry itself, or for a
// custodian's folder its first delivery to that custodian), so UIDs are
// stable, never reused, and a message that joins a folder later gets a UID
// above every earlier one. Folders whose members depend on holds are
// numbered in access.db instead (numbering.go); their rows include the
// members that left, which liveRowsOf leaves out.
func (v *viewer) membersSQL(ctx context.Context, f *folder, lo, hi int64) (sqlPart, error) {
	s := v.scope
	switch f.kind {
	case kindCustodian:
		if !s.CoversCustodian(f.addr) {
			return sqlPart{}, errNoFolder
		}
		return sqlPart{`SELECT delivery AS k, message AS msg FROM custodians INDEXED BY custodians_delivery
			WHERE addr = ? AND delivery BETWEEN ? AND ?`, []any{f.addr, lo, hi}}, nil
	case kindCase:
		if !s.CoversCase(f.caseID) || v.cases == nil {
			return sqlPart{}, errNoFolder
		}
		return numberedSQL(v.numberKey(f), lo, hi), nil
	case kindInbox, kindDate:
		var base sqlPart
		if s.All {
			base = sqlPart{`SELECT seq AS k, seq AS msg FROM messages INDEXED BY messages_seq WHERE seq BETWEEN ? AND ?`, []any{lo, hi}}
			if f.kind == kindDate {
				from, to := f.monthRange()
				base = sqlPart{`SELECT seq AS k, seq AS msg FROM deliveries INDEXED BY deliveries_received
					WHERE received_at >= ? AND received_at < ? AND seq = message AND seq BETWEEN ? AND ?`, []any{from, to, lo, hi}}
			}
			return base, nil
		}
		// A scoped account's INBOX: every message of a custodian in scope,
		// numbered by its first delivery to one; with cases in scope, also
		// every message they hold, numbered in access.db (numbering.go).
		var q string
		var args []any
		if key := v.numberKey(f); key != "" {
			n := numberedSQL(key, lo, hi)
			q, args = n.q, n.args
		} else if c := scopeCond(s, "addr"); c.q != "" {
			q = `SELECT MIN(delivery) AS k, message AS msg FROM custodians WHERE ` + c.q + ` GROUP BY message HAVING MIN(delivery) BETWEEN ? AND ?`
			args = append(c.args, lo, hi)
		} else {
			return sqlPart{`SELECT 0 AS k, 0 AS msg WHERE 0`, nil}, nil
		}
		if f.kind == kindDate {
			from, to := f.monthRange()
			q = `SELECT s.k AS k, s.msg AS msg FROM (` + q + `) s JOIN deliveries dd ON dd.seq = s.msg WHERE dd.received_at >= ? AND dd.received_at < ?`
			args = append(args, from, to)
		}
		return sqlPart{q, args}, nil
	}
	return sqlPart{}, errNoFolder
}
