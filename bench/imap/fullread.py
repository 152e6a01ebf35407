#!/usr/bin/env python3
"""The IMAP benchmark's scripted full read, as BASELINE.md measured Dovecot:
SELECT INBOX, UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), then
every BODY.PEEK[] in batches of 1,000 UIDs. Prints one JSON line with the
phase times in seconds, the message count and the body bytes read.

    fullread.py HOST PORT USER PASSWORD
"""
import imaplib
import json
import re
import sys
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
t0 = time.monotonic()
M = imaplib.IMAP4(host, port)
M.login(user, password)
t1 = time.monotonic()
typ, data = M.select("INBOX", readonly=True)
n = int(data[0])
t2 = time.monotonic()
typ, data = M.uid("FETCH", "1:*", "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
uids = []
for item in data:
    line = item[0] if isinstance(item, tuple) else item
    m = re.search(rb"UID (\d+)", line or b"")
    if m:
        uids.append(int(m.group(1)))
t3 = time.monotonic()
nbytes = 0
bodies = 0
for i in range(0, len(uids), 1000):
    batch = uids[i:i + 1000]
    typ, data = M.uid("FETCH", "%d:%d" % (batch[0], batch[-1]), "(BODY.PEEK[])")
    for item in data:
        if isinstance(item, tuple):
            nbytes += len(item[1])
            bodies += 1
t4 = time.monotonic()
M.logout()
if len(uids) != n or bodies != n:
    print("fullread: %d messages, %d UIDs, %d bodies" % (n, len(uids), bodies), file=sys.stderr)
    sys.exit(1)
print(json.dumps({"login": t1 - t0, "select": t2 - t1, "metadata": t3 - t2, "bodies": t4 - t3,
                  "total": t4 - t1, "messages": n, "bytes": nbytes}))
