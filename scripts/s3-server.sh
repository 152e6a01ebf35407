#!/usr/bin/env bash
# Start a private S3 server (versitygw, POSIX backend) for tests.
#
#   eval "$(scripts/s3-server.sh)"          # start; exports the variables below
#   go test -tags integration ./archive/objstore/s3/
#   scripts/s3-server.sh stop               # stop it and remove its data
#
# It listens on 127.0.0.1 on a free port, keeps its data in a fresh temp dir
# (Object Lock needs the versioning dir), and prints export lines for:
#   CAIRN_TEST_S3_ENDPOINT    host:port, plain HTTP
#   CAIRN_TEST_S3_ACCESS_KEY
#   CAIRN_TEST_S3_SECRET_KEY
#   CAIRN_TEST_S3_PID         the server process
#   CAIRN_TEST_S3_DIR         its data, log and pid file
# Everything else goes to stderr, so stdout is safe to eval.
#
# The binary is built once with `go install` (about 95 s) and cached under
# $CAIRN_TOOLS (default ~/.cache/cairn-tools); reruns skip the build.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0

stop() {
	local pid=${CAIRN_TEST_S3_PID:-} dir=${CAIRN_TEST_S3_DIR:-}
	if [[ -z $pid && -n $dir && -f $dir/pid ]]; then
		pid=$(cat "$dir/pid")
	fi
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -CONT "$pid" 2>/dev/null || true # in case a test left it stopped
		kill "$pid"
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	if [[ -n $dir && -d $dir && $dir == */cairn-s3.* ]]; then
		rm -rf "$dir"
	fi
}

if [[ ${1:-} == stop ]]; then
	stop
	exit 0
fi

tools=${CAIRN_TOOLS:-$HOME/.cache/cairn-tools}
bindir=$tools/versitygw-$VERSITYGW_VERSION
bin=$bindir/versitygw
if [[ ! -x $bin ]]; then
	echo "s3-server: building versitygw $VERSITYGW_VERSION into $bindir (about 95 s)" >&2
	mkdir -p "$bindir"
	# Outside the module, so the build does not touch go.mod.
	(cd / && GOBIN=$bindir GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION") >&2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-s3.XXXXXX")
mkdir -p "$dir/data" "$dir/versions"
access=cairn$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
secret=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')

# A port is free if nothing answers on it. Another process may take it
# before versitygw binds, so a failed start is retried on a new port. Ports
# come from below the kernel's ephemeral range (ip_local_port_range), as in
# internal/freeport: an outgoing connection never takes one meanwhile.
free_port() {
	local port low=32768 span
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	span=$((low - 10000))
	if ((span < 1000)); then
		span=20000 # a range starting unusually low: fall back to 10000-29999
	fi
	while :; do
		port=$((10000 + RANDOM % span))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

for attempt in 1 2 3 4 5; do
	port=$(free_port)
	# setsid: the server must not die with the shell that eval'd us, and
	# must not hold our stdout open (eval "$(...)" waits for it).
	setsid "$bin" --access "$access" --secret "$secret" --port "127.0.0.1:$port" \
		posix --versioning-dir "$dir/versions" "$dir/data" \
		</dev/null >"$dir/server.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/pid"
	for _ in $(seq 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		# Any HTTP answer (403 without credentials) means it is serving.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			cat <<EOF
export CAIRN_TEST_S3_ENDPOINT=127.0.0.1:$port
export CAIRN_TEST_S3_ACCESS_KEY=$access
export CAIRN_TEST_S3_SECRET_KEY=$secret
export CAIRN_TEST_S3_PID=$pid
export CAIRN_TEST_S3_DIR=$dir
EOF
			echo "s3-server: versitygw pid $pid on 127.0.0.1:$port, data in $dir" >&2
			exit 0
		fi
		sleep 0.1
	done
	echo "s3-server: attempt $attempt on port $port failed:" >&2
	tail -5 "$dir/server.log" >&2 || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
done
rm -rf "$dir"
echo "s3-server: versitygw did not start" >&2
exit 1
