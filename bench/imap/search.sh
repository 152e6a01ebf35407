#!/usr/bin/env bash
# SEARCH over a large INBOX (issue 4: FROM, SUBJECT and BODY over 1,000,000
# messages, p95 under 200 ms), with the view's own SQL. The index is built
# directly through archive/index (index.Commit, the ingest code path) from
# synthetic rows; see imapview/scale_test.go for what they hold.
#
#   bench/imap/search.sh [N]          # default 1000000
#   KEEP=DIR bench/imap/search.sh     # keep (and reuse) the index in DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
dir=${KEEP:-$(mktemp -d /tmp/cairn-search-bench.XXXXXX)}
mkdir -p "$dir"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT
CAIRN_SEARCH_MESSAGES=$N CAIRN_SEARCH_DIR=$dir go test -count=1 -run TestSearchScale -v -timeout 3h ./imapview |
	grep -E 'built|SELECT|p95|PASS|FAIL|ok'
