# Shared by the benchmark scripts (sourced, not run): a throwaway MES instance
# with only the listeners a script wants, started and stopped the same way.

# mes_instance DIR LISTENER PORT: `mes init` in DIR, only LISTENER (mx, imaps…)
# left on on 127.0.0.1:PORT, and the account bench@hopital-a.mes.test with the
# password in $password. Sets `cfg`.
mes_instance() {
	local dir=$1 listener=$2 port=$3
	"$MES_BIN" init "$dir" --force >/dev/null
	cfg=$dir/mes.toml
	sed -i -E \
		-e "s|^$listener = \"127\.0\.0\.1:[0-9]+\"|$listener = \"127.0.0.1:$port\"|" \
		-e "/^(mx|submissions?|imaps?|https) = /{/^$listener = /!d}" \
		"$cfg"
	grep -q "^$listener = \"127.0.0.1:$port\"" "$cfg" || die "could not set the $listener listener in $cfg"
	printf '%s\n' "$password" |
		"$MES_BIN" --config "$cfg" user add bench@hopital-a.mes.test \
			--kind professional --name Bench --password-stdin >/dev/null
}

# mes_start OUT ERR: `mes serve` on $cfg, waits until it is ready. Sets `mes_pid`.
mes_start() {
	local out=$1 err=$2
	RUST_LOG=warn "$MES_BIN" serve --config "$cfg" >"$out" 2>"$err" &
	mes_pid=$!
	for _ in $(seq 600); do
		grep -qx 'mes: ready' "$out" 2>/dev/null && return 0
		kill -0 "$mes_pid" 2>/dev/null || die "mes serve exited: $(cat "$err")"
		sleep 0.1
	done
	die "mes serve not ready after 60 s: $(cat "$err")"
}

# mes_stop: SIGTERM, then SIGKILL after 10 s.
mes_stop() {
	if [ -n "${mes_pid:-}" ] && kill -0 "$mes_pid" 2>/dev/null; then
		kill -TERM "$mes_pid"
		for _ in $(seq 100); do
			kill -0 "$mes_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$mes_pid" 2>/dev/null || true
		wait "$mes_pid" 2>/dev/null || true
	fi
}
