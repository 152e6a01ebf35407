package audit

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hostile values: everything the CEF, LEEF and syslog escaping must survive.
var hostile = []string{
	`pipe|in|value`,
	`equals=sign and key=value`,
	`back\slash \\ double \n literal`,
	"new\nline\r\nand CR\r",
	"tab\there",
	`trailing backslash\`,
	`\=\|`,
	" leading and trailing spaces ",
	`quote " and ] bracket`,
	"Ünïcødé ✓ 日本語 🙂",
	` fake=pair cs1=evil`,
	`|CEF:0|x|y|z|`,
}

func hostileEvent(i int, s string) Event {
	ev := sampleEvent(i)
	ev.Outcome = OutcomeFailure
	ev.Reason = s
	ev.Actor.User = s
	ev.Actor.Session = s
	ev.Target.Folder = s
	ev.Target.Case = s
	ev.Target.Hold = s
	return ev
}

func recordHostile(t *testing.T) (*testEnv, []Entry) {
	e := newEnv(t, func(o *Options) { o.KeepQueries = true })
	for i, s := range hostile {
		ev := hostileEvent(i, s)
		ev.Details.Query = s
		if _, err := e.log.Record(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	var out []Entry
	e.log.Events(context.Background(), Query{}, func(en *Entry) error { out = append(out, *en); return nil })
	return e, out
}

func TestCEFHostileRoundTrip(t *testing.T) {
	_, entries := recordHostile(t)
	r, err := NewRenderer(FormatCEF, RenderOptions{Vendor: `Ven|dor\`, Product: "Cairn ✓", Version: "1|2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		line := string(r.Append(nil, &en))
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("raw newline in %q", line)
		}
		c, err := parseCEF(line)
		if err != nil {
			t.Fatalf("seq %d: %v\n%s", en.Seq, err, line)
		}
		ev := en.Event
		want := []string{"0", `Ven|dor\`, "Cairn ✓", "1|2", string(ev.Action), actionName(ev.Action), strconv.Itoa(severity(&ev))}
		if strings.Join(c.Header, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("seq %d: header %q, want %q", en.Seq, c.Header, want)
		}
		for k, v := range map[string]string{
			"suser": ev.Actor.User, "reason": ev.Reason, "cs1": ev.Actor.Session, "cs1Label": "session",
			"cs3": ev.Target.Folder, "cs6": ev.Target.Case, "request": ev.Details.Query,
			"cn1": strconv.FormatUint(uint64(en.Seq), 10), "flexString1": en.Hash.String(),
			"externalId": ev.ID, "act": string(ev.Action), "outcome": "failure",
		} {
			if c.Ext[k] != v {
				t.Errorf("seq %d: %s = %q, want %q", en.Seq, k, c.Ext[k], v)
			}
		}
		back, err := ParseLine([]byte(c.Ext["msg"]))
		if err != nil || !bytes.Equal(back.Bytes, en.Bytes) {
			t.Errorf("seq %d: msg does not give back the entry: %v", en.Seq, err)
		}
	}
}

func TestLEEFHostileRoundTrip(t *testing.T) {
	_, entries := recordHostile(t)
	r, err := NewRenderer(FormatLEEF, RenderOptions{Vendor: `Ven|dor\`})
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		line := string(r.Append(nil, &en))
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("raw newline in %q", line)
		}
		l, err := parseLEEF(line)
		if err != nil {
			t.Fatalf("seq %d: %v\n%s", en.Seq, err, line)
		}
		ev := en.Event
		want := []string{"2.0", `Ven|dor\`, "Cairn Archive", "1", string(ev.Action), "x09"}
		if strings.Join(l.Header, "\x00") != strings.Join(want, "\x00") {
			t.Errorf("seq %d: header %q, want %q", en.Seq, l.Header, want)
		}
		for k, v := range map[string]string{
			"usrName": ev.Actor.User, "reason": ev.Reason, "sessionId": ev.Actor.Session,
			"folder": ev.Target.Folder, "case": ev.Target.Case, "hold": ev.Target.Hold, "query": ev.Details.Query,
			"seq": strconv.FormatUint(uint64(en.Seq), 10), "hash": en.Hash.String(), "sev": strconv.Itoa(severity(&ev)),
			"src": "192.0.2.10",
		} {
			if l.Attrs[k] != v {
				t.Errorf("seq %d: %s = %q, want %q", en.Seq, k, l.Attrs[k], v)
			}
		}
		back, err := ParseLine([]byte(l.Attrs["raw"]))
		if err != nil || !bytes.Equal(back.Bytes, en.Bytes) {
			t.Errorf("seq %d: raw does not give back the entry: %v", en.Seq, err)
		}
	}
}

func TestSyslogHostileRoundTrip(t *testing.T) {
	_, entries := recordHostile(t)
	for _, msgFmt := range []Format{FormatJSONL, FormatCEF, FormatLEEF} {
		r, err := NewRenderer(FormatSyslog, RenderOptions{Hostname: "host.example", Message: msgFmt})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			line := string(r.Append(nil, &en))
			if strings.ContainsAny(line, "\r\n") {
				t.Fatalf("raw newline in %q", line)
			}
			m, err := parseSyslog(line)
			if err != nil {
				t.Fatalf("seq %d: %v\n%s", en.Seq, err, line)
			}
			// RFC 5424 §6.2.1: facility 13 (log audit), severity 5 (notice) for a failure.
			if m.PRI != 13*8+5 || m.Host != "host.example" || m.App != "cairn" || m.MsgID != string(en.Event.Action) || m.SDID != "cairn@32473" {
				t.Errorf("seq %d: header %+v", en.Seq, m)
			}
			if m.Params["seq"] != strconv.FormatUint(uint64(en.Seq), 10) || m.Params["hash"] != en.Hash.String() {
				t.Errorf("seq %d: SD seq/hash %q %q", en.Seq, m.Params["seq"], m.Params["hash"])
			}
			// SD values keep everything but control characters (→ U+FFFD).
			want := strings.Map(func(r rune) rune {
				if r < 0x20 || r == 0x7f {
					return '\uFFFD'
				}
				return r
			}, en.Event.Actor.User)
			if m.Params["user"] != want {
				t.Errorf("seq %d: SD user %q, want %q", en.Seq, m.Params["user"], want)
			}
			var raw string
			switch msgFmt {
			case FormatJSONL:
				raw = m.Msg
			case FormatCEF:
				c, err := parseCEF(m.Msg)
				if err != nil {
					t.Fatal(err)
				}
				raw = c.Ext["msg"]
			case FormatLEEF:
				l, err := parseLEEF(m.Msg)
				if err != nil {
					t.Fatal(err)
				}
				raw = l.Attrs["raw"]
			}
			back, err := ParseLine([]byte(raw))
			if err != nil || !bytes.Equal(back.Bytes, en.Bytes) {
				t.Errorf("%s seq %d: MSG does not give back the entry: %v", msgFmt, en.Seq, err)
			}
		}
	}
}

func TestCEFGolden(t *testing.T) {
	ev := Event{ID: "01936b2e-8a4c-7def-8123-456789abcdef", Action: ActionLogin, Outcome: OutcomeSuccess,
		Actor:  Actor{User: "ann", Role: "auditor", AuthMech: "PLAIN"},
		Source: Source{IP: "2001:db8::1", Port: 993, TLS: true, Service: "imap"}}
	ev.Time = time.UnixMilli(1700000000123) // 2023-11-14T22:13:20.123Z
	body, _ := marshalEvent(&ev)
	b := entryBytes(nil, 7, Hash{}, body)
	en, err := ParseEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewRenderer(FormatCEF, RenderOptions{})
	got := string(r.Append(nil, &en))
	want := `CEF:0|Cairn|Cairn Archive|1|auth.login|Login succeeded|3|rt=1700000000123 cn1=7 cn1Label=seq flexString1=` + en.Hash.String() +
		` flexString1Label=hash flexString2=0000000000000000000000000000000000000000000000000000000000000000 flexString2Label=prev externalId=01936b2e-8a4c-7def-8123-456789abcdef act=auth.login cat=Authentication outcome=success suser=ann spriv=auditor cs2=PLAIN cs2Label=authMech c6a2=2001:db8::1 c6a2Label=sourceIPv6 spt=993 app=imap flexNumber1=1 flexNumber1Label=tls msg=`
	if !strings.HasPrefix(got, want) {
		t.Fatalf("CEF changed:\n got %s\nwant %s...", got, want)
	}
}
