#!/usr/bin/env python3
"""Drive a real, headless Thunderbird against Cairn's IMAP view and check
that it logs in, lists the folders and downloads every message of every
folder for offline use, while its attempts to CREATE and SUBSCRIBE a Trash
folder are refused without breaking the sync. Exit status 0 when all checks
pass. Used by cmd/cairn/e2e/thunderbird_test.go.

    thunderbird_check.py HOST PORT USER PASSWORD WORKDIR

How: a fresh profile whose prefs.js holds one IMAP account (plain IMAP on
loopback, password authentication, offline download on); Thunderbird runs
with --headless and Marionette (its remote-control protocol) with system
access, so that chrome JavaScript can store the password through the login
manager (Thunderbird reads passwords only from logins.json + key4.db, which
NSS itself writes that way), discover the folders and download each for
offline use. Thunderbird's own IMAP log (MOZ_LOG=IMAP:5) shows what it sent
and what the server answered.
"""
import imaplib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


class Marionette:
    def __init__(self, port, timeout=300):
        deadline = time.time() + 60
        while True:
            try:
                self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        self.buf = b""
        self.id = 0
        self._read()

    def _read(self):
        while b":" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("marionette closed")
            self.buf += chunk
        n, rest = self.buf.split(b":", 1)
        n = int(n)
        while len(rest) < n:
            rest += self.s.recv(65536)
        msg, self.buf = rest[:n], rest[n:]
        return json.loads(msg)

    def cmd(self, name, params=None):
        self.id += 1
        data = json.dumps([0, self.id, name, params or {}]).encode()
        self.s.sendall(str(len(data)).encode() + b":" + data)
        while True:
            r = self._read()
            if r[0] == 1 and r[1] == self.id:
                if r[2]:
                    raise RuntimeError(r[2].get("message", r[2]))
                return r[3].get("value") if isinstance(r[3], dict) else r[3]

    def js(self, script, *args):
        """Runs script (which may await) in the chrome context; returns its
        value or raises its error."""
        wrapped = ("const __done = arguments[arguments.length - 1];\n"
                   "(async (...arguments) => {\n" + script + "\n})(...Array.from(arguments).slice(0, -1))"
                   ".then(v => __done({ok: v}), e => __done({err: String(e) + '\\n' + (e && e.stack)}));")
        r = self.cmd("WebDriver:ExecuteAsyncScript", {"script": wrapped, "args": list(args), "scriptTimeout": 900000})
        if isinstance(r, dict) and "err" in r:
            raise RuntimeError(r["err"])
        return r.get("ok") if isinstance(r, dict) else r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


PREFS = """
user_pref("marionette.port", {mport});
user_pref("mail.accountmanager.accounts", "account1,account2");
user_pref("mail.accountmanager.defaultaccount", "account1");
user_pref("mail.accountmanager.localfoldersserver", "server2");
user_pref("mail.account.account1.identities", "id1");
user_pref("mail.account.account1.server", "server1");
user_pref("mail.account.account2.server", "server2");
user_pref("mail.identity.id1.fullName", "Auditor");
user_pref("mail.identity.id1.useremail", "{user}@cairn.test");
user_pref("mail.identity.id1.valid", true);
user_pref("mail.server.server1.type", "imap");
user_pref("mail.server.server1.hostname", "{host}");
user_pref("mail.server.server1.port", {port});
user_pref("mail.server.server1.userName", "{user}");
user_pref("mail.server.server1.name", "Cairn archive");
user_pref("mail.server.server1.socketType", 0);
user_pref("mail.server.server1.authMethod", 3);
user_pref("mail.server.server1.directory-rel", "[ProfD]ImapMail/cairn");
user_pref("mail.server.server1.offline_download", true);
user_pref("mail.server.server1.login_at_startup", false);
user_pref("mail.server.server1.check_new_mail", false);
user_pref("mail.server.server1.trash_folder_name", "Trash");
user_pref("mail.server.server1.using_subscription", true);
user_pref("mail.server.server2.type", "none");
user_pref("mail.server.server2.hostname", "Local Folders");
user_pref("mail.server.server2.userName", "nobody");
user_pref("mail.server.server2.name", "Local Folders");
user_pref("mail.server.server2.directory-rel", "[ProfD]Mail/Local Folders");
user_pref("mail.shell.checkDefaultClient", false);
user_pref("mail.provider.suppress_dialog_on_startup", true);
user_pref("mail.spotlight.firstRunDone", true);
user_pref("mail.rights.version", 1);
user_pref("mailnews.start_page.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("offline.download.download_messages", 1);
user_pref("mail.imap.use_status_for_biff", false);
"""

SETUP_JS = r"""
const [pw, origin] = arguments;
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const li = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
li.init(origin, null, origin, "%s", pw, "", "");
await Services.logins.addLoginAsync(li);
const server = MailServices.accounts.accounts.map(a => a.incomingServer).find(s => s.type == "imap");
// Log in and list (LIST, LSUB), as on first start; wait until the folder
// list stops growing.
server.performExpand(null);
const sleep = ms => new Promise(r => {
  const t = Cc["@mozilla.org/timer;1"].createInstance(Ci.nsITimer);
  t.initWithCallback({ notify: () => r() }, ms, Ci.nsITimer.TYPE_ONE_SHOT);
  sleep.timers = (sleep.timers || []).concat(t);
});
let last = -1, stable = 0;
for (let i = 0; i < 600 && stable < 10; i++) {
  await sleep(200);
  const n = server.rootFolder.descendants.length;
  stable = n > 1 && n == last ? stable + 1 : 0;
  last = n;
}
return MailServices.accounts.allFolders.filter(f => f.server.key == server.key).map(f => f.URI);
"""

SYNC_JS = r"""
const { MailServices } = ChromeUtils.importESModule("resource:///modules/MailServices.sys.mjs");
const server = MailServices.accounts.accounts.map(a => a.incomingServer).find(s => s.type == "imap");
const out = {};
// The folder tree loads from the profile shortly after start.
const sleep = ms => new Promise(r => {
  const t = Cc["@mozilla.org/timer;1"].createInstance(Ci.nsITimer);
  t.initWithCallback({ notify: () => r() }, ms, Ci.nsITimer.TYPE_ONE_SHOT);
  sleep.timers = (sleep.timers || []).concat(t);
});
const mine = () => MailServices.accounts.allFolders.filter(f => f.server.key == server.key && f.URI != server.rootFolder.URI);
for (let i = 0, last = -1, stable = 0; i < 25 && stable < 10; i++) {
  await sleep(200);
  const n = mine().length;
  stable = n > 1 && n == last ? stable + 1 : 0;
  last = n;
}
// Headless, Thunderbird keeps only INBOX in its in-memory folder tree
// although it discovered and stored every folder (an .msf file each): ask
// it for each folder the server lists, by URL (each name part escaped, so
// that the "@" of Custodians/<address> stays in the path).
const names = arguments[0];
const folders = names.map(n => MailServices.folderLookup.getOrCreateFolderForURL(
  server.rootFolder.URI + "/" + n.split("/").map(encodeURIComponent).join("/")));
for (const f of folders) {
  if (f.getFlag(Ci.nsMsgFolderFlags.ImapNoselect) || f.getFlag(Ci.nsMsgFolderFlags.Virtual)) continue;
  f.setFlag(Ci.nsMsgFolderFlags.Offline);
  const imap = f.QueryInterface(Ci.nsIMsgImapMailFolder);
  // A folder made from its URL does not know the server's hierarchy
  // delimiter until Thunderbird lists it again ("^" stands in for it, and
  // the first such folder was selected as "Custodians^alice@..."): the
  // view's is "/".
  imap.hierarchyDelimiter = "/";
  const status = await new Promise(resolve => {
    imap.downloadAllForOffline({
      OnStartRunningUrl() {},
      OnStopRunningUrl(url, status) { resolve(status); },
    }, null);
  });
  let total = 0, offline = 0, bytes = 0;
  for (const hdr of f.messages) {
    total++;
    if (hdr.flags & Ci.nsMsgMessageFlags.Offline) { offline++; bytes += hdr.messageSize; }
  }
  out[decodeURIComponent(f.URI.replace(/^imap:\/\/[^/]*\//, ""))] = {status, total, offline, bytes};
}
return out;
"""


def main():
    host, port, user, password, work = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    profile = os.path.join(work, "profile")
    os.makedirs(profile, exist_ok=True)
    mport = free_port()
    with open(os.path.join(profile, "prefs.js"), "w") as f:
        f.write(PREFS.format(mport=mport, host=host, port=port, user=user))
    log = os.path.join(work, "imap.log")
    env = dict(os.environ, MOZ_LOG="IMAP:5", MOZ_LOG_FILE=log, MOZ_HEADLESS="1")

    def run(script, *args):
        # Thunderbird, started on the profile, runs one chrome script and
        # quits.
        port = free_port()
        prefs = open(os.path.join(profile, "prefs.js")).read()
        prefs = re.sub(r'user_pref\("marionette.port", \d+\);', 'user_pref("marionette.port", %d);' % port, prefs)
        with open(os.path.join(profile, "prefs.js"), "w") as f:
            f.write(prefs)
        tb = subprocess.Popen(["thunderbird", "--headless", "--marionette", "-remote-allow-system-access",
                               "--no-remote", "--profile", profile],
                              stdout=open(os.path.join(work, "thunderbird.out"), "a"), stderr=subprocess.STDOUT, env=env)
        try:
            m = Marionette(port)
            m.cmd("WebDriver:NewSession", {"capabilities": {}})
            m.cmd("Marionette:SetContext", {"value": "chrome"})
            m.cmd("WebDriver:SetTimeouts", {"script": 900000})
            version = m.js("return Services.appinfo.name + ' ' + Services.appinfo.version")
            result = m.js(script, *args)
            # Let it write the folder tree it learnt to the profile (one
            # .msf file per folder) before it quits.
            imap_dir = os.path.join(profile, "ImapMail")
            last, stable = -1, 0
            for _ in range(120):
                n = sum(len([f for f in fs if f.endswith(".msf")]) for _, _, fs in os.walk(imap_dir))
                stable = stable + 1 if n == last and n > 1 else 0
                if stable >= 6:
                    break
                last = n
                time.sleep(0.5)
            return version, result
        finally:
            tb.send_signal(signal.SIGTERM)
            try:
                tb.wait(60)
            except subprocess.TimeoutExpired:
                tb.kill()
                tb.wait()

    # First start: the password goes into the login manager, Thunderbird
    # logs in and discovers the folders (and, as a first run does, looks
    # for its Trash). Second start: it downloads every folder for offline
    # use, as "Synchronise" does.
    version, folders = run(SETUP_JS % user, password, "imap://" + host)
    check(len(folders) > 0, "Thunderbird discovered no folders")
    # What the server holds, folder by folder.
    M = imaplib.IMAP4(host, port)
    M.login(user, password)
    want = {}
    for line in M.list('""', "*")[1]:
        mm = re.match(rb'\((?P<attrs>[^)]*)\) "/" (?P<name>.*)$', line)
        name = mm.group("name").decode().strip('"')
        if b"\\Noselect" in mm.group("attrs"):
            continue
        st = M.status('"%s"' % name, "(MESSAGES)")[1][0]
        want[name] = int(re.search(rb"MESSAGES (\d+)", st).group(1))
    M.logout()

    t0 = time.time()
    version, got = run(SYNC_JS, sorted(want))
    took = time.time() - t0

    # Every folder the server lists was discovered: Thunderbird keeps one
    # .msf summary file per folder in the profile.
    imap_dir = os.path.join(profile, "ImapMail", "cairn")
    for name in want:
        msf = os.path.join(imap_dir, *[p + ".sbd" for p in name.split("/")[:-1]], name.split("/")[-1] + ".msf")
        check(os.path.exists(msf), "Thunderbird did not discover %s (no %s)" % (name, msf))
    synced = 0
    for name, n in want.items():
        key = name if name in got else next((k for k in got if k.endswith(name) or k.endswith(name.replace("@", "%40"))), None)
        check(key is not None, "Thunderbird has no folder %s (it has %s)" % (name, sorted(got)))
        if key is None:
            continue
        g = got[key]
        check(g["status"] == 0, "%s: downloadAllForOffline status %s" % (name, g["status"]))
        check(g["total"] == n, "%s: Thunderbird lists %d messages, the server %d" % (name, g["total"], n))
        check(g["offline"] == n, "%s: %d of %d messages downloaded for offline use" % (name, g["offline"], n))
        synced += g["offline"]
    # MOZ_LOG_FILE gets a ".moz_log" suffix (and one file per process).
    imap_log = "".join(open(os.path.join(work, f), errors="replace").read()
                       for f in sorted(os.listdir(work)) if f.startswith("imap.log"))
    for cmd in ("CREATE", "SUBSCRIBE", "APPEND", "STORE", "EXPUNGE", "COPY", "MOVE"):
        sent = re.findall(r"SendData: \S+ (?:UID )?%s[^\r\n]*" % cmd, imap_log)
        if sent:
            print("Thunderbird sent %d %s: %s" % (len(sent), cmd, sent[0][:120]))
    refused = re.findall(r"NO \[NOPERM\][^\r\n]*", imap_log)
    check(not re.search(r"\bTRYCREATE\b", imap_log), "the server answered TRYCREATE")
    creates = re.findall(r"SendData: \S+ create \"Trash\"", imap_log)
    check(len(creates) > 0, "Thunderbird never tried to CREATE its Trash")
    check(len(refused) >= len(creates), "%d CREATE Trash, %d NO [NOPERM]" % (len(creates), len(refused)))
    print("%s: discovered all %d folders; CREATE Trash tried %d times, refused NO [NOPERM]; %d messages in all %d folders "
          "downloaded for offline use in %.1f s"
          % (version, len(want), len(creates), synced, len(want), took))
    if failures:
        print("%d checks failed" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
