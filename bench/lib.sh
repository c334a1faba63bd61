# Shared by the bench/*.sh scripts (sourced, not run): port checks, waiting for a server, and the figures' helpers.
# shellcheck shell=bash

# Exits unless every port is free on 127.0.0.1: a port in use would send the load to someone else's server.
# usage: bench_ports_free HINT PORT...   (HINT names the variables that move them, e.g. "PZ_PORT / PG_PORT")
bench_ports_free() {
  local hint=$1 port
  shift
  for port in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "bench: 127.0.0.1:$port is in use (set $hint)" >&2
      exit 1
    fi
  done
}

# Waits up to SECONDS (default 10) for plazad (pid PID, log LOG) to answer /healthz on 127.0.0.1:PORT; exits with its
# log if not. usage: bench_wait_plazad PORT PID LOG [SECONDS]
bench_wait_plazad() {
  local _
  for _ in $(seq $((${4:-10} * 10))); do
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! kill -0 "$2" 2>/dev/null || ! curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; then
    echo "bench: plazad did not start" >&2
    cat "$3" >&2
    exit 1
  fi
}

# The 201s that plazad on 127.0.0.1:PORT has answered to POST /v1/wallet/transfers so far.
# usage: bench_transfers_made PORT
bench_transfers_made() {
  curl -fsS "http://127.0.0.1:$1/metrics" |
    awk '/^plaza_http_requests_total\{method="POST",route="\/v1\/wallet\/transfers",status="201"\}/ {print $2}'
}

# The median of the numbers on stdin, one per line (the mean of the middle two for an even count, as an integer).
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# The value of KEY in a "key=value key=value" line: kv LINE KEY
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }

# CPU time so far, in clock ticks (user + system), of the threads of process PID, summed by thread name, one
# "name ticks" line each; the main thread is named MAIN (default "main"), and with ALL every thread is counted
# under that one name. usage: bench_cpu_ticks PID [MAIN [ALL]]
bench_cpu_ticks() {
  local t name
  for t in /proc/"$1"/task/*; do
    name=$(cat "$t/comm" 2>/dev/null) || continue
    { [ "${t##*/}" = "$1" ] || [ -n "${3:-}" ]; } && name=${2:-main}
    # The fields after the name's ")" are fixed: utime and stime are the 12th and 13th of them.
    sed 's/.*) //' "$t/stat" 2>/dev/null | awk -v n="$name" '{print n, $12 + $13}'
  done | awk '{s[$1] += $2} END {for (k in s) print k, s[k]}'
}

# Microseconds of CPU per operation between two bench_cpu_ticks snapshots, per thread name (those of 0.1 µs or
# more, largest first), as "name=µs ..." on one line. usage: bench_cpu_per BEFORE AFTER OPERATIONS
bench_cpu_per() {
  local hz
  hz=$(getconf CLK_TCK)
  join <(sort <<<"$1") <(sort <<<"$2") | awk -v n="$3" -v hz="$hz" \
    'n > 0 { us = ($3 - $2) * 1e6 / hz / n; if (us >= 0.1) printf "%s=%.1f\n", $1, us }' |
    sort -t= -k2 -rn | paste -sd' '
}
