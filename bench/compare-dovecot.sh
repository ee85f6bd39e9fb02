#!/usr/bin/env bash
# IMAP under a client population: MES against Debian's Dovecot 2.3, on this
# machine, with the same load tool (`mes bench imap`), the same TLS
# certificate, the same mailbox and the same password hash.
#
#   sudo bench/compare-dovecot.sh
#   CLIENTS=10 MESSAGES=10000 DURATION=20 sudo -E bench/compare-dovecot.sh
#   MES_BIN=target/release/mes sudo -E bench/compare-dovecot.sh   # skip the build
#
# Runs as root on Debian 12: installs dovecot-imapd when it is missing (the
# system's own Dovecot is neither configured nor stopped nor touched), then runs
# a throwaway MES and a throwaway Dovecot, each on its own loopback port and its
# own folder under a temporary directory that is removed on exit.
#
# Both servers:
#   MES      SQLite (WAL, synchronous=FULL, group commit), implicit TLS;
#   Dovecot  Maildir with its default fsync settings (mail_fsync = optimized),
#            implicit TLS, its default login processes.
# The account's password hash is the one MES stored (Argon2id, the same
# parameters), given to Dovecot as {ARGON2ID}: LOGIN costs both servers the same
# hashing; it is reported on its own line all the same.
#
# Each server gets MESSAGES messages in INBOX, then two workloads of CLIENTS
# clients for DURATION seconds each: `sessions` (LOGIN, LIST, STATUS, SELECT,
# FETCH of 50 envelopes, FETCH of a body, STORE, APPEND, EXPUNGE, LOGOUT in a
# loop) and `commands` (long sessions: FETCH, STORE, SEARCH SUBJECT, APPEND).
#
# Environment:
#   CLIENTS (10)  MESSAGES (10000)  DURATION (20)
#   MES_PORT (2993)  DV_PORT (2994)  MES_BIN (built with cargo when unset)
#   MES_REV (the revision MES_BIN was built from, for the report)
#   KEEP_TMP=1 keeps the temporary folder (servers are stopped all the same).
set -euo pipefail

CLIENTS=${CLIENTS:-10}
MESSAGES=${MESSAGES:-10000}
DURATION=${DURATION:-20}
MES_PORT=${MES_PORT:-2993}
DV_PORT=${DV_PORT:-2994}
USER_ADDR=bench@hopital-a.mes.test

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
say() { printf '%s\n' "$*"; }
die() {
	printf 'compare-dovecot: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (Dovecot's master starts as root)"

# --- 1. MES binary -----------------------------------------------------------------
if [ -z "${MES_BIN:-}" ]; then
	say "building MES (release)"
	(cd "$repo" && cargo build --release --quiet)
	MES_BIN=$repo/target/release/mes
	MES_REV=${MES_REV:-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)}
fi
[ -x "$MES_BIN" ] || die "no executable at $MES_BIN"
MES_BIN=$(realpath "$MES_BIN")
case $MES_BIN in
*/debug/*) say "WARNING: $MES_BIN looks like a debug build; figures are only meaningful in release" ;;
esac

# --- 2. Dovecot package ------------------------------------------------------------
if ! command -v dovecot >/dev/null || [ ! -x /usr/lib/dovecot/imap ]; then
	say "installing dovecot-imapd"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q dovecot-imapd >/dev/null ||
		die "could not install dovecot-imapd"
fi
DV_VERSION=$(dovecot --version 2>/dev/null || echo unknown)
getent passwd dovecot >/dev/null || die "no dovecot user"
getent passwd dovenull >/dev/null || die "no dovenull user"

# --- the throwaway folder and its cleanup -----------------------------------------
tmp=$(mktemp -d -t mes-vs-dovecot.XXXXXX)
chmod 755 "$tmp"
mes_pid=
dv=$tmp/dovecot
dv_started=

stop_all() {
	set +e
	mes_stop
	if [ -n "$dv_started" ]; then
		local master
		master=$(cat "$dv/run/master.pid" 2>/dev/null)
		doveadm -c "$dv/dovecot.conf" stop >/dev/null 2>&1
		for _ in $(seq 100); do
			[ -n "$master" ] && kill -0 "$master" 2>/dev/null || break
			sleep 0.1
		done
		[ -n "$master" ] && kill -KILL "$master" 2>/dev/null
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

password="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export MES_BENCH_PASSWORD=$password

# --- 3. MES instance ---------------------------------------------------------------
mes=$tmp/mes
mes_instance "$mes" imaps "$MES_PORT"
hash=$(sqlite3 "$mes/data/mes.db" "SELECT password_hash FROM accounts WHERE address = '$USER_ADDR'")
case $hash in
'$argon2id$'*) ;;
*) die "unexpected password hash in MES's database: ${hash:0:12}…" ;;
esac
mes_start "$tmp/mes.out" "$tmp/mes.err"

# --- 4. Dovecot instance -----------------------------------------------------------
mkdir -p "$dv/run" "$dv/state" "$dv/home"
chown dovecot:dovecot "$dv/home"
printf '%s:{ARGON2ID}%s\n' "$USER_ADDR" "$hash" >"$dv/passwd"
chmod 644 "$dv/passwd"
cat >"$dv/dovecot.conf" <<EOF
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$mes/certs/server.pem
ssl_key = <$mes/certs/server.key
auth_mechanisms = plain
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = $dv/passwd
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$dv/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $DV_PORT
    ssl = yes
  }
}
EOF
dovecot -c "$dv/dovecot.conf" || die "dovecot did not start: $(cat "$dv/log" 2>/dev/null)"
dv_started=1
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/"$DV_PORT") 2>/dev/null && break
	sleep 0.1
done

# Resident memory of Dovecot: every process of the instance (master and children).
dovecot_rss_kib() {
	local master total=0 pid kib
	master=$(cat "$dv/run/master.pid")
	for pid in $master $(pgrep -P "$master"); do
		kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
		total=$((total + ${kib:-0}))
	done
	echo "$total"
}

bench() {
	local port=$1
	shift
	"$MES_BIN" bench imap --server "127.0.0.1:$port" --ca "$mes/certs/ca.pem" \
		--user "$USER_ADDR" --messages "$MESSAGES" "$@"
}

say "machine:  $(nproc) CPUs, $(uname -r)"
say "load:     $CLIENTS clients, $MESSAGES messages in INBOX, ${DURATION} s per workload, implicit TLS"
say "mes:      $("$MES_BIN" --version 2>/dev/null || echo mes), $MES_BIN, source ${MES_REV:-unknown}"
say "dovecot:  $DV_VERSION (Debian package)"
for server in MES Dovecot; do
	case $server in
	MES) port=$MES_PORT pid_arg=(--server-pid "$mes_pid") ;;
	Dovecot) port=$DV_PORT pid_arg=() ;;
	esac
	say ""
	say "== $server"
	{
		bench "$port" --clients 0 --duration 0
		for profile in sessions commands; do
			bench "$port" --no-header-fetch --profile "$profile" --clients "$CLIENTS" \
				--duration "$DURATION" "${pid_arg[@]}"
		done
		if [ "$server" = Dovecot ]; then
			echo "Dovecot RSS (all its processes) after the workloads: $(dovecot_rss_kib) KiB"
		fi
	} | tee "$tmp/$server.txt" | sed 's/^/  /'
done

# ops/s of a workload, and p50 of a command in it, from a report.
ops() { sed -n "s/^$2 workload: .*: \([0-9.]*\) ops\/s$/\1/p" "$tmp/$1.txt"; }
p50() {
	awk -v w="$2 workload:" -v c="$3" '
		index($0, w) == 1 { inside = 1; next }
		/workload:/ { inside = 0 }
		inside && $1 == c { for (i = 1; i <= NF; i++) if ($i == "p50") { print $(i + 1); exit } }
	' "$tmp/$1.txt"
}
say ""
for profile in sessions commands; do
	m=$(ops MES "$profile") d=$(ops Dovecot "$profile")
	say "$profile workload: MES $m ops/s, Dovecot $d ops/s, ratio MES/Dovecot $(awk -v m="$m" -v d="$d" 'BEGIN { if (d > 0) printf "%.2f", m / d; else print "n/a" }')"
	for command in login list status select fetch body store search append expunge logout; do
		pm=$(p50 MES "$profile" "$command") pd=$(p50 Dovecot "$profile" "$command")
		[ -n "$pm$pd" ] && say "  p50 $command: MES ${pm:-?} ms, Dovecot ${pd:-?} ms"
	done
done
