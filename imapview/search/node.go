package search

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a search key.
type Kind int

// The kinds of Node. And, Or and Not combine Kids; the others are keys.
const (
	All Kind = iota
	None
	And
	Or
	Not
	From
	To
	Cc
	Bcc
	Subject
	Header // Field, Value
	Body
	Text
	Since // INTERNALDATE, Date is a UTC day
	Before
	On
	SentSince // Date field
	SentBefore
	SentOn
	Larger // Size
	Smaller
	UID  // Set
	Flag // Value: the flag, e.g. \Seen or $Privileged
)

var kindNames = map[Kind]string{
	All: "ALL", None: "NONE", And: "AND", Or: "OR", Not: "NOT", From: "FROM", To: "TO", Cc: "CC", Bcc: "BCC",
	Subject: "SUBJECT", Header: "HEADER", Body: "BODY", Text: "TEXT", Since: "SINCE", Before: "BEFORE", On: "ON",
	SentSince: "SENTSINCE", SentBefore: "SENTBEFORE", SentOn: "SENTON", Larger: "LARGER", Smaller: "SMALLER",
	UID: "UID", Flag: "KEYWORD",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Range is an inclusive range of UIDs.
type Range struct{ Lo, Hi uint32 }

// Node is one key of a search program, or a combination of keys.
type Node struct {
	Kind  Kind
	Field string    // Header: the field name
	Value string    // the string argument; Flag: the flag
	Date  time.Time // a day: midnight UTC
	Size  int64
	Set   []Range
	Kids  []*Node // And: any number; Or: two; Not: one
}

// AndOf returns the conjunction of nodes, flattening nested Ands and
// dropping All.
func AndOf(nodes ...*Node) *Node {
	out := &Node{Kind: And}
	for _, n := range nodes {
		switch {
		case n == nil || n.Kind == All:
		case n.Kind == And:
			out.Kids = append(out.Kids, n.Kids...)
		default:
			out.Kids = append(out.Kids, n)
		}
	}
	switch len(out.Kids) {
	case 0:
		return &Node{Kind: All}
	case 1:
		return out.Kids[0]
	}
	return out
}

// String renders the program in the syntax Parse reads (IMAP's search-key
// grammar), as it is recorded in the audit log.
func (n *Node) String() string {
	var b strings.Builder
	n.write(&b, true)
	return b.String()
}

func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"\\()%*{}[]") && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (n *Node) write(b *strings.Builder, top bool) {
	switch n.Kind {
	case And:
		if !top {
			b.WriteByte('(')
		}
		for i, k := range n.Kids {
			if i > 0 {
				b.WriteByte(' ')
			}
			k.write(b, false)
		}
		if !top {
			b.WriteByte(')')
		}
	case Or:
		b.WriteString("OR ")
		n.Kids[0].write(b, false)
		b.WriteByte(' ')
		n.Kids[1].write(b, false)
	case Not:
		b.WriteString("NOT ")
		n.Kids[0].write(b, false)
	case All:
		b.WriteString("ALL")
	case None:
		b.WriteString("NOT ALL") // RECENT and NEW: no message (IMAP has no NONE)
	case From, To, Cc, Bcc, Subject, Body, Text:
		b.WriteString(n.Kind.String() + " " + quote(n.Value))
	case Header:
		b.WriteString("HEADER " + quote(n.Field) + " " + quote(n.Value))
	case Since, Before, On, SentSince, SentBefore, SentOn:
		b.WriteString(n.Kind.String() + " " + n.Date.Format("2-Jan-2006"))
	case Larger, Smaller:
		b.WriteString(n.Kind.String() + " " + strconv.FormatInt(n.Size, 10))
	case UID:
		b.WriteString("UID ")
		for i, r := range n.Set {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(uint64(r.Lo), 10))
			if r.Hi != r.Lo {
				b.WriteString(":" + strconv.FormatUint(uint64(r.Hi), 10))
			}
		}
	case Flag:
		switch strings.ToLower(n.Value) {
		case `\seen`, `\answered`, `\flagged`, `\deleted`, `\draft`:
			b.WriteString(strings.ToUpper(n.Value[1:]))
		default:
			b.WriteString("KEYWORD " + n.Value)
		}
	}
}
