#!/usr/bin/env bash
# The harvester's benchmark (issue 6): one Dovecot mailbox of N generated
# messages (Maildir on 127.0.0.1), pulled in the same run, ROUNDS times,
# alternating, by
#   - Cairn: `cairn harvest run --once` into a fresh archive (every message
#     hashed, compressed, encrypted, written durably, ledger and index
#     committed before the cursor moves);
#   - mbsync with `FSync no` into a fresh local Maildir (no fsync at all:
#     the ceiling of a plain copy);
#   - mbsync with its default `FSync yes` (each message fsync'd, the
#     durability Cairn promises), MBSYNC_FSYNC_ROUNDS times (default 1: at
#     100,000 messages it takes minutes).
# It prints the medians, msgs/s, and the ratio Cairn / mbsync of the times
# (below 1.00 Cairn is faster). A warm-up mbsync pass first builds
# Dovecot's indexes and fills the page cache for everyone.
#
#   bench/harvest/run.sh [N] [ROUNDS]    # N messages (default 100000), ROUNDS (default 3)
#   bench/harvest/run.sh 2000 1          # what CI runs
#   KEEP=DIR bench/harvest/run.sh 2000   # keep the work folder
#   OUT=FILE ...                         # also write the summary to FILE
#
# Needs root on Debian (installs dovecot-imapd and isync with
# scripts/dovecot.sh; Dovecot's mail belongs to nobody). Everything runs on
# 127.0.0.1 and is stopped at exit. Disk: about 3x the mailbox.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
ROUNDS=${2:-3}
FSYNC_ROUNDS=${MBSYNC_FSYNC_ROUNDS:-1}
work=${KEEP:-$(mktemp -d /tmp/cairn-harvest-bench.XXXXXX)}
mkdir -p "$work"
chmod 0755 "$work" # Dovecot's processes reach its instance inside
scripts/dovecot.sh install --mbsync >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
since() { python3 -c "import sys,time; print('%.3f' % (time.time()-float(sys.argv[1])))" "$1"; }

cleanup() {
	scripts/dovecot.sh stop "$work/dovecot" 2>/dev/null || true
	[ -z "${KEEP:-}" ] && rm -rf "$work"
	true
}
trap cleanup EXIT

echo "== building cairn; generating $N messages"
go build -o "$work/cairn" ./cmd/cairn
dport=$(free_port)
scripts/dovecot.sh instance "$work/dovecot" --port "$dport" --user bench:benchpass >/dev/null
maildir=$(scripts/dovecot.sh maildir "$work/dovecot" bench)
go run ./bench/gencorpus -n "$N" -out "$maildir" -seed 6 -seen-every 10
mailbox_bytes=$(du -sb "$maildir" | cut -f1)
scripts/dovecot.sh chown "$work/dovecot"
scripts/dovecot.sh start "$work/dovecot" >/dev/null
echo "== Dovecot $(dovecot --version | cut -d' ' -f1) on 127.0.0.1:$dport, mbsync $(mbsync --version | cut -d' ' -f2), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

mbsync_rc() { # name fsync(yes|no)
	{
		[ "$2" = no ] && echo "FSync no"
		cat <<EOF

IMAPAccount bench
Host 127.0.0.1
Port $dport
User bench
Pass benchpass
SSLType None
AuthMechs LOGIN

IMAPStore far
Account bench

MaildirStore near
Path $work/pull-$1/
Inbox $work/pull-$1/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Create Near
Sync Pull
SyncState *
EOF
	} >"$work/mbsyncrc-$1"
}
mbsync_rc nofsync no
mbsync_rc fsync yes

# mbsync NAME: one full pull into a fresh Maildir; prints the seconds.
pull() {
	rm -rf "$work/pull-$1"
	mkdir -p "$work/pull-$1"
	local t
	t=$(date +%s.%N)
	mbsync -q -c "$work/mbsyncrc-$1" -a
	since "$t"
	local got
	got=$(find "$work/pull-$1/INBOX/cur" "$work/pull-$1/INBOX/new" -type f | wc -l)
	[ "$got" = "$N" ] || { echo "mbsync ($1) pulled $got of $N" >&2; exit 1; }
	rm -rf "$work/pull-$1"
}

printf 'benchpass\n' >"$work/bench.pw"
cat >"$work/cairn.yaml" <<EOF
data_dir: $work/cairn-data
log:
  level: warn
harvest:
  sources:
    - name: bench
      host: 127.0.0.1
      port: $dport
      tls: none
      user: bench
      password_file: $work/bench.pw
      custodian: bench@example.com
EOF
# cairn_pull: one full harvest into a fresh archive; prints the seconds.
cairn_pull() {
	rm -rf "$work/cairn-data"
	"$work/cairn" --config "$work/cairn.yaml" init >/dev/null
	local t out
	t=$(date +%s.%N)
	out=$("$work/cairn" --config "$work/cairn.yaml" harvest run --once)
	since "$t"
	echo "$out" | grep -q "bench: ok: archived $N," || { echo "cairn: $out" >&2; exit 1; }
}

echo "== warm-up: one mbsync pass (Dovecot's indexes, page cache)"
warm=$(pull nofsync)
echo "   ${warm}s"

cairn_t="" nofsync_t="" fsync_t=""
for r in $(seq 1 "$ROUNDS"); do
	c=$(cairn_pull)
	cairn_t+="$c "
	m=$(pull nofsync)
	nofsync_t+="$m "
	line="round $r: cairn ${c}s, mbsync FSync no ${m}s"
	if [ "$r" -le "$FSYNC_ROUNDS" ]; then
		f=$(pull fsync)
		fsync_t+="$f "
		line+=", mbsync FSync yes ${f}s"
	fi
	echo "$line"
done
du_archive=$(du -sb "$work/cairn-data" | cut -f1)

python3 - "$N" "$mailbox_bytes" "$du_archive" "$cairn_t" "$nofsync_t" "$fsync_t" "$(nproc)" <<'EOF' | tee "${OUT:-/dev/null}"
import statistics, sys
n, size, arch = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
c = [float(x) for x in sys.argv[4].split()]
m = [float(x) for x in sys.argv[5].split()]
f = [float(x) for x in sys.argv[6].split()]
med = statistics.median
print()
print("Harvest benchmark: %d messages, %.0f MB in Dovecot's Maildir, %d cores; median of %d rounds (mbsync FSync yes: %d)"
      % (n, size / 1e6, int(sys.argv[7]), len(c), len(f)))
print("%-40s %10s %10s %12s" % ("", "seconds", "msgs/s", "Cairn/it"))
def row(name, xs):
    t = med(xs)
    ratio = med(c) / t
    print("%-40s %10.2f %10.0f %12.2f" % (name, t, n / t, ratio))
row("cairn harvest run --once", c)
row("mbsync, FSync no (no durability)", m)
if f:
    row("mbsync, FSync yes (default)", f)
print("(Cairn/it = Cairn's time / that time; below 1.00 Cairn is faster. Archive on disk: %.0f MB)" % (arch / 1e6))
EOF
