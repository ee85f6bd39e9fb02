#!/usr/bin/env bash
# SMTP acceptance rate of MES against Debian's Postfix, on this machine, with the
# same load tool (`mes bench smtp`), the same TLS work and the same message sizes.
#
#   sudo bench/compare-postfix.sh
#   CONNECTIONS=16 SIZE=4096 MESSAGES=5000 WARMUP=300 sudo -E bench/compare-postfix.sh
#   MES_BIN=target/release/mes sudo -E bench/compare-postfix.sh   # skip the build
#
# Runs as root on Debian 12: installs the postfix package when it is missing (the
# system's own Postfix instance is neither configured nor started nor touched),
# then runs a throwaway MES and a throwaway Postfix, each on its own loopback port
# and its own folder under a temporary directory that is removed on exit.
#
# What each server has done before its 250 to DATA:
#   MES      parsed the message and committed it to its mailbox in SQLite
#            (WAL, synchronous=FULL, group commit);
#   Postfix  written and fsync'ed its queue file; delivery to the Maildir
#            (virtual(8)) happens afterwards, in the background.
# The script checks afterwards that Postfix really delivered every message.
#
# Environment:
#   CONNECTIONS (16)  SIZE (4096)  MESSAGES (5000)  WARMUP (300)
#   MES_PORT (2625)   PF_PORT (2626)   MES_BIN (build with cargo when unset)
#   MES_REV (the revision MES_BIN was built from, for the report)
#   DELIVERY_TIMEOUT (600 s, Postfix's queue to drain into the Maildir)
#   KEEP_TMP=1 keeps the temporary folder (servers are stopped all the same).
#   POSTFIX_EXTRA  main.cf lines appended to Postfix's configuration, for experiments
#                  only (e.g. 'in_flow_delay = 0s'); published figures use none.
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-16}
SIZE=${SIZE:-4096}
MESSAGES=${MESSAGES:-5000}
WARMUP=${WARMUP:-300}
MES_PORT=${MES_PORT:-2625}
PF_PORT=${PF_PORT:-2626}
DELIVERY_TIMEOUT=${DELIVERY_TIMEOUT:-600}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"

say() { printf '== %s\n' "$*" >&2; }
die() {
	printf 'compare-postfix: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (installs postfix, runs a Postfix instance)"
for v in CONNECTIONS SIZE MESSAGES WARMUP MES_PORT PF_PORT DELIVERY_TIMEOUT; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number, not '${!v}'"
done

# Something already listening on a loopback port?
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$MES_PORT" "$PF_PORT"; do
	! port_busy "$p" || die "127.0.0.1:$p is in use; choose MES_PORT / PF_PORT"
done

# --- 1. MES, release build -------------------------------------------------------
if [ -z "${MES_BIN:-}" ]; then
	say "cargo build --release"
	(cd "$repo" && cargo build --release)
	MES_BIN=$repo/target/release/mes
	MES_REV=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
fi
# With MES_BIN, say which source it was built from with MES_REV.
MES_REV=${MES_REV:-unknown}
[ -f "$MES_BIN" ] && [ -x "$MES_BIN" ] || die "no executable at $MES_BIN"
MES_BIN=$(realpath "$MES_BIN")
case $MES_BIN in
*/debug/*) say "WARNING: $MES_BIN looks like a debug build; figures are only meaningful in release" ;;
esac

# --- 2. Postfix, Debian's package ------------------------------------------------
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
	say "installing postfix (debconf: No configuration)"
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends postfix >/dev/null
fi
command -v postfix >/dev/null || die "postfix is not on PATH after installation"
getent passwd postfix >/dev/null || die "no postfix user"
getent group postdrop >/dev/null || die "no postdrop group"
PF_VERSION=$(postconf -d -h mail_version 2>/dev/null || echo unknown)

# --- the throwaway folder and its cleanup -----------------------------------------
tmp=$(mktemp -d -t mes-vs-postfix.XXXXXX)
# Postfix's daemons run as the postfix user and must reach their queue in here.
chmod 755 "$tmp"
mes_pid=
pf=$tmp/pf
pf_started=

stop_all() {
	set +e
	mes_stop
	if [ -n "$pf_started" ]; then
		local master
		master=$(tr -dc 0-9 <"$pf/spool/pid/master.pid" 2>/dev/null)
		postfix -c "$pf/etc" stop >/dev/null 2>&1
		# The master runs in its own session: wait until no process of it is left.
		for _ in $(seq 150); do
			[ -n "$master" ] && pgrep -s "$master" >/dev/null || break
			sleep 0.1
		done
		if [ -n "$master" ] && pgrep -s "$master" >/dev/null; then
			pkill -KILL -s "$master"
		fi
	fi
	if [ -n "${KEEP_TMP:-}" ]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Runs the load tool against MES or Postfix; prints its result line.
load() {
	local server=$1 messages=$2 run_id=$3 addr from to log
	case $server in
	MES)
		addr=127.0.0.1:$MES_PORT from=load@operateur2.mes.test to=bench@hopital-a.mes.test
		log=$tmp/mes.err
		;;
	Postfix)
		addr=127.0.0.1:$PF_PORT from=bench@bench.test to=bench@bench.test log=$pf/maillog
		;;
	esac
	"$MES_BIN" bench smtp --server "$addr" \
		--ca "$mes/certs/ca.pem" \
		--cert "$mes/certs/operator2.pem" --key "$mes/certs/operator2.key" \
		--from "$from" --to "$to" \
		--connections "$CONNECTIONS" --messages "$messages" --size "$SIZE" \
		--run-id "$run_id" || {
		echo "compare-postfix: the load tool failed against $server ($addr); end of its log:" >&2
		tail -n 20 "$log" >&2 || true
		return 1
	}
}

# --- 3. MES instance -------------------------------------------------------------
say "MES instance in $tmp/mes"
mes=$tmp/mes
password="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
mes_instance "$mes" mx "$MES_PORT"
mes_start "$tmp/mes.out" "$tmp/mes.err"

# --- 4. Postfix instance ---------------------------------------------------------
say "Postfix $PF_VERSION instance in $pf"
mkdir -p "$pf/etc" "$pf/spool" "$pf/data" "$pf/mail"
mail_uid=$(id -u nobody)
mail_gid=$(id -g nobody)
chown "$mail_uid:$mail_gid" "$pf/mail"
chown postfix: "$pf/data"
chmod 700 "$pf/data"
echo 'bench@bench.test bench/' >"$pf/vmailbox"
cat >"$pf/etc/main.cf" <<EOF
# Throwaway instance of compare-postfix.sh. Durability settings are Postfix's defaults.
compatibility_level = 3.6
queue_directory = $pf/spool
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $pf/maillog
maillog_file_prefixes = $tmp
myhostname = pf.bench.test
mydomain = bench.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
biff = no
smtputf8_enable = no

virtual_mailbox_domains = bench.test
virtual_mailbox_base = $pf/mail
virtual_mailbox_maps = texthash:$pf/vmailbox
virtual_uid_maps = static:$mail_uid
virtual_gid_maps = static:$mail_gid

# The same TLS work as MES: its server certificate, and the client's certificate
# asked for and verified against the same CA.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $mes/certs/server.pem
smtpd_tls_key_file = $mes/certs/server.key
smtpd_tls_ask_ccert = yes
smtpd_tls_CAfile = $mes/certs/ca.pem
smtpd_tls_loglevel = 0
EOF
if [ -n "${POSTFIX_EXTRA:-}" ]; then
	say "POSTFIX_EXTRA: $POSTFIX_EXTRA"
	printf '\n# POSTFIX_EXTRA\n%s\n' "$POSTFIX_EXTRA" >>"$pf/etc/main.cf"
fi
cat >"$pf/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$PF_PORT inet n -     n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
# Creates the queue directories with their owners, then checks the configuration.
postfix -c "$pf/etc" set-permissions >"$tmp/pf-setup.log" 2>&1 ||
	die "postfix set-permissions failed: $(cat "$tmp/pf-setup.log")"
postfix -c "$pf/etc" check >>"$tmp/pf-setup.log" 2>&1 ||
	die "postfix check failed: $(cat "$tmp/pf-setup.log")"
pf_started=1
postfix -c "$pf/etc" start >>"$tmp/pf-setup.log" 2>&1 ||
	die "postfix start failed: $(cat "$tmp/pf-setup.log"; cat "$pf/maillog" 2>/dev/null)"
for _ in $(seq 300); do
	port_busy "$PF_PORT" && break
	sleep 0.1
done
port_busy "$PF_PORT" || die "Postfix does not listen on 127.0.0.1:$PF_PORT: $(cat "$pf/maillog" 2>/dev/null)"

maildir_count() { find "$pf/mail/bench/new" -type f 2>/dev/null | wc -l; }
# Waits until the Maildir holds $1 messages.
wait_delivered() {
	local want=$1 n=0
	for _ in $(seq $((DELIVERY_TIMEOUT * 5))); do
		n=$(maildir_count)
		[ "$n" -ge "$want" ] && break
		sleep 0.2
	done
	[ "$n" -eq "$want" ] ||
		die "Postfix delivered $n messages to the Maildir, expected $want (see $pf/maillog; KEEP_TMP=1 keeps it)"
}

# --- 5. the runs -----------------------------------------------------------------
field() { sed -E "s|.*[ :]([0-9.]+) $1.*|\1|" <<<"$2"; }
check_line() {
	local name=$1 line=$2 sent errors
	sent=$(sed -E 's/^sent ([0-9]+) messages.*/\1/' <<<"$line")
	errors=$(sed -E 's/.*errors ([0-9]+).*/\1/' <<<"$line")
	[ "$sent" = "$MESSAGES" ] && [ "$errors" = 0 ] || die "$name: $line"
}

# CPU time (clock ticks: user + system, own + reaped children) of processes.
proc_ticks() {
	local pid t=0 st
	for pid in "$@"; do
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		st=${st##*) }
		# shellcheck disable=SC2086
		set -- $st
		t=$((t + ${12} + ${13} + ${14} + ${15}))
	done
	echo "$t"
}
mes_ticks() { proc_ticks "$mes_pid"; }
# Every process of the Postfix instance: the master's session.
pf_ticks() {
	local master
	master=$(tr -dc 0-9 <"$pf/spool/pid/master.pid")
	# shellcheck disable=SC2046
	proc_ticks $(pgrep -s "$master")
}
# The load tool runs in a subshell of this one: its time lands in our children's.
load_ticks() { proc_ticks $$; }
clk_tck=$(getconf CLK_TCK)
# Milliseconds of CPU per message from a tick difference.
per_msg() { awk -v t="$1" -v hz="$clk_tck" -v n="$MESSAGES" 'BEGIN { printf "%.2f", t * 1000 / hz / n }'; }

say "warm-up: $WARMUP messages to each"
load MES "$WARMUP" warm >/dev/null
load Postfix "$WARMUP" warm >/dev/null
wait_delivered "$WARMUP"

say "MES: $MESSAGES messages, $CONNECTIONS connections, $SIZE octets"
s0=$(mes_ticks)
l0=$(load_ticks)
mes_line=$(load MES "$MESSAGES" mes)
mes_cpu=$(per_msg $(($(mes_ticks) - s0)))
mes_load_cpu=$(per_msg $(($(load_ticks) - l0)))
check_line MES "$mes_line"
if command -v sqlite3 >/dev/null; then
	# MES answers 250 only after the commit: every message is already in the database.
	stored=$(sqlite3 "$mes/data/mes.db" 'SELECT COUNT(*) FROM mailbox_messages')
	[ "$stored" -eq $((WARMUP + MESSAGES)) ] ||
		die "MES stored $stored messages, expected $((WARMUP + MESSAGES))"
fi

say "Postfix: $MESSAGES messages, $CONNECTIONS connections, $SIZE octets"
s0=$(pf_ticks)
l0=$(load_ticks)
pf_line=$(load Postfix "$MESSAGES" postfix)
pf_load_cpu=$(per_msg $(($(load_ticks) - l0)))
pf_cpu_accept=$(per_msg $(($(pf_ticks) - s0)))
check_line Postfix "$pf_line"
t0=$SECONDS
wait_delivered $((WARMUP + MESSAGES))
drain=$((SECONDS - t0))
pf_cpu=$(per_msg $(($(pf_ticks) - s0)))

# --- 6. report -------------------------------------------------------------------
mes_rate=$(field msg/s "$mes_line")
pf_rate=$(field msg/s "$pf_line")
ratio=$(awk -v a="$mes_rate" -v b="$pf_rate" 'BEGIN { printf "%.2f", a / b }')
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
fs=$(findmnt -n -o FSTYPE,SOURCE,OPTIONS --target "$tmp" 2>/dev/null || df -T "$tmp" | tail -n1)
cat <<EOF

machine:  $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -r)
tmp:      $tmp on $fs
load:     $CONNECTIONS connections, $MESSAGES messages of $SIZE octets, STARTTLS, client certificate; warm-up $WARMUP
mes:      $("$MES_BIN" --version 2>/dev/null || echo mes), $MES_BIN, source $MES_REV
postfix:  $PF_VERSION (Debian package)${POSTFIX_EXTRA:+, with POSTFIX_EXTRA: $POSTFIX_EXTRA}

MES       $mes_line
Postfix   $pf_line
          (Postfix's Maildir held all $((WARMUP + MESSAGES)) messages ${drain} s after its last 250)
ratio MES/Postfix: $ratio (msg/s)

CPU per message (ms, user + system):
  MES server      $mes_cpu   (everything: TLS, SMTP, parse, SQLite commit)
  Postfix server  $pf_cpu_accept at its last 250, $pf_cpu once the Maildir held every message
  load tool       $mes_load_cpu against MES, $pf_load_cpu against Postfix (it shares the $(nproc) CPUs)
EOF
