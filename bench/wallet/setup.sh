#!/usr/bin/env bash
# Makes the wallet benchmark's users through plazad's HTTP API: sign-up, PIN, a top-up, and auto-accept when asked.
# usage: bench/wallet/setup.sh URL N OUT PIN AUTO   (AUTO: 1 turns auto_accept_transfers on, 0 leaves transfers pending)
# Writes OUT (mode 0600: it holds bearer tokens): one "user_id token" line per user. Two users at a time, as
# sign-up and setting a PIN each cost an Argon2id hash (about 0.1 s) and the server runs at most two at once.
set -euo pipefail

one() { # URL I PIN AUTO TAG DIR: one user, written to DIR/I
  local url=$1 i=$2 pin=$3 auto=$4 tag=$5 dir=$6 out id token
  api() { # METHOD PATH BODY EXPECTED_STATUS -> body; any other status stops the setup
    local res status
    res=$(curl -sS -X "$1" "$url$2" -H 'Content-Type: application/json' ${token:+-H "Authorization: Bearer $token"} \
      --data "$3" -w '\n%{http_code}')
    status=${res##*$'\n'}
    if [ "$status" != "$4" ]; then
      echo "setup: $1 $2 answered $status, not $4: ${res%$'\n'*}" >&2
      return 1
    fi
    printf '%s' "${res%$'\n'*}"
  }
  token=""
  out=$(api POST /v1/accounts "{\"username\":\"wb${tag}_$i\",\"password\":\"bench-password-$i\",\"display_name\":\"Bench $i\"}" 201)
  # Ids are decimal strings and tokens base64url: neither holds a quote, so a pattern reads them safely.
  id=$(sed -n 's/.*"user":{"id":"\([0-9]*\)".*/\1/p' <<<"$out")
  token=$(sed -n 's/.*"token":"\([A-Za-z0-9_-]*\)".*/\1/p' <<<"$out")
  [ -n "$id" ] && [ -n "$token" ] || { echo "setup: cannot read the sign-up answer: $out" >&2; return 1; }
  api PUT /v1/wallet/pin "{\"pin\":\"$pin\",\"password\":\"bench-password-$i\"}" 204 >/dev/null
  api POST /v1/wallet/topups "{\"amount\":1000000000,\"currency\":\"USD\",\"idempotency_key\":\"setup-$i\"}" 201 >/dev/null
  if [ "$auto" = 1 ]; then
    api PATCH /v1/wallet/settings '{"auto_accept_transfers":true}' 200 >/dev/null
  fi
  printf '%s %s\n' "$id" "$token" >"$dir/$i"
}

if [ "${1:-}" = --one ]; then
  shift
  one "$@"
  exit
fi

[ $# -eq 5 ] || { echo "usage: $0 URL N OUT PIN AUTO" >&2; exit 2; }
url=$1 n=$2 out=$3 pin=$4 auto=$5
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tag=$(date +%s | tail -c 7) # usernames of this run: a second run on the same server does not collide
seq 1 "$n" | xargs -P 2 -I{} "$0" --one "$url" {} "$pin" "$auto" "$tag" "$dir"
(umask 077 && for i in $(seq 1 "$n"); do cat "$dir/$i"; done >"$out")
