#!/usr/bin/env bash
# Every benchmark, each against its real peer in the same run:
#
#   bench/run.sh           # the sizes the issues name (about an hour here)
#   bench/run.sh quick     # small sizes, a few minutes (a smoke run)
#
# - bench/ingest  cairn import vs this machine's limits (SHA-256, zstd, age,
#                 durable files), measured in the same run
# - bench/smtp    cairn serve vs Postfix smtp-sink under smtp-source
# - bench/imap    the IMAP view vs Dovecot (mbsync pull and a scripted read)
#                 and SEARCH latency over a large index
# - bench/harvest cairn harvest vs mbsync pulling a Dovecot mailbox
#
# The machine has 2 cores and is noisy: every benchmark reports medians of
# alternating runs and ratios. Results go to stdout and to bench/out/.
# Needs root on Debian (installs Postfix tools, Dovecot and isync).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}
out=bench/out
mkdir -p "$out"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [[ $mode == quick ]]; then
	ingest=(-n 5000 -runs 1) smtp=(-n 2000 -runs 1) imapN=2000 harvestN=2000 rounds=1
else
	ingest=(-n 20000 -runs 3) smtp=(-n 20000 -runs 3) imapN=100000 harvestN=100000 rounds=3
fi
scripts/postfix.sh install >/dev/null
step() { printf '\n==> %s\n' "$*" | tee -a "$out/$stamp.txt"; }
step "ingest: cairn import vs machine limits"
go run ./bench/ingest "${ingest[@]}" | tee -a "$out/$stamp.txt"
step "smtp: cairn serve vs smtp-sink"
go run ./bench/smtp "${smtp[@]}" | tee -a "$out/$stamp.txt"
step "imap: the IMAP view vs Dovecot"
bench/imap/run.sh "$imapN" "$rounds" | tee -a "$out/$stamp.txt"
step "harvest: cairn harvest vs mbsync"
bench/harvest/run.sh "$harvestN" "$rounds" | tee -a "$out/$stamp.txt"
echo "results: $out/$stamp.txt"
