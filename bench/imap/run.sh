#!/usr/bin/env bash
# The IMAP view's benchmark (issue 4): the same generated corpus served by
# Dovecot from Maildir and by Cairn's IMAP view, both on 127.0.0.1, timed
# in one run with
#   - an mbsync full pull of INBOX into a fresh Maildir (FSync no; in
#     /dev/shm when there is one),
#   - a scripted full read (fullread.py: SELECT, UID FETCH 1:* (FLAGS
#     INTERNALDATE RFC822.SIZE ENVELOPE), then every BODY.PEEK[] in
#     batches of 1,000), and
#   - pipelined.py: mbsync's commands (one UID FETCH BODY.PEEK[] per
#     message, pipelined) without mbsync's Maildir writes, whose cost on
#     this machine's disk dominates and varies the mbsync figure,
# each ROUNDS times, alternating servers; it prints the medians and the
# Cairn/Dovecot ratio (below 1: Cairn is faster).
#
#   bench/imap/run.sh [N] [ROUNDS]     # N messages (default 100000), ROUNDS (default 3)
#   KEEP=DIR bench/imap/run.sh 2000    # keep the work folder
#
# Needs root on Debian (installs dovecot-imapd and isync with
# scripts/dovecot.sh; Dovecot's mail belongs to nobody). Everything it
# starts runs on 127.0.0.1 and is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
ROUNDS=${2:-3}
work=${KEEP:-$(mktemp -d /tmp/cairn-imap-bench.XXXXXX)}
mkdir -p "$work"
chmod 755 "$work" # Dovecot (as nobody) must reach its instance folder
scripts/dovecot.sh install --mbsync >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ms() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1])))" "$1"; }

# mbsync pulls into a Maildir in memory (tmpfs) when the machine has one:
# creating 100,000 files on this machine's disk took from 6 to 34 s for the
# same pull, hour to hour, whichever server sent them, and that swing said
# nothing about the servers. PULL=DIR overrides.
pulls_dir=${PULL:-}
if [ -z "$pulls_dir" ]; then
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then pulls_dir=$(mktemp -d /dev/shm/cairn-imap-pull.XXXXXX); else pulls_dir=$work; fi
fi

cairn_pid=""
cleanup() {
	[ -n "$cairn_pid" ] && kill "$cairn_pid" 2>/dev/null && wait "$cairn_pid" 2>/dev/null || true
	scripts/dovecot.sh stop "$work/dovecot" 2>/dev/null || true
	[ "$pulls_dir" != "$work" ] && [ -z "${PULL:-}" ] && rm -rf "$pulls_dir"
	[ -z "${KEEP:-}" ] && rm -rf "$work"
	true
}
trap cleanup EXIT

echo "== corpus: $N messages"
go build -o "$work/cairn" ./cmd/cairn
go run ./bench/gencorpus -n "$N" -out "$work/corpus" -seed 1
corpus_bytes=$(du -sb "$work/corpus" | cut -f1)

echo "== Dovecot $(dovecot --version | cut -d' ' -f1) from Maildir"
dport=$(free_port)
scripts/dovecot.sh instance "$work/dovecot" --port "$dport" --user bench:benchpass >/dev/null
maildir=$(scripts/dovecot.sh maildir "$work/dovecot" bench)
cp -r "$work/corpus/cur" "$work/corpus/new" "$maildir/"
scripts/dovecot.sh chown "$work/dovecot"
scripts/dovecot.sh start "$work/dovecot" >/dev/null
# Right after start Dovecot may answer "Temporary authentication failure":
# wait until a login works.
python3 - "$dport" <<'PYEOF'
import imaplib, sys, time
for _ in range(100):
    try:
        M = imaplib.IMAP4("127.0.0.1", int(sys.argv[1])); M.login("bench", "benchpass"); M.logout(); break
    except Exception:
        time.sleep(0.2)
PYEOF

echo "== Cairn (import, then cairn serve with the IMAP view)"
cport=$(free_port)
"$work/cairn" config example >"$work/cairn.yaml.example"
python3 - "$work" "$cport" <<'EOF'
import sys, yaml
work, port = sys.argv[1], sys.argv[2]
c = yaml.safe_load(open(work + "/cairn.yaml.example"))
c["data_dir"] = work + "/cairn-data"
c["smtp"]["enabled"] = False
c["http"]["enabled"] = False
c["imap"]["listen"] = "127.0.0.1:" + port
c["log"]["level"] = "warn"
yaml.safe_dump(c, open(work + "/cairn.yaml", "w"))
EOF
cairn() { "$work/cairn" --config "$work/cairn.yaml" "$@"; }
cairn init >/dev/null
start=$(date +%s.%N)
cairn import --custodian bench@example.com "$work/corpus" | tail -1
import_s=$(python3 -c "import sys,time; print('%.1f' % (time.time()-float(sys.argv[1])))" "$start")
"$work/cairn" --config "$work/cairn.yaml" serve >"$work/serve.out" 2>"$work/serve.err" &
cairn_pid=$!
for _ in $(seq 1 100); do grep -q 'imap listening' "$work/serve.err" 2>/dev/null && break; sleep 0.1; done
cpass=$(grep -o 'password: [^ ]*' "$work/serve.err" | head -1 | cut -d' ' -f2)
[ -n "$cpass" ] || { cat "$work/serve.err"; exit 1; }

mbsync_rc() { # name port user pass
	cat >"$work/mbsyncrc-$1" <<EOF
FSync no

IMAPAccount $1
Host 127.0.0.1
Port $2
User $3
Pass "$4"
SSLType None
AuthMechs LOGIN

IMAPStore $1-far
Account $1

MaildirStore $1-near
Path $pulls_dir/pull-$1/
Inbox $pulls_dir/pull-$1/INBOX

Channel $1
Far :$1-far:
Near :$1-near:
Patterns INBOX
Create Near
Sync Pull
SyncState *
EOF
}
mbsync_rc dovecot "$dport" bench benchpass
mbsync_rc cairn "$cport" auditor "$cpass"

declare -A pulls reads pipes
for r in $(seq 1 "$ROUNDS"); do
	for s in dovecot cairn; do
		rm -rf "$pulls_dir"/pull-*
		mkdir -p "$pulls_dir/pull-$s"
		t=$(date +%s.%N)
		mbsync -q -c "$work/mbsyncrc-$s" -a
		pulls[$s]+="$(python3 -c "import sys,time; print('%.3f' % (time.time()-float(sys.argv[1])))" "$t") "
		got=$(find "$pulls_dir/pull-$s/INBOX" -type f -path '*/new/*' -o -type f -path '*/cur/*' | wc -l)
		[ "$got" = "$N" ] || { echo "mbsync from $s pulled $got of $N"; exit 1; }
		if [ "$s" = dovecot ]; then port=$dport user=bench pass=benchpass; else port=$cport user=auditor pass=$cpass; fi
		reads[$s]+="$(python3 bench/imap/fullread.py 127.0.0.1 "$port" "$user" "$pass")"$'\n'
		pipes[$s]+="$(python3 bench/imap/pipelined.py 127.0.0.1 "$port" "$user" "$pass")"$'\n'
	done
	echo "round $r: mbsync dovecot ${pulls[dovecot]##* }... done"
done

python3 - "$N" "$corpus_bytes" "$import_s" "${pulls[dovecot]}" "${pulls[cairn]}" "${reads[dovecot]}" "${reads[cairn]}" "${pipes[dovecot]}" "${pipes[cairn]}" "$pulls_dir" <<'EOF'
import json, statistics, sys
n, size, imp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
pd = [float(x) for x in sys.argv[4].split()]
pc = [float(x) for x in sys.argv[5].split()]
rd = [json.loads(l) for l in sys.argv[6].splitlines() if l.strip()]
rc = [json.loads(l) for l in sys.argv[7].splitlines() if l.strip()]
qd = [json.loads(l) for l in sys.argv[8].splitlines() if l.strip()]
qc = [json.loads(l) for l in sys.argv[9].splitlines() if l.strip()]
for q in qd + qc:
    if q["messages"] != n:
        sys.exit("pipelined read %d of %d messages" % (q["messages"], n))
med = statistics.median
print()
print("mbsync pulled into: %s" % sys.argv[10])
print("IMAP view benchmark: %d messages, %.0f MB (Maildir), %d rounds; Cairn import took %s s" % (n, size / 1e6, len(pd), imp))
print("%-34s %10s %10s %8s" % ("median seconds", "Dovecot", "Cairn", "ratio"))
def row(name, d, c):
    print("%-34s %10.2f %10.2f %8.2f" % (name, d, c, c / d if d else float("nan")))
row("mbsync full pull of INBOX", med(pd), med(pc))
for k in ("select", "metadata", "bodies", "total"):
    row("full read: " + k, med([x[k] for x in rd]), med([x[k] for x in rc]))
row("pipelined UID FETCH per message", med([x["seconds"] for x in qd]), med([x["seconds"] for x in qc]))
print("(ratio = Cairn / Dovecot; below 1.00 Cairn is faster)")
# mbsync's pull swings by seconds between rounds (it writes N files): show
# every round, not only the median.
print("mbsync rounds, seconds: Dovecot %s; Cairn %s" % (" ".join("%.2f" % x for x in pd), " ".join("%.2f" % x for x in pc)))
EOF
# DESIGN.md: memory stays flat with archive size. serve's peak resident
# set over every round (compare a 2,000 and a 100,000 run).
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$cairn_pid/status" 2>/dev/null || echo 0)
echo "cairn serve peak RSS over all rounds: $((hwm / 1024)) MiB"
