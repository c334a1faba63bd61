#!/usr/bin/env bash
# One quick round of wallet transfers against a fresh plazad, with what each thread and the machine spent on it: the
# probe behind docs/PERFORMANCE.md's A/B comparisons (bench/wallet.sh gives the recorded figures beside PostgreSQL).
# usage: bench/wallet/round.sh [BUILD]   (BUILD: a directory with a release plazad, default build-wbench)
#   env: CONNS=800 AUTO=1 (0: transfers stay pending) SECONDS_=8 PORT=18311
#        PERF=1 THREAD=pz-writer PERF_ARGS=: perf record -g $PERF_ARGS that thread for 4 s into $PERF_OUT
#        (default /tmp/wallet-round.perf)
# Prints one line over the middle of the round (from its 2nd second, SECONDS_-2 long): the WAL and socket bytes plazad
# wrote per transfer (wchar), jobs per fsync and the fsync's mean time, records per send log append and its mean
# time (/metrics), the machine's busy share (/proc/stat), wrk's rate, and CPU µs per transfer by thread; then the
# WAL's size at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build-wbench}
CONNS=${CONNS:-800}
AUTO=${AUTO:-1}
SECS=${SECONDS_:-8}
PORT=${PORT:-18311}
. bench/wallet/probe.sh
# shellcheck disable=SC2119 # no command words: plazad itself
probe_start
bench_wait_plazad "$PORT" "$pid" "$D/log"
probe_users "$AUTO"
metrics() { curl -fsS "http://127.0.0.1:$PORT/metrics"; }
commits() { metrics | grep -E '^plaza_(commit_(batch_jobs|fsync_seconds)_(sum|count)|sendlog_(records|appends|append_seconds)_total) '; }
wchar() { awk '/^wchar/ {print $2}' "/proc/$pid/io"; }
snap() { # CPU ticks by thread, 201s, bytes written, commit metrics, the machine's CPU line
  bench_cpu_ticks "$pid" loop
  bench_cpu_ticks "$w" wrk all
  echo "made $(bench_transfers_made "$PORT")"
  echo "wchar $(wchar)"
  commits
  head -1 /proc/stat
}
wrk -t2 -c"$CONNS" -d$((SECS + 2))s -s bench/wallet/transfers.lua "http://127.0.0.1:$PORT" -- \
  "$D/users" "$SECS" r "$PIN" 2 >"$D/wrk.out" 2>&1 &
w=$!
sleep 1
a=$(snap)
if [ "${PERF:-0}" = 1 ]; then
  tid=$(grep -l "${THREAD:-pz-writer}" /proc/"$pid"/task/*/comm | head -1 | xargs dirname | xargs basename)
  # shellcheck disable=SC2086 # PERF_ARGS is words: -e sched:sched_switch
  perf record ${PERF_ARGS:-} -g -t "$tid" -o "${PERF_OUT:-/tmp/wallet-round.perf}" -- sleep 4 >/dev/null 2>&1
  sleep $((SECS - 6))
else
  sleep $((SECS - 2))
fi
b=$(snap)
wait "$w"
field() { awk -v k="$1" '$1 == k {print $2}' <<<"$2"; }
n=$(($(field made "$b") - $(field made "$a")))
[ "$n" -gt 0 ] || { echo "bench: no transfer was made: $(cat "$D/wrk.out")" >&2; exit 1; }
ticks() { grep -v -E '^(made|wchar|plaza_|cpu )' <<<"$1"; }
cpu=$(bench_cpu_per "$(ticks "$a")" "$(ticks "$b")" "$n")
# Write jobs per commit and its fsync (transfers the writer makes), records per send log append and its write and
# fdatasync (transfers made in the send log): "-" where there were none.
commit=$(paste <(grep '^plaza_' <<<"$a") <(grep '^plaza_' <<<"$b") | awk '{d[$1] = $4 - $2}
  function per(a, b, f) { return b > 0 ? sprintf(f, a / b) : "-" }
  END {
  printf "jobs/fsync=%s fsync=%sms log/append=%s append=%sms",
    per(d["plaza_commit_batch_jobs_sum"], d["plaza_commit_batch_jobs_count"], "%.0f"),
    per(1000 * d["plaza_commit_fsync_seconds_sum"], d["plaza_commit_fsync_seconds_count"], "%.2f"),
    per(d["plaza_sendlog_records_total"], d["plaza_sendlog_appends_total"], "%.0f"),
    per(1000 * d["plaza_sendlog_append_seconds_total"], d["plaza_sendlog_appends_total"], "%.2f") }')
busy=$(paste <(grep '^cpu ' <<<"$a") <(grep '^cpu ' <<<"$b") | awk '{
  busy = ($13 + $14 + $15 + $18 + $19) - ($2 + $3 + $4 + $7 + $8); idle = ($16 + $17) - ($5 + $6)
  printf "busy=%.0f%%", 100 * busy / (busy + idle) }')
kb=$((($(field wchar "$b") - $(field wchar "$a")) / n / 1024))
echo "written=${kb}KB/transfer $commit $busy $(grep -o 'rate=[0-9]*' "$D/wrk.out") $cpu"
echo "wal=$(($(stat -c %s "$D/data/plaza.db-wal") / 1048576))MB"
