#!/usr/bin/env bash
# GET /healthz on plazad against nginx serving a static file, with wrk, side by side in one run; prints medians and the ratio.
# usage: bench/http.sh   (env: ROUNDS=3 DURATION=10 CONNECTIONS=100 THREADS=2 PLAZAD=build/plazad)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-100}
THREADS=${THREADS:-2}
PLAZAD=${PLAZAD:-build/plazad}
PZ_PORT=${PZ_PORT:-18080}
NGX_PORT=${NGX_PORT:-18081}

for tool in wrk nginx "$PLAZAD"; do
  command -v "$tool" >/dev/null || [ -x "$tool" ] || { echo "bench: $tool not found (make bench installs it)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
bench_ports_free "PZ_PORT / NGX_PORT" "$PZ_PORT" "$NGX_PORT"

tmp=$(mktemp -d)
# nginx's workers run as nobody when it is started as root: mktemp's 0700 would answer every request with 404
# (and a line in the error log), not the file.
chmod 755 "$tmp"
cleanup() {
  [ -n "${pz_pid:-}" ] && kill "$pz_pid" 2>/dev/null && wait "$pz_pid" 2>/dev/null || true
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The same body as /healthz, so both servers write the same number of bytes.
printf '{"status":"ok"}' >"$tmp/healthz"
cat >"$tmp/nginx.conf" <<NGX
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # As a site tuned for small static files would serve them: the file's descriptor kept open, sent by sendfile.
  open_file_cache max=16 inactive=60s;
  open_file_cache_valid 60s;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:$NGX_PORT;
    root $tmp;
    default_type application/json;
    location = /healthz { try_files /healthz =404; }
  }
}
NGX
"$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp"
"$PLAZAD" --listen "127.0.0.1:$PZ_PORT" --data-dir "$tmp/data" --web-dir web --log-level warn 2>"$tmp/plazad.log" &
pz_pid=$!
bench_wait_plazad "$PZ_PORT" "$pz_pid" "$tmp/plazad.log"
curl -fsS --retry 10 --retry-delay 1 --retry-connrefused -o /dev/null "http://127.0.0.1:$NGX_PORT/healthz" ||
  { echo "bench: nginx did not start" >&2; cat "$tmp/nginx-error.log" >&2; exit 1; }

rate() { # url -> requests per second; every answer must be a 200 with the body, or the rate means nothing
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$1" >"$tmp/wrk.out"
  if grep -q 'Non-2xx' "$tmp/wrk.out"; then
    echo "bench: $1 answered with errors:" >&2
    cat "$tmp/wrk.out" >&2
    exit 1
  fi
  awk '/^Requests\/sec:/ {print int($2)}' "$tmp/wrk.out"
}

echo "bench/http.sh: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds each, alternating; $(nproc) cores"
pz_rates=() ngx_rates=()
for r in $(seq "$ROUNDS"); do
  p=$(rate "http://127.0.0.1:$PZ_PORT/healthz"); pz_rates+=("$p")
  n=$(rate "http://127.0.0.1:$NGX_PORT/healthz"); ngx_rates+=("$n")
  printf 'round %d: plazad %8d req/s   nginx %8d req/s\n' "$r" "$p" "$n"
done
pz_med=$(printf '%s\n' "${pz_rates[@]}" | median)
ngx_med=$(printf '%s\n' "${ngx_rates[@]}" | median)
printf 'median: plazad %d req/s, nginx (2 workers, static file) %d req/s, ratio plazad/nginx %.2f\n' \
  "$pz_med" "$ngx_med" "$(echo "$pz_med $ngx_med" | awk '{print $1/$2}')"
