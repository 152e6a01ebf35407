#!/usr/bin/env bash
# The full test suite, on a fresh machine: installs what the integration
# tests need (Postfix tools, rsyslog, Dovecot, isync, neomutt, versitygw),
# starts the real servers on 127.0.0.1 only, runs every test, stops them.
#
#   scripts/test.sh            # everything (unit with -race, then integration)
#   scripts/test.sh unit       # unit tests only, no installs
#
# It exits non-zero on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS=${GOFLAGS:-}
export CAIRN_TOOLS=${CAIRN_TOOLS:-$HOME/.cache/cairn-tools}
mode=${1:-all}
step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "go vet"
go vet ./...
go vet -tags integration ./...

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n $unformatted ]]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "unit tests (-race)"
go test -race -count=1 -timeout 20m ./...
# The patched copies of go-imap and go-smtp are modules of their own: their
# tests (upstream's, and the ones checking each Cairn patch) run here.
for m in imapview/third_party/go-imap ingest/smtp/third_party/go-smtp; do
	(cd "$m" && go test -count=1 ./...)
done

if [[ $mode == unit ]]; then
	echo "unit tests passed in $(( $(date +%s) - start ))s"
	exit 0
fi

step "installing the real components (apt-get, go install)"
need=()
command -v smtp-source >/dev/null || [[ -x /usr/sbin/smtp-source ]] || need+=(postfix)
command -v rsyslogd >/dev/null || [[ -x /usr/sbin/rsyslogd ]] || need+=(rsyslog)
dpkg -s rsyslog-gnutls >/dev/null 2>&1 || need+=(rsyslog-gnutls)
if ((${#need[@]})); then
	echo "installing: ${need[*]}"
	# The individual scripts install their own packages too; doing it here
	# once keeps apt-get update to one run.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
scripts/postfix.sh install
scripts/rsyslog.sh install
for s in scripts/dovecot.sh scripts/imap-clients.sh; do
	if [[ -x $s ]]; then "$s" install; fi
done

step "S3 server (versitygw)"
eval "$(scripts/s3-server.sh)"
trap 'scripts/s3-server.sh stop' EXIT

step "integration tests"
# Every package with files under the integration build tag, run whole with
# the tag (they fail, never skip, when a real component is missing).
pkgs=$(grep -rl --include='*.go' '^//go:build integration' . | xargs -n1 dirname | sort -u)
echo "$pkgs"
go test -tags integration -count=1 -timeout 40m $pkgs

echo
echo "all tests passed in $(( $(date +%s) - start ))s"
