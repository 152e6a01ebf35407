package search

import (
	"fmt"
	"strings"
	"time"

	"github.com/cairn-archive/cairn/archive"
)

// Options say how Compile writes SQL.
type Options struct {
	// SearchKey is the archive's search key (Keyring.SearchKey): BODY and
	// TEXT words become the blind tokens the index holds.
	SearchKey []byte
	// UIDExpr is the SQL expression of a row's UID in the folder searched
	// ("f.uid"); empty means m.seq + 1, a message's UID in an unscoped
	// INBOX.
	UIDExpr string
	// MsgExpr is the SQL expression of a row's message seq; empty means
	// m.seq. A caller that gives its own (the view: "r.msg") joins
	// messages m and deliveries d only when Compiled asks for them.
	MsgExpr string
	// User is the account whose flags the flag keys test, in the table
	// acc.flags (auth.FlagsTable, attached by OpenReader); empty means no
	// account: no message has a flag.
	User string
}

// Compiled is a program as SQL: a condition over the aliases m (the
// messages row) and d (the message's first delivery: deliveries d ON d.seq
// = m.seq), with its arguments.
type Compiled struct {
	Where string
	Args  []any
	// Phrases are the BODY strings (Text false) and TEXT strings (Text
	// true) of the top-level conjunction: a caller with few enough matches
	// confirms each message against them (Confirm).
	Phrases []Phrase
	// FullText reports that the program uses the full-text index (BODY or
	// TEXT): the caller makes it current first (archive's FlushSearch).
	FullText bool
	// NeedsMessage and NeedsDelivery report that Where uses columns of m
	// (the messages row) or d (the first delivery), so the caller must join
	// them; the other keys only test the message seq against narrow
	// indexes.
	NeedsMessage, NeedsDelivery bool
}

// Phrase is a BODY or TEXT string to confirm.
type Phrase struct {
	Value string
	Text  bool // TEXT: the header counts too
}

// Compile writes n as SQL. It fails on a program deeper than MaxDepth or
// larger than MaxNodes.
func Compile(n *Node, opts Options) (*Compiled, error) {
	c := &compiler{opts: opts, out: &Compiled{}}
	var b strings.Builder
	if err := c.node(&b, n, 0); err != nil {
		return nil, err
	}
	c.out.Where = b.String()
	// Phrases of the top-level conjunction only: under NOT or OR a
	// confirmation would change the meaning, so word rules apply there.
	top := []*Node{n}
	if n.Kind == And {
		top = n.Kids
	}
	for _, k := range top {
		if (k.Kind == Body || k.Kind == Text) && hasWords(k.Value) {
			c.out.Phrases = append(c.out.Phrases, Phrase{Value: k.Value, Text: k.Kind == Text})
		}
	}
	return c.out, nil
}

type compiler struct {
	opts  Options
	out   *Compiled
	nodes int
}

func (c *compiler) arg(v any) string {
	c.out.Args = append(c.out.Args, v)
	return "?"
}

// likeArg escapes s for LIKE ... ESCAPE '\' as a substring pattern.
func (c *compiler) likeArg(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return c.arg("%" + r.Replace(s) + "%")
}

func hasWords(s string) bool {
	found := false
	archive.Words(s, func(string) { found = true })
	return found
}

func (c *compiler) msg() string {
	if c.opts.MsgExpr != "" {
		return c.opts.MsgExpr
	}
	return "m.seq"
}

func (c *compiler) uid() string {
	if c.opts.UIDExpr != "" {
		return c.opts.UIDExpr
	}
	return "(m.seq + 1)"
}

func dayNanos(t time.Time) int64 { return t.UTC().Truncate(24 * time.Hour).UnixNano() }
func daySecs(t time.Time) int64  { return t.UTC().Truncate(24 * time.Hour).Unix() }

const day = 24 * time.Hour

func (c *compiler) node(b *strings.Builder, n *Node, depth int) error {
	if depth > MaxDepth {
		return fmt.Errorf("search: program nested more than %d levels", MaxDepth)
	}
	if c.nodes++; c.nodes > MaxNodes {
		return fmt.Errorf("search: program has more than %d keys", MaxNodes)
	}
	switch n.Kind {
	case Since, Before, On:
		c.out.NeedsDelivery = true
	case SentSince, SentBefore, SentOn, Larger, Smaller:
		c.out.NeedsMessage = true
	}
	switch n.Kind {
	case All:
		b.WriteString("1")
	case None:
		b.WriteString("0")
	case And, Or:
		if len(n.Kids) == 0 {
			b.WriteString(map[Kind]string{And: "1", Or: "0"}[n.Kind])
			return nil
		}
		op := map[Kind]string{And: " AND ", Or: " OR "}[n.Kind]
		b.WriteByte('(')
		for i, k := range n.Kids {
			if i > 0 {
				b.WriteString(op)
			}
			if err := c.node(b, k, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(')')
	case Not:
		b.WriteString("NOT (")
		if err := c.node(b, n.Kids[0], depth+1); err != nil {
			return err
		}
		b.WriteByte(')')
	case From:
		b.WriteString(c.msg() + ` IN (SELECT seq FROM messages INDEXED BY messages_from WHERE from_addr LIKE ` + c.likeArg(strings.ToLower(n.Value)) + ` ESCAPE '\')`)
	case To:
		b.WriteString(c.msg() + ` IN (SELECT seq FROM messages INDEXED BY messages_to_cc WHERE to_addrs LIKE ` + c.likeArg(strings.ToLower(n.Value)) + ` ESCAPE '\')`)
	case Cc:
		b.WriteString(c.msg() + ` IN (SELECT seq FROM messages INDEXED BY messages_to_cc WHERE cc_addrs LIKE ` + c.likeArg(strings.ToLower(n.Value)) + ` ESCAPE '\')`)
	case Bcc:
		b.WriteString(c.msg() + ` IN (SELECT message FROM recipients WHERE kind = 'bcc' AND addr LIKE ` + c.likeArg(strings.ToLower(n.Value)) + ` ESCAPE '\')`)
	case Subject:
		b.WriteString(c.msg() + ` IN (SELECT seq FROM messages INDEXED BY messages_subject WHERE subject LIKE ` + c.likeArg(n.Value) + ` ESCAPE '\')`)
	case Header:
		switch strings.ToLower(n.Field) {
		case "from":
			return c.node(b, &Node{Kind: From, Value: n.Value}, depth)
		case "to":
			return c.node(b, &Node{Kind: To, Value: n.Value}, depth)
		case "cc":
			return c.node(b, &Node{Kind: Cc, Value: n.Value}, depth)
		case "bcc":
			return c.node(b, &Node{Kind: Bcc, Value: n.Value}, depth)
		case "subject":
			return c.node(b, &Node{Kind: Subject, Value: n.Value}, depth)
		case "message-id":
			if n.Value != "" {
				// A scan of the narrow index, as for SUBJECT: the rows
				// themselves hold the header and are wide.
				b.WriteString(c.msg() + ` IN (SELECT seq FROM messages INDEXED BY messages_message_id WHERE message_id LIKE ` + c.likeArg(strings.Trim(n.Value, "<>")) + ` ESCAPE '\')`)
				return nil
			}
		}
		c.out.NeedsMessage = true
		b.WriteString(`cairn_header_has(m.header, ` + c.arg(n.Field) + `, ` + c.arg(n.Value) + `)`)
	case Body, Text:
		var toks []string
		seen := map[string]bool{}
		archive.Words(n.Value, func(w string) {
			if len(w) > 64 || seen[w] {
				return
			}
			seen[w] = true
			toks = append(toks, archive.BlindToken(c.opts.SearchKey, w))
		})
		if len(toks) == 0 {
			b.WriteString("1") // no word: every message holds the empty string
			return nil
		}
		c.out.FullText = true
		if len(toks) > 64 {
			toks = toks[:64]
		}
		cond := c.msg() + ` IN (SELECT docid FROM fts WHERE fts MATCH ` + c.arg(strings.Join(toks, " ")) + `)`
		if n.Kind == Text {
			b.WriteString("(" + cond + " OR ")
			h := &Node{Kind: Or, Kids: []*Node{
				{Kind: Or, Kids: []*Node{{Kind: From, Value: n.Value}, {Kind: Subject, Value: n.Value}}},
				{Kind: Or, Kids: []*Node{{Kind: To, Value: n.Value}, {Kind: Cc, Value: n.Value}}}}}
			if err := c.node(b, h, depth+1); err != nil {
				return err
			}
			b.WriteString(")")
			return nil
		}
		b.WriteString(cond)
	case Since:
		b.WriteString("d.received_at >= " + c.arg(dayNanos(n.Date)))
	case Before:
		b.WriteString("d.received_at < " + c.arg(dayNanos(n.Date)))
	case On:
		b.WriteString("(d.received_at >= " + c.arg(dayNanos(n.Date)) + " AND d.received_at < " + c.arg(dayNanos(n.Date.Add(day))) + ")")
	case SentSince:
		b.WriteString("m.date >= " + c.arg(daySecs(n.Date)))
	case SentBefore:
		b.WriteString("m.date < " + c.arg(daySecs(n.Date)))
	case SentOn:
		b.WriteString("(m.date >= " + c.arg(daySecs(n.Date)) + " AND m.date < " + c.arg(daySecs(n.Date.Add(day))) + ")")
	case Larger:
		b.WriteString("m.size > " + c.arg(n.Size))
	case Smaller:
		b.WriteString("m.size < " + c.arg(n.Size))
	case UID:
		if len(n.Set) == 0 {
			b.WriteString("0")
			return nil
		}
		b.WriteByte('(')
		for i, r := range n.Set {
			if i > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString(c.uid() + " BETWEEN " + c.arg(int64(r.Lo)) + " AND " + c.arg(int64(r.Hi)))
		}
		b.WriteByte(')')
	case Flag:
		if c.opts.User == "" {
			b.WriteString("0")
			return nil
		}
		b.WriteString(`EXISTS (SELECT 1 FROM acc.flags af WHERE af.user = ` + c.arg(c.opts.User) +
			` AND af.message = ` + c.msg() + ` AND af.flag = ` + c.arg(n.Value) + ` COLLATE NOCASE)`)
	default:
		return fmt.Errorf("search: unknown key kind %d", n.Kind)
	}
	return nil
}
