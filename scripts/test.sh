#!/usr/bin/env bash
# Runs Plaza's tests on the sanitizer build: unit (CTest), api and browser (node:test against the real plazad), fuzz.
# usage: scripts/test.sh [unit|api|browser|fuzz]...   (default: all, in that order)
set -uo pipefail
cd "$(dirname "$0")/.."

stages=("${@:-unit api browser fuzz}")
stages=(${stages[*]})
jobs=$(nproc)
out=tests/out
mkdir -p "$out"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PLAZAD="$PWD/build-asan/plazad"

passed=0
failed=0
failed_stages=""

count() { # stage log: adds what the runner reported
  local stage=$1 log=$2 p=0 f=0
  case "$stage" in
    unit)
      # "100% tests passed, 0 tests failed out of 9"
      f=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$log" | tail -1 | awk '{print $1}')
      p=$(grep -oE '[0-9]+ tests failed out of [0-9]+' "$log" | tail -1 | awk '{print $6 - $1}') ;;
    api|browser)
      p=$(grep -E '^# pass [0-9]+' "$log" | tail -1 | awk '{print $3}')
      f=$(grep -E '^# fail [0-9]+' "$log" | tail -1 | awk '{print $3}') ;;
    fuzz)
      p=$(grep -c '^fuzz: .* ok' "$log"); f=$(grep -c '^fuzz: .* FAILED' "$log") ;;
  esac
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
}

build_asan() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPZ_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j "$jobs" --target all bench_chat bench_wallet # tests/api/bench_*.test.mjs
}

run_stage() {
  local stage=$1 log="$out/$1.log" rc=0
  echo "== $stage"
  case "$stage" in
    unit)
      ctest --test-dir build-asan --output-on-failure -j "$jobs" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]} ;;
    api)
      node --test tests/api/*.test.mjs 2>&1 | tee "$log"; rc=${PIPESTATUS[0]} ;;
    browser)
      node --test tests/browser/*.test.mjs 2>&1 | tee "$log"; rc=${PIPESTATUS[0]} ;;
    fuzz)
      # Each target runs briefly from its seeds (copied: the tree is never written to).
      { cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DPZ_SANITIZE=ON -DPZ_FUZZ=ON >/dev/null &&
          cmake --build build-fuzz -j "$jobs"; } || { echo "fuzz: build FAILED"; rc=1; }
      : >"$log"
      for dir in fuzz/*/; do
        name=$(basename "$dir")
        [ -x "build-fuzz/fuzz_$name" ] || continue
        corpus=$(mktemp -d)
        cp "$dir"seeds/* "$corpus"/ 2>/dev/null || true
        if (cd "$corpus" && "$OLDPWD/build-fuzz/fuzz_$name" -max_total_time="${FUZZ_SECONDS:-30}" -timeout=10 \
              -rss_limit_mb=2048 -print_final_stats=1 "$corpus") >"$out/fuzz_$name.log" 2>&1; then
          echo "fuzz: $name ok ($(grep -oE 'stat::number_of_executed_units: [0-9]+' "$out/fuzz_$name.log" | awk '{print $2}') runs)" | tee -a "$log"
        else
          tail -40 "$out/fuzz_$name.log"
          echo "fuzz: $name FAILED (see $out/fuzz_$name.log)" | tee -a "$log"; rc=1
        fi
        rm -rf "$corpus"
      done ;;
  esac
  count "$stage" "$log"
  if [ "$rc" != 0 ]; then failed_stages="$failed_stages $stage"; [ "$failed" -gt 0 ] || failed=$((failed + 1)); fi
}

if ! build_asan; then
  echo "build: FAILED"
  echo "0 passed, 1 failed"
  exit 1
fi
for s in "${stages[@]}"; do run_stage "$s"; done

echo
[ -z "$failed_stages" ] || echo "failed stages:$failed_stages"
echo "$passed passed, $failed failed"
[ -z "$failed_stages" ]
