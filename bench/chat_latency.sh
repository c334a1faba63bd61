#!/usr/bin/env bash
# Delivery latency of paced 1:1 sends at each rate, with the CPU each of plazad's threads took per message: the
# method of docs/PERFORMANCE.md's latency tables ("lat2.sh method"). One fresh release server for the whole run.
# A diagnostic beside bench/chat.sh, whose run holds the side-by-side comparison with mosquitto.
# usage: bench/chat_latency.sh   (env: RATES="12500 25000" SECONDS_PER_RATE=8 WARM=20000 BUILD=build-bench
#                                  PZ_PORT=18190 NO_BUILD=1 to use the build as it is; PZ_ENV="NAME=value ..." for plazad)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BUILD=${BUILD:-build-bench}
RATES=${RATES:-"12500 25000"}
SECS=${SECONDS_PER_RATE:-8}
WARM=${WARM:-20000}
PZ_PORT=${PZ_PORT:-18190}

if [ "${NO_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j 2 --target plazad bench_chat >/dev/null
fi
bench_ports_free PZ_PORT "$PZ_PORT"

tmp=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # PZ_ENV is a list of words
env ${PZ_ENV:-} "$BUILD/plazad" --listen "127.0.0.1:$PZ_PORT" --data-dir "$tmp/data" --web-dir web --log-level warn \
  --msg-rate 0 2>"$tmp/plazad.log" &
pid=$!
bench_wait_plazad "$PZ_PORT" "$pid" "$tmp/plazad.log"

bc() { "$BUILD/bench_chat" "$1" --server "127.0.0.1:$PZ_PORT" --state "$tmp/state" "${@:2}"; }
bc setup --users 202 --pairs 100 >&2
bc throughput --pairs 100 --window 32 --messages "$WARM" >/dev/null # warm-up: caches, the log's first laps

# Per thread: tid, name, user and system ticks, bytes written.
snap() {
  for t in /proc/"$pid"/task/*; do
    echo "$(basename "$t") $(cat "$t/comm") $(awk '{print $14, $15}' "$t/stat") $(awk '/^wchar/{print $2}' "$t/io")"
  done
}
for r in $RATES; do
  snap >"$tmp/a"
  t0=$(date +%s.%N)
  bc latency --pairs 100 --rate "$r" --seconds "$SECS" | sed 's/.*size=64 //'
  t1=$(date +%s.%N)
  snap >"$tmp/b"
  join "$tmp/a" "$tmp/b" | awk -v m=$((r * SECS)) -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" '
    { u = $7 - $3; s = $8 - $4; if (u + s > 0)
        printf "  %-14s cpu %5.1f%% (user %5.1f us, sys %5.1f us per message), %6.0f bytes written per message\n",
          $2, (u + s) / hz / (t1 - t0) * 100, u * 1e6 / hz / m, s * 1e6 / hz / m, ($9 - $5) / m }'
done
