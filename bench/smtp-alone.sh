#!/usr/bin/env bash
# MES alone under the SMTP load of compare-postfix.sh, to measure and profile
# the server by itself: prints the load tool's line and the server's CPU per
# message, and records a perf profile of the server when PERF is set.
#
#   MES_BIN=target/release/mes bench/smtp-alone.sh
#   PERF="-F 1999" MES_BIN=target/release/mes bench/smtp-alone.sh   # then: perf report -i perf.data
#
# Environment: MES_BIN (required), MESSAGES (5000), CONNECTIONS (16), SIZE (4096),
# PORT (2725), PERF (perf record options; the profile goes to ./perf.data).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
say() { printf '%s\n' "$*"; }
die() {
	printf 'smtp-alone: %s\n' "$*" >&2
	exit 1
}
B=${MES_BIN:?set MES_BIN to a release build of mes}
MESSAGES=${MESSAGES:-5000} CONNECTIONS=${CONNECTIONS:-16} SIZE=${SIZE:-4096} PORT=${PORT:-2725}
tmp=$(mktemp -d -t mes-alone.XXXXXX)
mes_pid=
cleanup() {
	mes_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
mes=$tmp/mes
password="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
mes_instance "$mes" mx "$PORT"
mes_start "$tmp/out" "$tmp/err"
load() {
	"$B" bench smtp --server "127.0.0.1:$PORT" --ca "$mes/certs/ca.pem" \
		--cert "$mes/certs/operator2.pem" --key "$mes/certs/operator2.key" \
		--from load@operateur2.mes.test --to bench@hopital-a.mes.test \
		--connections "$CONNECTIONS" --messages "$1" --size "$SIZE" --run-id "$2"
}
load 300 warmup >/dev/null
perf_pid=
if [ -n "${PERF:-}" ]; then
	# shellcheck disable=SC2086
	perf record $PERF -o perf.data -p "$mes_pid" 2>/dev/null &
	perf_pid=$!
	sleep 0.5
fi
ticks() { awk '{print $14 + $15}' "/proc/$mes_pid/stat"; }
before=$(ticks)
load "$MESSAGES" run
after=$(ticks)
[ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" || true; }
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v n="$MESSAGES" \
	'BEGIN { printf "server CPU per message: %.2f ms\n", t * 1000 / hz / n }'
