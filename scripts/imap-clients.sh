#!/usr/bin/env bash
# Installs the real IMAP clients and servers the IMAP view's integration
# tests (cmd/cairn/e2e/imap_test.go, thunderbird_test.go) and its benchmark
# (bench/imap) drive: isync (mbsync), neomutt, tmux, Thunderbird, Dovecot,
# and Python 3 for the imaplib script. Debian/Ubuntu, as root.
#
#   scripts/imap-clients.sh [install]   # install what is missing
set -euo pipefail

need=()
command -v mbsync >/dev/null || need+=(isync)
command -v neomutt >/dev/null || need+=(neomutt)
command -v tmux >/dev/null || need+=(tmux)
command -v thunderbird >/dev/null || need+=(thunderbird)
command -v python3 >/dev/null || need+=(python3)
[[ -x /usr/sbin/dovecot ]] || command -v dovecot >/dev/null || need+=(dovecot-imapd)
if ((${#need[@]} == 0)); then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for c in mbsync neomutt tmux thunderbird python3; do
	command -v "$c" >/dev/null || { echo "imap-clients.sh: $c still missing" >&2; exit 1; }
done
