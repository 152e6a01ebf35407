package audit

import "strconv"

// appendCEF renders one CEF:0 line.
// ArcSight CEF rev. 25: CEF:Version|Device Vendor|Device Product|Device
// Version|Device Event Class ID|Name|Severity|[Extension]
func (r *Renderer) appendCEF(dst []byte, e *Entry) []byte {
	ev := &e.Event
	dst = append(dst, "CEF:0|"...)
	for _, h := range []string{r.o.Vendor, r.o.Product, r.o.Version, string(ev.Action), actionName(ev.Action)} {
		dst = appendCEFHeader(dst, h)
		dst = append(dst, '|')
	}
	dst = appendUint(dst, uint64(severity(ev)))
	dst = append(dst, '|')
	// rt: event time in milliseconds since the epoch (CEF "deviceReceiptTime").
	dst = append(dst, "rt="...)
	dst = strconv.AppendInt(dst, ev.Time.UnixMilli(), 10)
	for _, f := range fields(e) {
		if f.cef == "" || f.v == "" {
			continue
		}
		dst = append(dst, ' ')
		dst = append(dst, f.cef...)
		dst = append(dst, '=')
		dst = appendCEFValue(dst, f.v)
		if l, ok := cefLabels[f.cef]; ok {
			dst = append(dst, ' ')
			dst = append(dst, f.cef...)
			dst = append(dst, "Label="...)
			dst = append(dst, l...)
		}
	}
	// msg: the exact JSONL line, so the CEF record verifies on its own.
	dst = append(dst, " msg="...)
	return appendCEFValue(dst, string(AppendLine(nil, e.Bytes, e.Hash)))
}

// appendLEEF renders one LEEF 2.0 line.
// IBM LEEF 2.0: LEEF:2.0|Vendor|Product|Version|EventID|DelimiterCharacter|attributes
func (r *Renderer) appendLEEF(dst []byte, e *Entry) []byte {
	ev := &e.Event
	dst = append(dst, "LEEF:2.0|"...)
	for _, h := range []string{r.o.Vendor, r.o.Product, r.o.Version, string(ev.Action)} {
		dst = appendLEEFHeader(dst, h)
		dst = append(dst, '|')
	}
	dst = append(dst, "x09|"...)
	// devTime with its format declared (LEEF predefined attributes).
	dst = append(dst, "devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSXXX"...)
	dst = append(dst, leefDelim)
	dst = append(dst, "devTime="...)
	dst = ev.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, leefDelim)
	dst = append(dst, "sev="...)
	dst = appendUint(dst, uint64(severity(ev)))
	for _, f := range fields(e) {
		if f.leef == "" || f.v == "" {
			continue
		}
		dst = append(dst, leefDelim)
		dst = append(dst, f.leef...)
		dst = append(dst, '=')
		dst = appendLEEFValue(dst, f.v)
	}
	dst = append(dst, leefDelim)
	dst = append(dst, "raw="...)
	return appendLEEFValue(dst, string(AppendLine(nil, e.Bytes, e.Hash)))
}

// appendSyslog renders one RFC 5424 message (no transport framing).
// RFC 5424 §6: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]
func (r *Renderer) appendSyslog(dst []byte, e *Entry) []byte {
	ev := &e.Event
	sev := 6 // informational
	if ev.Outcome == OutcomeFailure {
		sev = 5 // notice
	}
	// RFC 5424 §6.2.1: PRI = facility * 8 + severity.
	dst = append(dst, '<')
	dst = appendUint(dst, uint64(r.o.Facility*8+sev))
	dst = append(dst, ">1 "...)
	dst = appendTimestamp(dst, ev.Time)
	dst = append(dst, ' ')
	dst = append(dst, r.o.Hostname...)
	dst = append(dst, ' ')
	dst = append(dst, r.o.AppName...)
	// PROCID "-"; MSGID is the action (RFC 5424 §6.2.7: 1*32 PRINTUSASCII).
	dst = append(dst, " - "...)
	dst = append(dst, ev.Action...)
	dst = append(dst, " ["...)
	dst = append(dst, r.o.SDID...)
	for _, f := range fields(e) {
		if f.v == "" {
			continue
		}
		// RFC 5424 §6.3.3: SD-PARAM = PARAM-NAME "=" %d34 PARAM-VALUE %d34
		dst = append(dst, ' ')
		dst = append(dst, f.sd...)
		dst = append(dst, `="`...)
		dst = appendSDValue(dst, f.v)
		dst = append(dst, '"')
	}
	dst = append(dst, "] "...)
	// RFC 5424 §6.4: MSG-ANY (no BOM), so SIEMs that expect "CEF:" or "{" at
	// the start of MSG find it there.
	switch r.o.Message {
	case FormatCEF:
		return r.appendCEF(dst, e)
	case FormatLEEF:
		return r.appendLEEF(dst, e)
	default:
		return AppendLine(dst, e.Bytes, e.Hash)
	}
}

// actionName is the human-readable CEF Name of an action.
func actionName(a Action) string {
	switch a {
	case ActionLogin:
		return "Login succeeded"
	case ActionLoginFailure:
		return "Login failed"
	case ActionSelect:
		return "Mailbox opened"
	case ActionFetch:
		return "Messages read"
	case ActionSearch:
		return "Messages searched"
	case ActionFlag:
		return "Review flags changed"
	case ActionExport:
		return "Export created"
	case ActionHoldPlace:
		return "Litigation hold placed"
	case ActionHoldRelease:
		return "Litigation hold released"
	case ActionDispose:
		return "Messages disposed"
	case ActionErase:
		return "Erasure executed"
	case ActionUserChange:
		return "User changed"
	case ActionKeyRotate:
		return "Key rotated"
	case ActionConfigChange:
		return "Configuration changed"
	case ActionCheckpointPublish:
		return "Ledger checkpoint published"
	}
	return string(a)
}
