#!/usr/bin/env bash
# Installs what Plaza needs from Debian's packages and npm, idempotently: nothing is fetched twice.
# usage: scripts/deps.sh [build|test|bench]...   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs="build-essential cmake pkg-config libuv1-dev libhttp-parser-dev libwslay-dev libjansson-dev
  libsqlite3-dev libsodium-dev libqrencode-dev libmagic-dev libvips-dev"
# The benchmarks' peers are test dependencies too: tests/api/bench_*.test.mjs run every bench/ script on a small load.
test_pkgs="clang libclang-rt-14-dev chromium fonts-liberation nodejs curl procps sqlite3 mosquitto mosquitto-clients
  wrk nginx-light postgresql"

want="$build_pkgs"
for group in "${@:-build}"; do
  case "$group" in
    build) ;;
    test) want="$want $test_pkgs" ;;
    bench) want="$want $test_pkgs" ;; # the same: pgbench comes with Debian 12's postgresql-15
    *) echo "deps.sh: unknown group '$group' (build, test or bench)" >&2; exit 2 ;;
  esac
done

missing=""
for p in $want; do
  # nodejs may come from another repository (nodesource) or be a newer node on PATH: a working node >= 18 counts.
  if [ "$p" = nodejs ] && command -v node >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 18 ? 1 : 0)'; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
# Debian's nodejs does not bring npm; nodesource's does.
if [[ " $want " == *" nodejs "* ]] && ! command -v npm >/dev/null; then missing="$missing npm"; fi

if [ -n "$missing" ]; then
  echo "deps: installing$missing"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm packages for the API and browser tests, from the lock file; never a browser download.
if [[ " $want " == *" nodejs "* ]]; then
  stamp=node_modules/.plaza-installed
  if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
    echo "deps: npm ci"
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
    touch "$stamp"
  fi
fi
