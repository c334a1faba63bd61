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

# Waits up to 10 s for plazad (pid PID, log LOG) to answer /healthz on 127.0.0.1:PORT; exits with its log if not.
# usage: bench_wait_plazad PORT PID LOG
bench_wait_plazad() {
  local _
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  if ! kill -0 "$2" 2>/dev/null || ! curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1; then
    echo "bench: plazad did not start" >&2
    cat "$3" >&2
    exit 1
  fi
}

# The median of the numbers on stdin, one per line (the mean of the middle two for an even count, as an integer).
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# The value of KEY in a "key=value key=value" line: kv LINE KEY
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
