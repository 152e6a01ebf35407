package retention

import (
	"strings"
)

// Conditions over the index, in SQL. Every condition is written over the
// aliases of the search package (imapview/search Compile): m, the messages
// row, and d, the message's first delivery (deliveries d ON d.seq = m.seq),
// so rule, hold and search conditions combine in one statement.

// cond is one SQL condition with its arguments.
type cond struct {
	sql  string
	args []any
}

func (c cond) and(o cond) cond {
	return cond{"(" + c.sql + ") AND (" + o.sql + ")", append(append([]any{}, c.args...), o.args...)}
}

func orConds(cs []cond) cond {
	if len(cs) == 0 {
		return cond{sql: "0"}
	}
	var b strings.Builder
	var args []any
	b.WriteByte('(')
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString(c.sql)
		args = append(args, c.args...)
	}
	b.WriteByte(')')
	return cond{b.String(), args}
}

func andConds(cs []cond) cond {
	if len(cs) == 0 {
		return cond{sql: "1"}
	}
	var b strings.Builder
	var args []any
	b.WriteByte('(')
	for i, c := range cs {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString("(" + c.sql + ")")
		args = append(args, c.args...)
	}
	b.WriteByte(')')
	return cond{b.String(), args}
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func anyArgs(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

func lowerAll(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strings.ToLower(strings.TrimSpace(v))
	}
	return out
}

// headerAddrs is the message's From, To and Cc addresses as the index keeps
// them (lower case, comma-separated), framed by commas so that an address
// is found whole: instr(headerAddrs, ',' || addr || ',').
const headerAddrs = `(',' || m.from_addr || ',' || m.to_addrs || ',' || m.cc_addrs || ',')`

// custodianCond: a delivery belongs to one of addrs.
func custodianCond(addrs []string) cond {
	a := lowerAll(addrs)
	return cond{`m.seq IN (SELECT message FROM custodians WHERE addr IN (` + placeholders(len(a)) + `))`, anyArgs(a)}
}

// addressCond: one of addrs is the sender (From field, envelope sender) or a
// recipient (To, Cc, any envelope recipient including Bcc).
func addressCond(addrs []string) cond {
	a := lowerAll(addrs)
	cs := []cond{
		{`m.seq IN (SELECT message FROM recipients WHERE addr IN (` + placeholders(len(a)) + `))`, anyArgs(a)},
		{`m.seq IN (SELECT message FROM deliveries WHERE lower(sender) IN (` + placeholders(len(a)) + `))`, anyArgs(a)},
	}
	for _, x := range a {
		cs = append(cs, cond{`instr(` + headerAddrs + `, ',' || ? || ',') > 0`, []any{x}})
	}
	return orConds(cs)
}

// domainOf is the SQL domain of an address column.
func domainOf(col string) string { return `substr(` + col + `, instr(` + col + `, '@') + 1)` }

// domainCond: an address of addressCond's is in one of domains
// ("example.com" exactly, "*.example.com" any subdomain).
func domainCond(domains []string) cond {
	var exact, sub []string
	for _, d := range lowerAll(domains) {
		if s, ok := strings.CutPrefix(d, "*."); ok {
			sub = append(sub, "."+s)
		} else {
			exact = append(exact, d)
		}
	}
	colMatch := func(col string) cond {
		var cs []cond
		if len(exact) > 0 {
			cs = append(cs, cond{domainOf(col) + ` IN (` + placeholders(len(exact)) + `)`, anyArgs(exact)})
		}
		for _, s := range sub {
			cs = append(cs, cond{`substr(` + col + `, -length(?)) = ?`, []any{s, s}})
		}
		return orConds(cs)
	}
	rc := colMatch("addr")
	sc := colMatch("lower(sender)")
	cs := []cond{
		{`m.seq IN (SELECT message FROM recipients WHERE ` + rc.sql + `)`, rc.args},
		{`m.seq IN (SELECT message FROM deliveries WHERE ` + sc.sql + `)`, sc.args},
	}
	for _, d := range exact {
		cs = append(cs, cond{`instr(` + headerAddrs + `, '@' || ? || ',') > 0`, []any{d}})
	}
	for _, s := range sub {
		cs = append(cs, cond{`instr(` + headerAddrs + `, ? || ',') > 0`, []any{s}})
	}
	return orConds(cs)
}

func sourceCond(srcs []string) cond {
	return cond{`m.seq IN (SELECT message FROM deliveries WHERE source IN (` + placeholders(len(srcs)) + `))`, anyArgs(srcs)}
}

func folderCond(folders []string) cond {
	f := make([]string, len(folders))
	for i, x := range folders {
		f[i] = strings.ToLower(x)
	}
	return cond{`m.seq IN (SELECT message FROM deliveries WHERE lower(json_extract(CAST(envelope AS TEXT), '$.meta.folder')) IN (` +
		placeholders(len(f)) + `))`, anyArgs(f)}
}

// headerCond uses cairn_header_has, the SQL function of the search
// package's reader (search.OpenReader).
func headerCond(hs []HeaderMatch) cond {
	var cs []cond
	for _, h := range hs {
		cs = append(cs, cond{`cairn_header_has(m.header, ?, ?)`, []any{h.Field, h.Value}})
	}
	return orConds(cs)
}

// criterion is one criterion of a Match, for explain.
type criterion struct {
	what string
	c    cond
}

func (m *Match) criteria() []criterion {
	var out []criterion
	if len(m.Custodians) > 0 {
		out = append(out, criterion{"custodian " + strings.Join(m.Custodians, ", "), custodianCond(m.Custodians)})
	}
	if len(m.Addresses) > 0 {
		out = append(out, criterion{"address " + strings.Join(m.Addresses, ", "), addressCond(m.Addresses)})
	}
	if len(m.Domains) > 0 {
		out = append(out, criterion{"domain " + strings.Join(m.Domains, ", "), domainCond(m.Domains)})
	}
	if len(m.Sources) > 0 {
		out = append(out, criterion{"source " + strings.Join(m.Sources, ", "), sourceCond(m.Sources)})
	}
	if len(m.Folders) > 0 {
		out = append(out, criterion{"folder " + strings.Join(m.Folders, ", "), folderCond(m.Folders)})
	}
	if len(m.Headers) > 0 {
		var hs []string
		for _, h := range m.Headers {
			hs = append(hs, h.String())
		}
		out = append(out, criterion{"header " + strings.Join(hs, ", "), headerCond(m.Headers)})
	}
	return out
}

// cond is the whole match: every criterion.
func (m *Match) cond() cond {
	var cs []cond
	for _, c := range m.criteria() {
		cs = append(cs, c.c)
	}
	return andConds(cs)
}

// subjectCond: the address appears in a message as sender (From field,
// envelope sender), recipient (To, Cc, any envelope recipient including
// Bcc) or custodian. Exact addresses only: a substring would reach other
// people's mail.
func subjectCond(addr string) cond {
	a := strings.ToLower(addr)
	return orConds([]cond{
		{`m.seq IN (SELECT message FROM recipients WHERE addr = ?)`, []any{a}},
		{`m.seq IN (SELECT message FROM custodians WHERE addr = ?)`, []any{a}},
		{`m.seq IN (SELECT message FROM deliveries WHERE lower(sender) = ?)`, []any{a}},
		{`instr(` + headerAddrs + `, ',' || ? || ',') > 0`, []any{a}},
	})
}
