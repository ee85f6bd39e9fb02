#!/usr/bin/env bash
# Invitations to a patient through SMTP submission, each indexed into the
# patient's agenda in the delivery transaction (issue 19): MES alone, SQLite,
# the load tool's `--invitation` messages (an iMIP REQUEST each, with an RRULE).
#
#   MES_BIN=target/release/mes bench/invitations.sh
#
# Environment: MES_BIN (required), MESSAGES (5000), CONNECTIONS (16), PORT (2465).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
die() {
	printf 'invitations: %s\n' "$*" >&2
	exit 1
}
MES_BIN=${MES_BIN:?set MES_BIN to a release build of mes}
case $MES_BIN in */debug/*) echo "invitations: warning: $MES_BIN is a debug build" >&2 ;; esac
MESSAGES=${MESSAGES:-5000} CONNECTIONS=${CONNECTIONS:-16} PORT=${PORT:-2465}
PATIENT=279035121518989@patient.mes.test
tmp=$(mktemp -d -t mes-invitations.XXXXXX)
mes_pid=
cleanup() {
	mes_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
mes=$tmp/mes
password="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
mes_instance "$mes" submissions "$PORT"
printf '%s\n' "$password" |
	"$MES_BIN" --config "$cfg" user add "$PATIENT" --kind patient --name Patient --password-stdin >/dev/null
mes_start "$tmp/out" "$tmp/err"
export MES_BENCH_PASSWORD=$password
load() {
	"$MES_BIN" bench smtp --server "127.0.0.1:$PORT" --implicit-tls --ca "$mes/certs/ca.pem" \
		--user bench@hopital-a.mes.test --from bench@hopital-a.mes.test --to "$PATIENT" \
		--connections "$CONNECTIONS" --messages "$1" --invitation --run-id "$2"
}
load 300 warmup >/dev/null
ticks() { awk '{print $14 + $15}' "/proc/$mes_pid/stat"; }
before=$(ticks)
load "$MESSAGES" run
after=$(ticks)
hz=$(getconf CLK_TCK)
awk -v t=$((after - before)) -v hz="$hz" -v n="$MESSAGES" \
	'BEGIN { printf "server CPU per invitation: %.2f ms\n", t / hz * 1000 / n }'
indexed=$(sqlite3 "$mes/data/mes.db" "SELECT COUNT(*) FROM appointments" 2>/dev/null || echo "?")
echo "appointments in the patient's agenda: $indexed (of $((MESSAGES + 300)) sent)"
