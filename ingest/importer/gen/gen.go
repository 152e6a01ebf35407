// Package gen makes realistic mail for tests and benchmarks, deterministic
// from a seed, and writes it as mbox (mboxrd) and Maildir.
//
// A message has the headers real mail has (Received hops, DKIM-Signature,
// Message-ID, threading headers), a multipart/alternative body with text and
// HTML, base64 attachments when it is large enough, varied senders,
// recipients, subjects and dates, some non-ASCII text (quoted-printable,
// RFC 2047 subjects), body lines starting with "From " and ">From " so mbox
// quoting is exercised, and one word (Message.Token) that appears in no other
// message, so a test can grep stored bytes for plaintext.
//
// The same seed and the same calls give the same bytes on every machine and
// every run.
package gen

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// Generator makes messages. It is not safe for concurrent use.
type Generator struct {
	rng  *rand.Rand
	seed uint64
	n    uint64
	// CRLF makes messages use CRLF line endings, as on the wire. The
	// default, LF, is what mbox and Maildir files hold.
	CRLF bool
}

// New returns a Generator whose output depends only on seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), seed: seed}
}

// Message is one generated message and the facts a test may check.
type Message struct {
	// Raw is the message as delivered, ending with a line ending.
	Raw []byte
	// MessageID is the Message-ID without angle brackets.
	MessageID string
	// From is the sender's address; Sender is the envelope sender (the
	// Return-Path), which mbox From_ lines carry.
	From   string
	Sender string
	To     []string
	Cc     []string
	// Subject is the decoded subject.
	Subject string
	Date    time.Time
	// Token is a word in the text and HTML bodies of this message that no
	// other message of any seed contains (with overwhelming likelihood).
	Token string
	// Attachments is the number of base64 attachments.
	Attachments int
}

// Next returns the next message, of about size bytes (at least ~2.5 KB:
// headers alone take ~1.8 KB). From 6,000 bytes on, base64 attachments make
// up most of the size.
func (g *Generator) Next(size int) Message {
	g.n++
	m := Message{Token: g.token()}
	from := g.person()
	m.From = from.addr
	m.Sender = from.addr
	if g.rng.IntN(10) == 0 {
		m.Sender = "bounces+" + strings.ReplaceAll(from.addr, "@", "=") + "@mailer." + from.domain
	}
	var to, cc []person
	for range 1 + g.rng.IntN(3) {
		to = append(to, g.person())
	}
	if g.rng.IntN(3) == 0 {
		for range 1 + g.rng.IntN(3) {
			cc = append(cc, g.person())
		}
	}
	for _, p := range to {
		m.To = append(m.To, p.addr)
	}
	for _, p := range cc {
		m.Cc = append(m.Cc, p.addr)
	}
	m.Date = g.date()
	m.Subject = g.subject()
	m.MessageID = fmt.Sprintf("%016x.%d.%s@%s", g.rng.Uint64(), g.n, g.word(), from.domain)

	var h bytes.Buffer
	g.headers(&h, &m, from, to, cc)

	boundary := func() string { return fmt.Sprintf("----=_Part_%d_%08x.%d", g.n, g.rng.Uint32(), m.Date.Unix()) }
	withAttachments := size >= 6000
	plainOnly := !withAttachments && g.rng.IntN(8) == 0
	textSize := (size - 1800) * 10 / 24 // headers take ~1.8 KB; HTML ~1.4 times the text
	switch {
	case withAttachments:
		textSize = 600 + g.rng.IntN(1200)
	case plainOnly:
		textSize = size - 1800
	}
	paras := g.paragraphs(max(textSize, 200), m.Token)
	text := g.textPart(paras)
	html := g.htmlPart(paras)

	var body bytes.Buffer
	if plainOnly {
		// The part's Content-* lines become the message's.
		head, rest, _ := bytes.Cut(text, []byte("\n\n"))
		h.Write(head)
		h.WriteString("\n")
		body.Write(rest)
	} else {
		alt := boundary()
		var altBody bytes.Buffer
		altBody.WriteString("--" + alt + "\n")
		altBody.Write(text)
		altBody.WriteString("\n--" + alt + "\n")
		altBody.Write(html)
		altBody.WriteString("\n--" + alt + "--\n")
		if !withAttachments {
			h.WriteString("Content-Type: multipart/alternative;\n\tboundary=\"" + alt + "\"\n")
			body.WriteString("This is a multi-part message in MIME format.\n\n")
			body.Write(altBody.Bytes())
		} else {
			mixed := boundary()
			h.WriteString("Content-Type: multipart/mixed;\n\tboundary=\"" + mixed + "\"\n")
			body.WriteString("This is a multi-part message in MIME format.\n\n")
			body.WriteString("--" + mixed + "\n")
			body.WriteString("Content-Type: multipart/alternative;\n\tboundary=\"" + alt + "\"\n\n")
			body.Write(altBody.Bytes())
			room := max(size-h.Len()-body.Len()-200, 0)
			n := 1 + g.rng.IntN(3)
			for i := range n {
				share := room / (n - i)
				if i < n-1 {
					share = share/2 + g.rng.IntN(share/2+1)
				}
				room -= share
				body.WriteString("\n--" + mixed + "\n")
				g.attachment(&body, max(share, 300))
				m.Attachments++
			}
			body.WriteString("\n--" + mixed + "--\n")
		}
	}
	h.WriteString("\n")
	h.Write(body.Bytes())
	raw := h.Bytes()
	if g.CRLF {
		raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	}
	m.Raw = raw
	return m
}

type person struct{ name, addr, domain string }

func (g *Generator) person() person {
	first := firstNames[g.rng.IntN(len(firstNames))]
	last := lastNames[g.rng.IntN(len(lastNames))]
	domain := domains[g.rng.IntN(len(domains))]
	local := asciiFold(first) + "." + asciiFold(last)
	if g.rng.IntN(4) == 0 {
		local = asciiFold(first)[:1] + asciiFold(last)
	}
	return person{name: first + " " + last, addr: local + "@" + domain, domain: domain}
}

// asciiFold lower-cases a name and drops its accents for an address.
var asciiFold = func() func(string) string {
	r := strings.NewReplacer("ë", "e", "é", "e", "ø", "o", "ł", "l", "ü", "u", "ö", "o", "ä", "a", "å", "a")
	return func(s string) string { return r.Replace(strings.ToLower(s)) }
}()

func (g *Generator) date() time.Time {
	start := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	secs := start + g.rng.Int64N(10*365*24*3600)
	zone := zones[g.rng.IntN(len(zones))]
	return time.Unix(secs, 0).In(time.FixedZone("", zone*60))
}

func (g *Generator) subject() string {
	s := subjects[g.rng.IntN(len(subjects))]
	s = strings.ReplaceAll(s, "{co}", companies[g.rng.IntN(len(companies))])
	s = strings.ReplaceAll(s, "{n}", fmt.Sprint(2+g.rng.IntN(40)))
	switch g.rng.IntN(6) {
	case 0:
		s = "Re: " + s
	case 1:
		s = "RE: Re: " + s
	case 2:
		s = "Fwd: " + s
	}
	if g.rng.IntN(7) == 0 {
		s += " " + accented[g.rng.IntN(len(accented))]
	}
	return s
}

func (g *Generator) word() string { return words[g.rng.IntN(len(words))] }

// token is a run of letters drawn from the seed and the message number, so
// it cannot collide with generated text (no word has this length and shape).
func (g *Generator) token() string {
	x := g.seed*0x9e3779b97f4a7c15 ^ g.n*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	b := []byte("qz")
	for range 14 {
		b = append(b, byte('a'+x%26))
		x /= 26
		if x == 0 {
			x = g.n*0x2545f4914f6cdd1d + g.seed + 1
		}
	}
	return string(b)
}

func (g *Generator) headers(h *bytes.Buffer, m *Message, from person, to, cc []person) {
	fmt.Fprintf(h, "Return-Path: <%s>\n", m.Sender)
	fmt.Fprintf(h, "Delivered-To: %s\n", to[0].addr)
	t := m.Date
	hops := 1 + g.rng.IntN(3)
	for i := hops; i > 0; i-- {
		ht := t.Add(time.Duration(i) * time.Second * time.Duration(1+g.rng.IntN(20)))
		fmt.Fprintf(h, "Received: from mail%d.%s (mail%d.%s [10.%d.%d.%d])\n\tby mx%d.%s (Postfix) with ESMTPS id %X\n\tfor <%s>; %s\n",
			g.rng.IntN(9), from.domain, g.rng.IntN(9), from.domain, g.rng.IntN(256), g.rng.IntN(256), g.rng.IntN(256),
			i, to[0].domain, g.rng.Uint32(), to[0].addr, ht.Format(time.RFC1123Z))
	}
	if g.rng.IntN(2) == 0 {
		sig := make([]byte, 128)
		for i := range sig {
			sig[i] = byte(g.rng.UintN(256))
		}
		b64 := base64.StdEncoding.EncodeToString(sig)
		fmt.Fprintf(h, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s; s=sel%d;\n\th=from:to:subject:date:message-id; bh=%s;\n\tb=%s\n\t%s\n",
			from.domain, g.rng.IntN(3), b64[:44], b64[44:120], b64[120:])
	}
	fmt.Fprintf(h, "From: %s\n", addrHeader(from))
	h.WriteString("To: ")
	writeList(h, to)
	if len(cc) > 0 {
		h.WriteString("Cc: ")
		writeList(h, cc)
	}
	fmt.Fprintf(h, "Subject: %s\n", mime.QEncoding.Encode("utf-8", m.Subject))
	fmt.Fprintf(h, "Date: %s\n", m.Date.Format(time.RFC1123Z))
	fmt.Fprintf(h, "Message-ID: <%s>\n", m.MessageID)
	if strings.HasPrefix(m.Subject, "Re") {
		ref := fmt.Sprintf("<%016x@%s>", g.rng.Uint64(), to[0].domain)
		fmt.Fprintf(h, "In-Reply-To: %s\nReferences: %s\n", ref, ref)
	}
	fmt.Fprintf(h, "X-Mailer: %s\n", mailers[g.rng.IntN(len(mailers))])
	h.WriteString("MIME-Version: 1.0\n")
}

func addrHeader(p person) string {
	return mime.QEncoding.Encode("utf-8", p.name) + " <" + p.addr + ">"
}

func writeList(h *bytes.Buffer, ps []person) {
	for i, p := range ps {
		if i > 0 {
			h.WriteString(",\n\t")
		}
		h.WriteString(addrHeader(p))
	}
	h.WriteString("\n")
}

// paragraphs returns about size bytes of text in paragraphs of lines of at
// most 72 columns, with token in one of them.
func (g *Generator) paragraphs(size int, token string) [][]string {
	var paras [][]string
	n, tokenAt := 0, g.rng.IntN(max(size/8, 1))
	placed := false
	for n < size || !placed {
		var lines []string
		var line strings.Builder
		if g.rng.IntN(6) == 0 {
			// Lines that mbox writers must quote.
			line.WriteString(fromStarts[g.rng.IntN(len(fromStarts))])
		}
		ascii := true // the token goes on a line without non-ASCII words, so QP never splits it
		for range 20 + g.rng.IntN(40) {
			w := g.word()
			if !placed && n >= tokenAt {
				w, placed = token, true
				if !ascii {
					lines = append(lines, line.String())
					n += line.Len() + 1
					line.Reset()
					ascii = true
				}
			} else if g.rng.IntN(40) == 0 && !strings.Contains(line.String(), token) {
				w = accented[g.rng.IntN(len(accented))]
			}
			if line.Len()+len(w)+1 > 72 {
				lines = append(lines, line.String())
				n += line.Len() + 1
				line.Reset()
				ascii = true
			}
			if line.Len() > 0 {
				line.WriteByte(' ')
			}
			line.WriteString(w)
			ascii = ascii && w != "" && w[0] < 0x80 && !strings.ContainsFunc(w, func(r rune) bool { return r >= 0x80 })
		}
		lines = append(lines, line.String()+".")
		n += line.Len() + 2
		paras = append(paras, lines)
	}
	return paras
}

// textPart is a text/plain part: headers, blank line, body.
func (g *Generator) textPart(paras [][]string) []byte {
	var plain bytes.Buffer
	for i, p := range paras {
		if i > 0 {
			plain.WriteString("\n")
		}
		for _, l := range p {
			plain.WriteString(l + "\n")
		}
	}
	plain.WriteString("\n-- \nSent from the generator\n")
	return encodePart("text/plain; charset=utf-8; format=flowed", plain.Bytes())
}

func (g *Generator) htmlPart(paras [][]string) []byte {
	var html bytes.Buffer
	html.WriteString("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\n<body>\n")
	for _, p := range paras {
		html.WriteString("<p>")
		for i, l := range p {
			if i > 0 {
				html.WriteString("\n")
			}
			html.WriteString(escapeHTML(l))
		}
		html.WriteString("</p>\n")
	}
	html.WriteString("</body></html>\n")
	return encodePart("text/html; charset=utf-8", html.Bytes())
}

// encodePart writes ASCII text as 7bit and anything else as
// quoted-printable (RFC 2045 §6.7), with LF line endings.
func encodePart(ctype string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("Content-Type: " + ctype + "\n")
	ascii := true
	for _, c := range body {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		b.WriteString("Content-Transfer-Encoding: 7bit\n\n")
		b.Write(body)
		return b.Bytes()
	}
	b.WriteString("Content-Transfer-Encoding: quoted-printable\n\n")
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write(body)
	w.Close()
	b.Write(bytes.ReplaceAll(qp.Bytes(), []byte("\r\n"), []byte("\n")))
	if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
		b.WriteString("\n")
	}
	return b.Bytes()
}

func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// attachment writes one base64 attachment of about size encoded bytes.
func (g *Generator) attachment(b *bytes.Buffer, size int) {
	k := attachmentKinds[g.rng.IntN(len(attachmentKinds))]
	n := max(size*3/4*76/78-len(k.magic), 16)
	data := make([]byte, 0, n+len(k.magic))
	data = append(data, k.magic...)
	for len(data) < cap(data) {
		data = append(data, byte(g.rng.UintN(256)))
	}
	name := fmt.Sprintf("%s-%d.%s", g.word(), g.rng.IntN(1000), k.ext)
	fmt.Fprintf(b, "Content-Type: %s; name=\"%s\"\nContent-Disposition: attachment; filename=\"%s\"\nContent-Transfer-Encoding: base64\n\n", k.ctype, name, name)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
}

var attachmentKinds = []struct{ ctype, ext, magic string }{
	{"application/pdf", "pdf", "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"},
	{"image/png", "png", "\x89PNG\r\n\x1a\n"},
	{"image/jpeg", "jpg", "\xff\xd8\xff\xe0\x00\x10JFIF\x00"},
	{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "PK\x03\x04"},
	{"application/zip", "zip", "PK\x03\x04"},
}

var (
	firstNames = []string{"Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
		"Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yuki",
		"Zoë", "André", "Søren", "Małgorzata", "Priya", "Chen", "Fatima", "Mateo", "Ingrid", "Kwame"}
	lastNames = []string{"Smith", "Johnson", "Garcia", "Miller", "Davis", "Martinez", "Lopez", "Wilson", "Anderson", "Thomas",
		"Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
		"Müller", "Schmidt", "Dubois", "Rossi", "Nowak", "Kowalski", "Tanaka", "Okafor", "Haddad", "Novak"}
	domains = []string{"example.com", "example.org", "example.net", "corp.example", "mail.example.co.uk",
		"law-firm.example", "bank.example", "supplier.example", "university.example.edu", "gov.example",
		"startup.example.io", "partner.example.de"}
	zones     = []int{0, 60, 120, -300, -240, -420, -480, 330, 540, 600, -180, 480}
	companies = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Vandelay"}
	subjects  = []string{"Q{n} budget review", "Contract renewal with {co}", "Meeting notes {n}/12", "Invoice #{n}04 from {co}",
		"Litigation hold notice: {co} matter", "Lunch on Thursday?", "Updated forecast", "Action items from the board meeting",
		"Your order #{n}981 has shipped", "Draft agreement v{n}", "Re-scheduling the audit", "Quarterly compliance attestation",
		"Security incident report {n}", "Offsite agenda", "Pricing proposal for {co}", "Weekly status {n}"}
	mailers  = []string{"Microsoft Outlook 16.0", "Apple Mail (2.3654)", "Mozilla Thunderbird 115.6.0", "Roundcube Webmail/1.6.5", "Evolution 3.48.4", "Mutt/2.2.9"}
	accented = []string{"café", "naïve", "façade", "Zürich", "São Paulo", "Øresund", "日本語", "résumé", "€1.250", "Ελληνικά"}
	// fromStarts begin body lines that mbox writers quote.
	fromStarts = []string{"From ", "From ", ">From ", ">>From ", "From the desk of the CFO: "}
	words      = strings.Fields(`the of and to in is that for it as with was on be by at this have from or one had
		not but what all were when we there can an your which their said if do will each about how up out them
		then she many some so these would other into has more her two like him see time could no make than first
		been its who now people my made over did down only way find use may water long little very after words
		called just where most know get through back much before go good new write our used me man too any day same
		right look think also around another came come work three word must because does part even place well such
		here take why things help put years different away again off went old number great tell men say small every
		found still between name should home big give air line set own under read last never us left end along while
		might next sound below saw something thought both few those always looked show large often together asked
		house world going want school important until form food keep children feet land side without boy once
		animals life enough took sometimes four head above kind began almost live page got earth need far hand high
		year mother light parts country father let night following picture being study second eyes soon times story
		contract invoice budget forecast audit compliance quarterly revenue counsel privileged confidential agreement
		deadline review approval shipment supplier customer pricing proposal settlement deposition discovery retention`)
)
