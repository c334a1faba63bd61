#!/usr/bin/env bash
# Durable wallet transfers per second on plazad (HTTP, PIN checked) beside a PostgreSQL 15 baseline in one run, then
# `plazad ledger verify` over a ledger of many transfers; prints a table.
# usage: bench/wallet.sh   (env: ROUNDS=3 DURATION=10 GRACE=2 THREADS=2 USERS=100 CONNECTIONS="100 200 400"
#                          PG_CLIENTS="8 16 32 64" PG_ACCOUNTS=100000 AUTO_ACCEPT=1 VERIFY_TRANSFERS=10000000
#                          VERIFY_USERS=1000 VERIFY_RUNS=3 LEDGER_DIR= BUILD=build-wbench PZ_PORT=18290 PG_PORT=15492
#                          NO_BUILD=1 to use BUILD's plazad and bench_wallet as they are)
# LEDGER_DIR keeps the large ledger there (built if it holds none) rather than in a temporary directory: building
# 10 million transfers (10.5 GiB) takes about 25 minutes on two busy cores. Verify runs once with the ledger's file
# out of the page cache, then VERIFY_RUNS times with it in memory.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
GRACE=${GRACE:-2}
THREADS=${THREADS:-2}
USERS=${USERS:-100}
CONNECTIONS=${CONNECTIONS:-100 200 400}
PG_CLIENTS=${PG_CLIENTS:-8 16 32 64}
PG_ACCOUNTS=${PG_ACCOUNTS:-100000}
AUTO_ACCEPT=${AUTO_ACCEPT:-1}
VERIFY_TRANSFERS=${VERIFY_TRANSFERS:-10000000}
VERIFY_USERS=${VERIFY_USERS:-1000}
VERIFY_RUNS=${VERIFY_RUNS:-3}
LEDGER_DIR=${LEDGER_DIR:-}
BUILD=${BUILD:-build-wbench}
PZ_PORT=${PZ_PORT:-18290}
PG_PORT=${PG_PORT:-15492}
PIN=482913

scripts/deps.sh build bench

# Debian's server binaries live outside PATH; pgbench and psql are taken from the same version.
pg_bin=""
for d in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
  [ -x "$d/initdb" ] && [ -x "$d/pgbench" ] && { pg_bin=$d; break; }
done
[ -n "$pg_bin" ] || { echo "bench: no PostgreSQL server found (scripts/deps.sh bench installs it)" >&2; exit 1; }
bench_ports_free "PZ_PORT / PG_PORT" "$PZ_PORT" "$PG_PORT"

# A release build of the server and of the ledger tool, in a build directory of their own.
if [ "${NO_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$BUILD" -j 2 --target plazad bench_wallet >/dev/null
fi
PLAZAD=$BUILD/plazad
BW=$BUILD/bench_wallet

tmp=$(mktemp -d)
pgdir=$(mktemp -d) # its own: PostgreSQL refuses to run as root, and its user must own the directory
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$pgdir"
pg_started=""
cleanup() {
  [ -n "${pz_pid:-}" ] && kill "$pz_pid" 2>/dev/null && wait "$pz_pid" 2>/dev/null || true
  [ -n "$pg_started" ] && as_pg "$pg_bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp" "$pgdir"
}
trap cleanup EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load)

# ---- plazad and its users ----

# Its own session, as the PostgreSQL server makes for itself: the kernel shares the CPU between sessions
# (autogroups) first, and the machine is shared with other work, so the two servers get the same share.
# No daily limit ("0:0"): a hundred users send far more than 500.00 a day here. Every debit is still counted against
# the day, as in production.
setsid "$PLAZAD" --listen "127.0.0.1:$PZ_PORT" --data-dir "$tmp/data" --web-dir web --log-level warn \
  --daily-limits 0:0 2>"$tmp/plazad.log" &
pz_pid=$!
bench_wait_plazad "$PZ_PORT" "$pz_pid" "$tmp/plazad.log"
t0=$(date +%s)
bench/wallet/setup.sh "http://127.0.0.1:$PZ_PORT" "$USERS" "$tmp/users" "$PIN" "$AUTO_ACCEPT"
echo "bench/wallet.sh: $USERS users signed up, PIN set, topped up$([ "$AUTO_ACCEPT" = 1 ] && echo ", auto-accept on") in $(($(date +%s) - t0)) s"

# ---- the PostgreSQL cluster ----

as_pg "$pg_bin/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 --locale=C >"$pgdir/initdb.log"
as_pg "$pg_bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$pgdir -c max_connections=300" \
  start >/dev/null
pg_started=1
psql_() { "$pg_bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -X -q -v ON_ERROR_STOP=1 "$@" postgres; }
psql_ -v naccounts="$PG_ACCOUNTS" -f bench/wallet/pg_schema.sql
pg_settings=$(psql_ -Atc "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
  WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'commit_delay')")
pg_money=$(psql_ -Atc "SELECT sum(balance) FROM accounts")

# ---- rounds: every Plaza connection count, then every PostgreSQL client count, ROUNDS times ----

plaza_round() { # connections round -> "rate ok other codes cpu..."
  local out line wrk_pid cpu="" a b n_a n_b
  wrk -t"$THREADS" -c"$1" -d"$((DURATION + GRACE))s" -s bench/wallet/transfers.lua \
    "http://127.0.0.1:$PZ_PORT" -- "$tmp/users" "$DURATION" "r$2c$1" "$PIN" "$THREADS" >"$tmp/wrk.out" 2>&1 &
  wrk_pid=$!
  # The CPU each thread spends per transfer, over the middle of the round: the first second (connections
  # opening) and the last (then the drain, which sends /healthz as fast as it is answered) are left out.
  if [ "$DURATION" -ge 4 ]; then
    sleep 1
    a=$(bench_cpu_ticks "$pz_pid" loop; bench_cpu_ticks "$wrk_pid" wrk all) n_a=$(bench_transfers_made "$PZ_PORT")
    sleep $((DURATION - 2))
    b=$(bench_cpu_ticks "$pz_pid" loop; bench_cpu_ticks "$wrk_pid" wrk all) n_b=$(bench_transfers_made "$PZ_PORT")
    cpu=$(bench_cpu_per "$a" "$b" $((n_b - n_a)))
  fi
  wait "$wrk_pid" || { echo "bench: wrk failed: $(cat "$tmp/wrk.out")" >&2; exit 1; }
  out=$(cat "$tmp/wrk.out")
  line=$(grep '^wallet_round ' <<<"$out") || { echo "bench: wrk printed no result: $out" >&2; exit 1; }
  echo "$(kv "$line" rate) $(kv "$line" ok) $(kv "$line" other) $(kv "$line" codes) $cpu"
}
pg_round() { # clients -> "tps processed"
  local out
  out=$("$pg_bin/pgbench" -h 127.0.0.1 -p "$PG_PORT" -U postgres -n -M prepared -c "$1" -j "$THREADS" \
    -T "$DURATION" -D naccounts="$PG_ACCOUNTS" -f bench/wallet/pg_transfer.sql postgres 2>&1) ||
    { echo "bench: pgbench failed: $out" >&2; exit 1; }
  echo "$(sed -n 's/^tps = \([0-9]*\).*/\1/p' <<<"$out") $(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")"
}

echo "bench/wallet.sh: $ROUNDS rounds of ${DURATION} s, wrk -t$THREADS, alternating; $(nproc) cores; load $load_start"
declare -A pz_rates pg_rates pz_cpu
pz_ok=0 pz_other=0 pg_done=0
for r in $(seq "$ROUNDS"); do
  for c in $CONNECTIONS; do
    read -r rate ok other codes cpu < <(plaza_round "$c" "$r")
    pz_rates[$c]+="$rate "
    pz_cpu[$c]=$cpu
    pz_ok=$((pz_ok + ok)) pz_other=$((pz_other + other))
    printf 'round %d: plazad    %3d connections %7d transfers/s  (%d x 201, %d other: %s)  load %s\n' \
      "$r" "$c" "$rate" "$ok" "$other" "$codes" "$(load)"
    [ -n "$cpu" ] && echo "         CPU per transfer, µs by thread: $cpu"
  done
  for c in $PG_CLIENTS; do
    read -r tps processed < <(pg_round "$c")
    pg_rates[$c]+="$tps "
    pg_done=$((pg_done + processed))
    printf 'round %d: postgres  %3d clients     %7d transfers/s  (%d transactions)  load %s\n' \
      "$r" "$c" "$tps" "$processed" "$(load)"
  done
done

best() { # name of the assoc array -> "median_of_best key"
  local -n rates=$1
  local k m best_m=-1 best_k=""
  for k in "${!rates[@]}"; do
    m=$(printf '%s\n' ${rates[$k]} | median)
    if [ "$m" -gt "$best_m" ]; then best_m=$m best_k=$k; fi
  done
  echo "$best_m $best_k"
}
read -r pz_best pz_best_c < <(best pz_rates)
read -r pg_best pg_best_c < <(best pg_rates)

# ---- nothing lost, nothing doubled ----

kill "$pz_pid"
wait "$pz_pid" || true
pz_pid=""
counts=$("$BW" count --data-dir "$tmp/data")
transfers=$(kv "$counts" transfers) completed=$(kv "$counts" completed) keys=$(kv "$counts" transfer_keys)
fail=0
if [ "$pz_other" -ne 0 ] || [ "$transfers" -ne "$pz_ok" ] || [ "$keys" -ne "$pz_ok" ] ||
  { [ "$AUTO_ACCEPT" = 1 ] && [ "$completed" -ne "$pz_ok" ]; }; then
  echo "bench: FAIL: $pz_ok answered 201 ($pz_other other answers) but the ledger holds: $counts" >&2
  fail=1
fi
verify_out=$("$PLAZAD" ledger verify --data-dir "$tmp/data") && verify_rc=0 || verify_rc=$?
[ "$verify_rc" -eq 0 ] || { echo "bench: FAIL: plazad ledger verify exited $verify_rc: $verify_out" >&2; fail=1; }
pg_txns=$(psql_ -Atc "SELECT count(*) FROM txns")
pg_money_after=$(psql_ -Atc "SELECT sum(balance) FROM accounts")
pg_entries_ok=$(psql_ -Atc "SELECT count(*) = 0 FROM (SELECT txn_id FROM entries GROUP BY txn_id HAVING sum(amount) <> 0 OR count(*) <> 2) x")
if [ "$pg_txns" -ne "$pg_done" ] || [ "$pg_money_after" != "$pg_money" ] || [ "$pg_entries_ok" != t ]; then
  echo "bench: FAIL: pgbench committed $pg_done transfers; PostgreSQL holds $pg_txns, money $pg_money -> $pg_money_after" >&2
  fail=1
fi
as_pg "$pg_bin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null
pg_started=""

# ---- ledger verify over VERIFY_TRANSFERS transfers ----

verify_cold="-" verify_med="-" verify_cpu="-"
if [ "$VERIFY_TRANSFERS" -gt 0 ]; then
  rm -rf "$tmp/data" # the HTTP rounds' ledger is checked: room for the large one
  ledger=${LEDGER_DIR:-$tmp/ledger}
  if [ -f "$ledger/plaza.db" ]; then
    have=$(kv "$("$BW" count --data-dir "$ledger")" transfers)
    [ "$have" = "$VERIFY_TRANSFERS" ] ||
      { echo "bench: $ledger holds $have transfers, not $VERIFY_TRANSFERS: remove it or change VERIFY_TRANSFERS" >&2; exit 1; }
    echo "bench/wallet.sh: reusing the ledger of $have transfers in $ledger"
  else
    t0=$(date +%s)
    "$BW" gen --data-dir "$ledger" --transfers "$VERIFY_TRANSFERS" --users "$VERIFY_USERS" 2>"$tmp/gen.log" >/dev/null ||
      { echo "bench: building the ledger failed:" >&2; tail -3 "$tmp/gen.log" >&2; exit 1; }
    echo "bench/wallet.sh: ledger of $VERIFY_TRANSFERS transfers among $VERIFY_USERS users built in $(($(date +%s) - t0)) s"
  fi
  echo "bench/wallet.sh: plaza.db is $(du -m "$ledger/plaza.db" | cut -f1) MiB"
  # One run with the database file out of the page cache (dd's nocache flag asks the kernel to drop that file's
  # pages, no other file's), then VERIFY_RUNS with it in memory. Times are wall clock; CPU is user + system over
  # both of verify's threads.
  verify_once() { # sets vt (wall s) and vc (CPU s); the verdict is in $tmp/verify.out
    local t
    t=$( { TIMEFORMAT='%R %U %S'; time "$PLAZAD" ledger verify --data-dir "$ledger" >"$tmp/verify.out" 2>&1; } 2>&1) ||
      { echo "bench: FAIL: ledger verify over the built ledger: $(cat "$tmp/verify.out")" >&2; exit 1; }
    read -r vt vc < <(awk '{printf "%.1f %.1f\n", $1, $2 + $3}' <<<"$t")
  }
  dd if="$ledger/plaza.db" iflag=nocache count=0 status=none
  verify_once
  verify_cold=$vt
  echo "verify, page cache cold: $vt s, CPU $vc s ($(cat "$tmp/verify.out"))  load $(load)"
  times=() cpus=()
  for r in $(seq "$VERIFY_RUNS"); do
    verify_once
    times+=("$vt") cpus+=("$vc")
    echo "verify run $r: $vt s, CPU $vc s ($(cat "$tmp/verify.out"))  load $(load)"
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  verify_med=$(med "${times[@]}")
  verify_cpu=$(med "${cpus[@]}")
fi

# ---- the table ----

mode=$([ "$AUTO_ACCEPT" = 1 ] && echo "completed (auto-accept)" || echo "pending (no auto-accept)")
echo
echo "| what | result |"
echo "|---|---|"
for c in $CONNECTIONS; do
  echo "| plazad, $c connections: transfers/s per round | ${pz_rates[$c]% } (median $(printf '%s\n' ${pz_rates[$c]} | median)) |"
done
for c in $PG_CLIENTS; do
  echo "| PostgreSQL, $c clients: transfers/s per round | ${pg_rates[$c]% } (median $(printf '%s\n' ${pg_rates[$c]} | median)) |"
done
echo "| plazad best median ($pz_best_c connections), transfers $mode, PIN checked, fsynced | $pz_best |"
echo "| ... CPU per transfer in its last round, µs by thread (loop: plazad's event loop) | ${pz_cpu[$pz_best_c]:--} |"
echo "| PostgreSQL best median ($pg_best_c clients), synchronous_commit on | $pg_best |"
echo "| ratio plazad / PostgreSQL | $(echo "$pz_best $pg_best" | awk '{printf "%.2f", $1 / $2}') |"
echo "| 201s = transfers in the ledger = idempotency records | $pz_ok = $transfers = $keys ($([ $fail = 0 ] && echo ok || echo MISMATCH)) |"
echo "| plazad ledger verify after the rounds | exit $verify_rc |"
echo "| PostgreSQL: transactions committed = rows, money kept | $pg_done = $pg_txns, $pg_money = $pg_money_after |"
echo "| plazad ledger verify over $VERIFY_TRANSFERS transfers, page cache cold (s) | $verify_cold |"
echo "| plazad ledger verify over $VERIFY_TRANSFERS transfers, warm, median of $VERIFY_RUNS (s; CPU s) | $verify_med; $verify_cpu |"
echo "| load average at start / end | $load_start / $(load) |"
echo
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'): $pg_settings; $PG_ACCOUNTS accounts"
exit "$fail"
