#!/usr/bin/env bash
# Dovecot for Cairn's tests and benchmarks: install dovecot-imapd (and
# mbsync) if missing, and run private Dovecot instances on 127.0.0.1 that
# never touch the system's /etc/dovecot.
#
#   scripts/dovecot.sh [install] [--mbsync]   install dovecot-imapd (and isync) if missing
#   scripts/dovecot.sh check                   exit 1 unless dovecot is installed
#   scripts/dovecot.sh instance DIR --port PORT [--tls-port PORT] [--separator C]
#         [--user NAME:PASSWORD]... [--oauth-introspect URL]
#                                              write a private instance's config into DIR
#   scripts/dovecot.sh adduser DIR NAME PASSWORD   add a user (works while running)
#   scripts/dovecot.sh maildir DIR NAME        print NAME's Maildir (created if missing)
#   scripts/dovecot.sh chown DIR               give every mail file to the mail user
#   scripts/dovecot.sh start DIR               start it and wait until it listens
#   scripts/dovecot.sh stop DIR                stop it (and wait until it is gone)
#   scripts/dovecot.sh running DIR             exit 0 when it runs
#
# An instance has its own config file (DIR/dovecot.conf), base_dir
# (DIR/run), state_dir (DIR/state), log (DIR/dovecot.log), passwd-file
# users (DIR/users, plain-text passwords: test data only) and mail under
# DIR/mail/NAME/Maildir (Maildir++; --separator sets the hierarchy
# separator shown over IMAP, "." by default). It listens on 127.0.0.1 only:
# --port without TLS (STARTTLS offered when --tls-port is given too) and
# --tls-port with implicit TLS. With a TLS port the script makes a private
# CA (DIR/tls/ca.pem) and a server certificate for 127.0.0.1 and localhost,
# so clients can verify it with that CA file.
#
# --oauth-introspect URL adds the XOAUTH2 and OAUTHBEARER mechanisms
# (RFC 7628), checked by Dovecot's oauth2 passdb against an RFC 7662
# introspection endpoint at URL (POST token=...; {"active":true,
# "username":NAME} accepts).
#
# As root, mail belongs to nobody:nogroup (Dovecot refuses uid 0) and
# first_valid_uid matches it. Files written into a Maildir by a test as root
# must be handed over with `chown` before Dovecot reads them.
set -euo pipefail

die() {
	echo "dovecot.sh: $*" >&2
	exit 1
}

dovecot_bin() {
	command -v dovecot 2>/dev/null || { [ -x /usr/sbin/dovecot ] && echo /usr/sbin/dovecot; } || true
}

install_tools() {
	local want_mbsync=0 pkgs=()
	[ "${1:-}" = "--mbsync" ] && want_mbsync=1
	[ -n "$(dovecot_bin)" ] || pkgs+=(dovecot-imapd)
	if [ "$want_mbsync" = 1 ] && ! command -v mbsync >/dev/null 2>&1; then
		pkgs+=(isync)
	fi
	[ ${#pkgs[@]} = 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "must run as root to install ${pkgs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	# policy-rc.d 101 keeps the package from starting the system Dovecot.
	local policy=/usr/sbin/policy-rc.d had_policy=0
	[ -e "$policy" ] && had_policy=1
	if [ "$had_policy" = 0 ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
	fi
	local rc=0
	apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null || rc=$?
	[ "$had_policy" = 0 ] && rm -f "$policy"
	[ "$rc" = 0 ] || die "apt-get install ${pkgs[*]} failed"
	[ -n "$(dovecot_bin)" ] || die "dovecot still missing after install"
	echo "dovecot.sh: installed ${pkgs[*]} (dovecot $($(dovecot_bin) --version))"
}

abs() {
	mkdir -p "$1"
	(cd "$1" && pwd)
}

mail_uid() { id -u nobody; }
mail_gid() { getent group nogroup >/dev/null && getent group nogroup | cut -d: -f3 || id -g nobody; }

make_tls() {
	local dir="$1/tls"
	mkdir -p "$dir"
	[ -f "$dir/server.pem" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-subj "/CN=Cairn test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
	printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/ext.cnf"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 3650 -extfile "$dir/ext.cnf" -out "$dir/server.pem" >/dev/null 2>&1
	chmod 0644 "$dir/server.pem" "$dir/ca.pem"
	chmod 0600 "$dir/server.key" "$dir/ca.key"
}

add_user() {
	local dir="$1" name="$2" pass="$3"
	case "$name$pass" in *:* | *$'\n'*) die "user names and passwords must not hold ':' or newlines" ;; esac
	touch "$dir/users"
	if grep -q "^$name:" "$dir/users"; then
		sed -i "/^$name:/d" "$dir/users"
	fi
	echo "$name:{PLAIN}$pass::::::" >>"$dir/users"
	chmod 0644 "$dir/users"
	user_maildir "$dir" "$name" >/dev/null
}

user_maildir() {
	local dir="$1" name="$2"
	local md="$dir/mail/$name/Maildir"
	if [ ! -d "$md/cur" ]; then
		mkdir -p "$md/cur" "$md/new" "$md/tmp"
		chown -R "$(mail_uid):$(mail_gid)" "$dir/mail/$name"
	fi
	echo "$md"
}

write_instance() {
	local dir="$1"
	shift
	local port="" tls_port="" sep="." oauth="" users=()
	while [ $# -gt 0 ]; do
		case "$1" in
		--port) port="$2"; shift 2 ;;
		--tls-port) tls_port="$2"; shift 2 ;;
		--separator) sep="$2"; shift 2 ;;
		--user) users+=("$2"); shift 2 ;;
		--oauth-introspect) oauth="$2"; shift 2 ;;
		*) die "instance: unknown option $1" ;;
		esac
	done
	[ -n "$port" ] || die "instance: --port is required"
	[ "$(id -u)" = 0 ] || die "instance: must run as root (Dovecot's master needs it)"
	dir="$(abs "$dir")"
	chmod 0755 "$dir"
	# Dovecot's auth and mail processes run as other users: every folder
	# above DIR must let them through.
	local p="$dir"
	while [ "$p" != / ]; do
		p="$(dirname "$p")"
		[ "$(( 0$(stat -c %a "$p") & 01 ))" != 0 ] || die "instance: $p is not searchable by other users (chmod o+x it), so Dovecot cannot reach $dir"
	done
	mkdir -p "$dir/run" "$dir/state" "$dir/mail"
	chmod 0755 "$dir/run" "$dir/state" "$dir/mail"
	chown "$(mail_uid):$(mail_gid)" "$dir/mail"
	: >"$dir/dovecot.log"
	chmod 0644 "$dir/dovecot.log"
	local uid gid
	uid="$(mail_uid)"
	gid="$(mail_gid)"
	[ -n "$tls_port" ] && make_tls "$dir"
	{
		echo "# Private Dovecot instance for Cairn tests. Generated by scripts/dovecot.sh."
		echo "instance_name = cairn-$(basename "$dir")-$port"
		echo "base_dir = $dir/run"
		echo "state_dir = $dir/state"
		echo "log_path = $dir/dovecot.log"
		echo "protocols = imap"
		echo "listen = 127.0.0.1"
		echo "shutdown_clients = yes"
		echo "first_valid_uid = $uid"
		echo "last_valid_uid = $uid"
		echo "first_valid_gid = $gid"
		echo "mail_location = maildir:~/Maildir"
		echo "mail_privileged_group ="
		echo "disable_plaintext_auth = no"
		echo "auth_cache_size = 0"
		echo "login_trusted_networks ="
		echo "imap_idle_notify_interval = 2 mins"
		echo "mailbox_list_index = yes"
		# Tests deliver into Maildirs behind Dovecot's back; look at the
		# folders on every access rather than trusting cached state.
		echo "maildir_very_dirty_syncs = no"
		if [ -n "$oauth" ]; then
			echo "auth_mechanisms = plain login xoauth2 oauthbearer"
		else
			echo "auth_mechanisms = plain login"
		fi
		echo "passdb {"
		echo "  driver = passwd-file"
		echo "  args = scheme=PLAIN username_format=%u $dir/users"
		if [ -n "$oauth" ]; then
			echo "  mechanisms = plain login"
		fi
		echo "}"
		if [ -n "$oauth" ]; then
			echo "passdb {"
			echo "  driver = oauth2"
			echo "  mechanisms = xoauth2 oauthbearer"
			echo "  args = $dir/oauth2.conf.ext"
			echo "}"
		fi
		echo "userdb {"
		echo "  driver = static"
		echo "  args = uid=$uid gid=$gid home=$dir/mail/%u"
		echo "}"
		echo "namespace inbox {"
		echo "  inbox = yes"
		echo "  separator = $sep"
		echo "}"
		echo "service imap-login {"
		echo "  inet_listener imap {"
		echo "    address = 127.0.0.1"
		echo "    port = $port"
		echo "  }"
		echo "  inet_listener imaps {"
		echo "    address = 127.0.0.1"
		echo "    port = ${tls_port:-0}"
		[ -n "$tls_port" ] && echo "    ssl = yes"
		echo "  }"
		echo "}"
		# No POP3, LMTP or submission: only the IMAP services run.
		echo "service lmtp {"
		echo "  unix_listener lmtp {"
		echo "    mode = 0"
		echo "  }"
		echo "}"
		if [ -n "$tls_port" ]; then
			echo "ssl = yes"
			echo "ssl_cert = <$dir/tls/server.pem"
			echo "ssl_key = <$dir/tls/server.key"
			[ -f /usr/share/dovecot/dh.pem ] && echo "ssl_dh = </usr/share/dovecot/dh.pem"
		else
			echo "ssl = no"
		fi
	} >"$dir/dovecot.conf"
	if [ -n "$oauth" ]; then
		{
			echo "introspection_mode = post"
			echo "introspection_url = $oauth"
			echo "username_attribute = username"
			echo "active_attribute = active"
			echo "active_value = true"
			echo "force_introspection = yes"
			echo "tokeninfo_url ="
		} >"$dir/oauth2.conf.ext"
	fi
	: >"$dir/users"
	local u
	for u in "${users[@]}"; do
		add_user "$dir" "${u%%:*}" "${u#*:}"
	done
}

port_of() {
	sed -n 's/^ *port = \([0-9][0-9]*\)$/\1/p' "$1/dovecot.conf" | head -1
}

running() {
	local dir="$1" pid
	[ -f "$dir/run/master.pid" ] || return 1
	pid="$(cat "$dir/run/master.pid" 2>/dev/null)" || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start_instance() {
	local dir
	dir="$(abs "$1")"
	[ -f "$dir/dovecot.conf" ] || die "start: $dir/dovecot.conf missing; run instance first"
	running "$dir" && return 0
	local bin
	bin="$(dovecot_bin)"
	[ -n "$bin" ] || die "dovecot is not installed; run scripts/dovecot.sh install"
	# The master daemonises: it must not keep the caller's stdout and
	# stderr open (a caller reading them would wait for ever).
	"$bin" -c "$dir/dovecot.conf" </dev/null >>"$dir/dovecot.log" 2>&1 || die "dovecot did not start; see $dir/dovecot.log"
	local port i
	port="$(port_of "$dir")"
	for i in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "dovecot is not listening on 127.0.0.1:$port after 10s; see $dir/dovecot.log"
}

stop_instance() {
	local dir
	dir="$(abs "$1")"
	running "$dir" || return 0
	local pid i kids
	pid="$(cat "$dir/run/master.pid")"
	# The master's children (imap, imap-login, auth, ...). Dovecot 2.3
	# leaves a running imap session alive after its master stops; a test of
	# an outage needs every connection gone, so they are stopped too.
	kids="$(descendants "$pid")"
	"$(dovecot_bin)" -c "$dir/dovecot.conf" stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	[ -n "$kids" ] && kill $kids 2>/dev/null || true
	for i in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	for i in $(seq 1 50); do
		alive=""
		for k in $kids; do kill -0 "$k" 2>/dev/null && alive="$alive $k"; done
		[ -z "$alive" ] && return 0
		sleep 0.1
	done
	kill -9 $alive 2>/dev/null || true
}

descendants() {
	local p c
	for c in $(pgrep -P "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

cmd="${1:-install}"
[ $# -gt 0 ] && shift
case "$cmd" in
install) install_tools "$@" ;;
check) [ -n "$(dovecot_bin)" ] || die "dovecot is not installed" ;;
instance)
	[ $# -ge 1 ] || die "usage: instance DIR --port PORT ..."
	write_instance "$@"
	;;
adduser)
	[ $# = 3 ] || die "usage: adduser DIR NAME PASSWORD"
	add_user "$(abs "$1")" "$2" "$3"
	;;
maildir)
	[ $# = 2 ] || die "usage: maildir DIR NAME"
	user_maildir "$(abs "$1")" "$2"
	;;
chown)
	[ $# = 1 ] || die "usage: chown DIR"
	chown -R "$(mail_uid):$(mail_gid)" "$(abs "$1")/mail"
	;;
start) start_instance "$1" ;;
stop) stop_instance "$1" ;;
running) running "$(abs "$1")" ;;
*) die "unknown command $cmd (install, check, instance, adduser, maildir, chown, start, stop, running)" ;;
esac
