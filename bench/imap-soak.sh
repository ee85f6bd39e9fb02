#!/usr/bin/env bash
# MES alone under a long IMAP load, for its memory (issue 17: "server memory
# after a 10-minute run bounded"): ROUNDS rounds of the `sessions` then the
# `commands` workload of `mes bench imap`, printing after each the rate and
# the server's memory: VmRSS, RssAnon (its own heap), RssFile (pages of the
# SQLite file it reads through a memory map: the kernel's page cache, shared
# and reclaimable) and VmHWM (the peak).
#
#   MES_BIN=target/release/mes bench/imap-soak.sh
#
# Environment: MES_BIN (required), ROUNDS (10), SECONDS_EACH (30),
# CLIENTS (10), MESSAGES (10000), PORT (2995), PROFILES ("sessions commands":
# each round runs these in turn; `sessions` appends and expunges, so the
# folder keeps its size, while `commands` only appends and grows it by a
# quarter of its operations).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
die() {
	printf 'imap-soak: %s\n' "$*" >&2
	exit 1
}
MES_BIN=${MES_BIN:?set MES_BIN to a release build of mes}
ROUNDS=${ROUNDS:-10} SECONDS_EACH=${SECONDS_EACH:-30} CLIENTS=${CLIENTS:-10}
MESSAGES=${MESSAGES:-10000} PORT=${PORT:-2995} PROFILES=${PROFILES:-sessions commands}
tmp=$(mktemp -d -t mes-soak.XXXXXX)
mes_pid=
cleanup() {
	mes_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
mes=$tmp/mes
password="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export MES_BENCH_PASSWORD=$password
mes_instance "$mes" imaps "$PORT"
mes_start "$tmp/out" "$tmp/err"
load() {
	"$MES_BIN" bench imap --server "127.0.0.1:$PORT" --ca "$mes/certs/ca.pem" \
		--user bench@hopital-a.mes.test --messages "$MESSAGES" "$@"
}
memory() {
	awk '/^(VmRSS|RssAnon|RssFile|VmHWM):/ { printf "%s %d MiB  ", $1, $2 / 1024 }' "/proc/$mes_pid/status"
}
load --clients 0 --duration 0 | tail -1
echo "start: $(memory)"
for round in $(seq "$ROUNDS"); do
	for profile in $PROFILES; do
		rate=$(load --no-header-fetch --profile "$profile" --clients "$CLIENTS" \
			--duration "$SECONDS_EACH" | grep -o '[0-9]* ops/s' | tail -1)
		echo "round $round $profile: $rate  $(memory)"
	done
done
