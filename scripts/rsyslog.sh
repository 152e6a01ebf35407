#!/usr/bin/env bash
# rsyslog as a test SIEM for the audit sinks (audit/*_integration_test.go).
#
#   scripts/rsyslog.sh install
#       installs rsyslog and rsyslog-gnutls with apt-get if rsyslogd or the
#       gtls driver is missing.
#   scripts/rsyslog.sh start DIR TCP_PORT [TLS_PORT]
#       writes DIR/rsyslog.conf and starts a private rsyslogd in the
#       background on 127.0.0.1 (never the system one): an imtcp input on
#       TCP_PORT writing %rawmsg% to DIR/tcp.log and, with TLS_PORT, a TLS
#       input (gtls; DIR/ca.pem, DIR/cert.pem, DIR/key.pem must exist)
#       writing to DIR/tls.log. Waits until the ports accept connections.
#       Prints the pid; the pidfile is DIR/rsyslogd.pid.
#   scripts/rsyslog.sh stop DIR
#       stops the rsyslogd started with DIR (SIGTERM, waits for exit).
#
# Both inputs accept octet-counted frames (RFC 6587 §3.4.1); messages up to
# 64 KiB. Everything lives in DIR: config, work directory, pidfile, output.
set -euo pipefail

cmd=${1:-}

have_gtls() {
	command -v rsyslogd >/dev/null 2>&1 || return 1
	ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || ls /usr/lib/rsyslog/lmnsd_gtls.so >/dev/null 2>&1
}

wait_port() { # host port seconds
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

case "$cmd" in
install)
	if have_gtls; then
		exit 0
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends rsyslog rsyslog-gnutls >/dev/null
	have_gtls || { echo "rsyslog.sh: rsyslogd or its gtls driver still missing" >&2; exit 1; }
	;;
start)
	dir=$(cd "${2:?DIR}" && pwd)
	tcp=${3:?TCP_PORT}
	tls=${4:-}
	mkdir -p "$dir/work"
	cat >"$dir/rsyslog.conf" <<EOF
global(workDirectory="$dir/work" maxMessageSize="64k")
module(load="imtcp" maxSessions="100")
template(name="raw" type="string" string="%rawmsg%\n")
ruleset(name="tcp") { action(type="omfile" file="$dir/tcp.log" template="raw") }
input(type="imtcp" address="127.0.0.1" port="$tcp" ruleset="tcp")
EOF
	if [[ -n "$tls" ]]; then
		cat >>"$dir/rsyslog.conf" <<EOF
ruleset(name="tls") { action(type="omfile" file="$dir/tls.log" template="raw") }
input(type="imtcp" address="127.0.0.1" port="$tls" ruleset="tls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"
      streamDriver.CAFile="$dir/ca.pem" streamDriver.CertFile="$dir/cert.pem" streamDriver.KeyFile="$dir/key.pem")
EOF
	fi
	rsyslogd -N1 -f "$dir/rsyslog.conf" >"$dir/check.log" 2>&1 || { cat "$dir/check.log" >&2; exit 1; }
	rm -f "$dir/rsyslogd.pid"
	nohup rsyslogd -n -f "$dir/rsyslog.conf" -i "$dir/rsyslogd.pid" >>"$dir/rsyslogd.out" 2>&1 &
	pid=$!
	for port in $tcp $tls; do
		if ! wait_port 127.0.0.1 "$port" 10; then
			echo "rsyslog.sh: port $port not listening; rsyslogd output:" >&2
			cat "$dir/rsyslogd.out" >&2
			kill "$pid" 2>/dev/null || true
			exit 1
		fi
	done
	echo "$pid"
	;;
stop)
	dir=${2:?DIR}
	[[ -f "$dir/rsyslogd.pid" ]] || exit 0
	pid=$(cat "$dir/rsyslogd.pid")
	kill "$pid" 2>/dev/null || exit 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$dir/rsyslogd.pid"; exit 0; }
		sleep 0.1
	done
	echo "rsyslog.sh: rsyslogd $pid did not stop in 10 s; killing" >&2
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$dir/rsyslogd.pid"
	;;
*)
	sed -n '2,20p' "$0" >&2
	exit 2
	;;
esac
