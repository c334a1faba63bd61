#!/usr/bin/env bash
# Instructions the writer thread spends per transfer, under callgrind: a count that does not depend on the machine's
# load, for comparing two builds of one change (docs/PERFORMANCE.md).
# usage: bench/wallet/callgrind.sh [BUILD] [OUT]   (BUILD default build-wbench; OUT: keep the writer's callgrind file
#   there, for callgrind_annotate)   env: PORT=18313 SECONDS_=20
# Makes 100 users (auto-accept on) against a native plazad, restarts it under valgrind, runs wrk with 100
# connections for SECONDS_ s, and divides the writer thread's instructions over that run (the users were made before
# it) by the 201s.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build-wbench}
OUT=${2:-}
PORT=${PORT:-18313}
SECS=${SECONDS_:-20}
. bench/wallet/probe.sh
# shellcheck disable=SC2119 # no command words: plazad itself
probe_start
bench_wait_plazad "$PORT" "$pid" "$D/log"
probe_users 1
probe_stop
probe_start valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$D/cg.out"
bench_wait_plazad "$PORT" "$pid" "$D/log" 60 # valgrind starts slowly
wrk -t1 -c100 -d$((SECS + 5))s -s bench/wallet/transfers.lua "http://127.0.0.1:$PORT" -- "$D/users" "$SECS" c "$PIN" 1 \
  >"$D/wrk.out" 2>&1
n=$(bench_transfers_made "$PORT")
probe_stop
f=$(grep -l "run_batch" "$D"/cg.out-* | head -1)
total=$(grep -E '^(summary|totals):' "$f" | head -1 | awk '{print $2}')
[ "${n:-0}" -gt 0 ] || { echo "bench: no transfer was made: $(cat "$D/wrk.out")" >&2; exit 1; }
echo "transfers=$n writer_instructions=$total per_transfer=$((total / n))"
if [ -n "$OUT" ]; then cp "$f" "$OUT"; fi
