#!/usr/bin/env python3
"""Drive Cairn's read-only IMAP view with Python's imaplib, as an auditor's
script would, and check every answer. Exit status 0 when all checks pass.

    scripts/imap_check.py HOST PORT USER PASSWORD SMTP_HOST:SMTP_PORT

Checks: CAPABILITY, LIST, STATUS, EXAMINE then SELECT, UID FETCH of
headers then of bodies (every message, in batches), partial fetches,
SEARCH and UID SEARCH with each RFC 9051 key, write commands refused with
NO [NOPERM], and IDLE reporting a message archived meanwhile (sent to
Cairn's SMTP receiver with smtplib). Used by cmd/cairn/e2e/imap_test.go.
"""
import email
import email.policy
import imaplib
import re
import smtplib
import socket
import sys
import time

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def ok(typ, data, what):
    check(typ == "OK", "%s: %s %r" % (what, typ, data))
    return data


def main():
    host, port, user, password, smtp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    M = imaplib.IMAP4(host, port)
    check("IMAP4REV1" in M.capabilities, "capabilities %r" % (M.capabilities,))
    ok(*M.login(user, password), what="LOGIN")

    # LIST and STATUS of every folder.
    data = ok(*M.list('""', "*"), what="LIST")
    folders = []
    for line in data:
        m = re.match(rb'\((?P<attrs>[^)]*)\) "/" (?P<name>.*)$', line)
        check(m is not None, "LIST line %r" % line)
        if not m:
            continue
        name = m.group("name").decode()
        if name.startswith('"'):
            name = name[1:-1]
        if b"\\Noselect" not in m.group("attrs"):
            folders.append(name)
    for want in ("INBOX", "Custodians", "Dates"):
        check(any(f == want or f.startswith(want + "/") for f in folders), "LIST lacks %s: %r" % (want, folders))
    counts = {}
    for f in folders:
        d = ok(*M.status('"%s"' % f, "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"), what="STATUS " + f)
        m = re.search(rb"MESSAGES (\d+)", d[0])
        counts[f] = int(m.group(1))
    check(counts["INBOX"] > 0, "INBOX is empty")

    # EXAMINE, then every message's headers, then every body.
    typ, data = M.select("INBOX", readonly=True)
    ok(typ, data, "EXAMINE INBOX")
    n = int(data[0])
    check(n == counts["INBOX"], "EXAMINE says %d, STATUS %d" % (n, counts["INBOX"]))
    typ, data = M.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)])")
    ok(typ, data, "UID FETCH headers")
    uids, sizes, froms, subjects = [], {}, {}, {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0]
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        uids.append(uid)
        sizes[uid] = int(re.search(rb"RFC822\.SIZE (\d+)", meta).group(1))
        hdr = email.message_from_bytes(item[1], policy=email.policy.compat32)
        froms[uid] = hdr.get("From", "")
        subjects[uid] = hdr.get("Subject", "")
    check(len(uids) == n, "headers of %d messages, want %d" % (len(uids), n))
    check(uids == sorted(uids), "UIDs not ascending")
    bodies = {}
    for i in range(0, len(uids), 25):
        batch = ",".join(str(u) for u in uids[i:i + 25])
        typ, data = M.uid("FETCH", batch, "(UID BODY.PEEK[])")
        ok(typ, data, "UID FETCH bodies")
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                bodies[uid] = item[1]
    check(len(bodies) == n, "bodies of %d messages, want %d" % (len(bodies), n))
    for uid, b in bodies.items():
        check(len(b) == sizes[uid], "UID %d: %d bytes, RFC822.SIZE %d" % (uid, len(b), sizes[uid]))

    # Partial fetches agree with the whole body.
    for uid in uids[:10]:
        whole = bodies[uid]
        for off, cnt in ((0, 10), (5, 100), (len(whole) - 3, 50), (len(whole) + 10, 5)):
            typ, data = M.uid("FETCH", str(uid), "(BODY.PEEK[]<%d.%d>)" % (max(off, 0), cnt))
            ok(typ, data, "partial")
            part = data[0][1] if isinstance(data[0], tuple) else b""
            check(part == whole[max(off, 0):max(off, 0) + cnt], "UID %d <%d.%d>: %r" % (uid, off, cnt, part[:40]))
        typ, data = M.uid("FETCH", str(uid), "(BODY.PEEK[TEXT] BODY.PEEK[HEADER] BODYSTRUCTURE ENVELOPE)")
        ok(typ, data, "FETCH TEXT/HEADER")
        # Each literal comes with the text before it; ENVELOPE and
        # BODYSTRUCTURE may hold literals too (an 8-bit or multi-line
        # subject, a filename), so the two sections are found by name.
        sections = {}
        for x in data:
            if isinstance(x, tuple):
                m = re.search(rb"BODY\[(TEXT|HEADER)\] \{\d+\}$", x[0])
                if m:
                    sections[m.group(1)] = x[1]
        check(set(sections) == {b"TEXT", b"HEADER"} and sections[b"HEADER"] + sections[b"TEXT"] == whole,
              "UID %d: HEADER + TEXT differ from BODY[] (sections %s)" % (uid, sorted(sections)))

    # SELECT (read-write for flags only): SEARCH with each key.
    ok(*M.select("INBOX"), what="SELECT INBOX")
    some = uids[len(uids) // 2]
    frm = re.search(r"[\w.+-]+@[\w.-]+", froms[some] or "")
    word = re.findall(r"[A-Za-z]{5,}", subjects[some] or "")
    keys = [
        "ALL", "UID %d" % some, "1:5", "LARGER 1000", "SMALLER 5000", "SINCE 1-Jan-2000", "BEFORE 1-Jan-2100",
        "ON 1-Jan-1990", "SENTSINCE 1-Jan-2000", "SENTBEFORE 1-Jan-2100", "SENTON 1-Jan-1990", "SEEN", "UNSEEN",
        "FLAGGED", "UNFLAGGED", "ANSWERED", "UNANSWERED", "DELETED", "UNDELETED", "DRAFT", "UNDRAFT",
        "KEYWORD $Privileged", "UNKEYWORD $Privileged", "NEW", "OLD", "RECENT",
        'HEADER Message-ID ""', 'BODY "the"', 'TEXT "the"', 'NOT BODY "the"', 'OR SEEN UNSEEN',
        "BCC nobody@example.com", "CC example", "TO example",
    ]
    if frm:
        keys.append("FROM %s" % frm.group(0))
    if word:
        keys.append('SUBJECT "%s"' % word[0])
    results = {}
    for k in keys:
        typ, data = M.uid("SEARCH", None, k)
        ok(typ, data, "UID SEARCH " + k)
        results[k] = [int(x) for x in data[0].split()] if data and data[0] else []
        typ, data = M.search(None, k)
        ok(typ, data, "SEARCH " + k)
        check(len(data[0].split()) == len(results[k]), "SEARCH and UID SEARCH %s disagree" % k)
    check(len(results["ALL"]) == n, "SEARCH ALL: %d" % len(results["ALL"]))
    check(results["UID %d" % some] == [some], "UID SEARCH UID")
    check(len(results["1:5"]) == min(5, n), "SEARCH 1:5")
    check(results["ON 1-Jan-1990"] == [] and results["RECENT"] == [] and results["DELETED"] == [], "empty keys")
    check(set(results["SEEN"]) | set(results["UNSEEN"]) == set(uids), "SEEN + UNSEEN")
    check(len(results["OR SEEN UNSEEN"]) == n, "OR")
    check(set(results['BODY "the"']).isdisjoint(results['NOT BODY "the"']), "NOT")
    if frm:
        check(some in results["FROM %s" % frm.group(0)], "FROM %s misses UID %d" % (frm.group(0), some))
    if word:
        check(some in results['SUBJECT "%s"' % word[0]], "SUBJECT misses UID %d" % some)
    for u in results["LARGER 1000"]:
        check(sizes[u] > 1000, "LARGER")
    typ, data = M.uid("SEARCH", None, "RETURN (MIN MAX COUNT)", "ALL")
    check(typ == "OK", "ESEARCH: %s" % typ)
    typ, data = M.response("ESEARCH")
    check(data and data[0] and b"COUNT %d" % n in data[0] and b"MIN %d" % uids[0] in data[0], "ESEARCH %r" % (data,))

    # Flags are the account's own annotations.
    ok(*M.uid("STORE", str(some), "+FLAGS", r"(\Flagged $Privileged)"), what="STORE")
    typ, data = M.uid("FETCH", str(some), "(FLAGS)")
    check(b"$Privileged" in data[0] and b"\\Flagged" in data[0], "flags after STORE: %r" % data)

    # Writes are refused with NO [NOPERM].
    for what, call in (
        ("CREATE", lambda: M.create("Trash")),
        ("DELETE", lambda: M.delete("INBOX")),
        ("RENAME", lambda: M.rename("INBOX", "Old")),
        ("COPY", lambda: M.uid("COPY", str(some), "INBOX")),
        ("STORE \\Deleted", lambda: M.uid("STORE", str(some), "+FLAGS", r"(\Deleted)")),
        ("EXPUNGE", lambda: M.expunge()),
        ("APPEND", lambda: M.append("INBOX", None, None, b"Subject: x\r\n\r\nx\r\n")),
    ):
        try:
            typ, data = call()
        except imaplib.IMAP4.error as e:
            typ, data = "NO", [str(e).encode()]
        check(typ == "NO" and b"NOPERM" in b" ".join(x if isinstance(x, bytes) else b"" for x in data) or "NOPERM" in str(data),
              "%s not refused with NOPERM: %s %r" % (what, typ, data))
        check(b"TRYCREATE" not in repr(data).encode(), "%s answered TRYCREATE" % what)
    ok(*M.close(), what="CLOSE")
    typ, data = M.select("INBOX", readonly=True)
    check(int(data[0]) == n, "CLOSE removed messages: %r" % data)

    # IDLE: a message archived meanwhile shows up as EXISTS.
    tag = M._new_tag()
    M.send(tag + b" IDLE\r\n")
    line = M.readline()
    check(line.startswith(b"+"), "IDLE continuation: %r" % line)
    sh, sp = smtp.rsplit(":", 1)
    token = "idle%d" % int(time.time() * 1000)
    with smtplib.SMTP(sh, int(sp)) as s:
        s.sendmail("sender@example.com", ["auditee@example.com"],
                   "From: sender@example.com\r\nTo: auditee@example.com\r\nSubject: %s\r\n\r\narchived during IDLE\r\n" % token)
    M.sock.settimeout(20)
    got = None
    try:
        while True:
            line = M.readline()
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                got = int(m.group(1))
                break
    except socket.timeout:
        pass
    check(got == n + 1, "IDLE: EXISTS %r, want %d" % (got, n + 1))
    M.send(b"DONE\r\n")
    while True:
        line = M.readline()
        if line.startswith(tag):
            check(b"OK" in line, "IDLE end: %r" % line)
            break
    M.sock.settimeout(None)
    typ, data = M.uid("SEARCH", None, 'SUBJECT "%s"' % token)
    check(typ == "OK" and len(data[0].split()) == 1, "new message not found: %r" % data)
    M.logout()
    if failures:
        print("%d checks failed" % len(failures), file=sys.stderr)
        return 1
    print("imaplib: %d messages, %d folders, %d search keys: all checks passed" % (n, len(folders), len(keys)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
