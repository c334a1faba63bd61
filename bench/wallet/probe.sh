# Sourced by bench/wallet/round.sh and callgrind.sh: a plazad on a fresh data directory, as the wallet's probes run it.
# Needs B (the build directory) and PORT; sets D (a temporary directory, removed on exit), PIN and pid.
# shellcheck shell=bash
. bench/lib.sh
: "${B:?}" "${PORT:?}"
PIN=482913
D=$(mktemp -d)
pid=
probe_cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$D"
}
trap probe_cleanup EXIT

# Starts B's plazad without daily limits, behind the command words given (valgrind ...), if any; sets pid.
# usage: probe_start [WORD...]
probe_start() {
  setsid "$@" "$B/plazad" --listen "127.0.0.1:$PORT" --data-dir "$D/data" --web-dir web --log-level warn \
    --daily-limits 0:0 2>>"$D/log" &
  pid=$!
}

# Stops the plazad probe_start started.
probe_stop() {
  kill "$pid"
  wait "$pid" || true
  pid=
}

# 100 users with PIN and money, into $D/users; AUTO 1 turns their auto-accept on. usage: probe_users AUTO
probe_users() {
  bench/wallet/setup.sh "http://127.0.0.1:$PORT" 100 "$D/users" "$PIN" "$1" >/dev/null
}
