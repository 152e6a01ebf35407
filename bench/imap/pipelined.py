#!/usr/bin/env python3
"""The IMAP benchmark's server-side measure of mbsync's pattern: EXAMINE
INBOX, UID SEARCH ALL, then one "UID FETCH <uid> (BODY.PEEK[])" per message,
all pipelined (sent in batches of 100 by one thread while the main thread
reads), bodies counted and dropped. mbsync sends the same commands but also
writes each message to a Maildir, whose cost (file creation on this
machine's disk) is most of its time and varies from run to run; this script
writes nothing. Prints one JSON line: seconds, messages, body bytes.

    pipelined.py HOST PORT USER PASSWORD
"""
import json
import re
import socket
import sys
import threading
import time

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port))
f = s.makefile("rb")
literal = re.compile(rb"\{(\d+)\}\r\n$")


def command(line):
    tag = line.split()[0].encode()
    s.sendall(line.encode() + b"\r\n")
    out = []
    while True:
        l = f.readline()
        if not l:
            sys.exit("pipelined: connection closed")
        m = literal.search(l)
        if m:
            f.read(int(m.group(1)))
        if l.startswith(tag + b" "):
            if not l.startswith(tag + b" OK"):
                sys.exit("pipelined: %s: %s" % (line.split()[1], l.decode(errors="replace").strip()))
            return out
        out.append(l)


f.readline()  # greeting
command('a LOGIN "%s" "%s"' % (user, password.replace("\\", "\\\\").replace('"', '\\"')))
command("b EXAMINE INBOX")
uids = []
for l in command("c UID SEARCH ALL"):
    if l.startswith(b"* SEARCH"):
        uids += [int(x) for x in l.split()[2:]]
t0 = time.monotonic()


def send():
    for i in range(0, len(uids), 100):
        s.sendall(b"".join(b"F%d UID FETCH %d (BODY.PEEK[])\r\n" % (j, u) for j, u in enumerate(uids[i:i + 100], i)))


sender = threading.Thread(target=send)
sender.start()
done = nbytes = bodies = 0
while done < len(uids):
    l = f.readline()
    if not l:
        sys.exit("pipelined: connection closed")
    m = literal.search(l)
    if m:
        nbytes += len(f.read(int(m.group(1))))
        bodies += 1
    if l.startswith(b"F"):
        if b" OK" not in l:
            sys.exit("pipelined: %s" % l.decode(errors="replace").strip())
        done += 1
took = time.monotonic() - t0
sender.join()
command("z LOGOUT")
if bodies != len(uids):
    sys.exit("pipelined: %d UIDs, %d bodies" % (len(uids), bodies))
print(json.dumps({"seconds": took, "messages": len(uids), "bytes": nbytes}))
