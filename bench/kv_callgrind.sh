#!/usr/bin/env bash
# bench/kv_callgrind.sh - instructions per KV read in tsi-vault, load-free.
#
#   bench/kv_callgrind.sh [BUILD_DIR] [SECONDS]
#
# Runs tsi-vault --dev from BUILD_DIR/bin (default build-prof, a
# RelWithDebInfo build with -DTSI_BENCH=ON) under valgrind's callgrind,
# writes 100 secrets, logs in with a minted token (so the policy is
# evaluated), warms up, zeroes the counters, reads with
# bench/wrk/kv_read.lua (16 connections, SECONDS, default 8), dumps the
# counters and prints the inclusive cost per read of the largest functions.
# Every figure is divided by the reads wrk counted between zero and dump.
# Not part of bench/run: callgrind is slow, and its counts do not depend on
# the machine's load, which is the point.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${1:-$ROOT/build-prof}
SECS=${2:-8}
BIN=$BUILD/bin
PY=/usr/bin/python3
TMP=$(mktemp -d "$BUILD/cg.XXXXXX")
VPID=""
trap '[ -n "$VPID" ] && kill "$VPID" 2>/dev/null; wait 2>/dev/null; true' EXIT

port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
addr=http://127.0.0.1:$port
"$BIN/mint_tokens" --ca-dir "$TMP/ca" --out "$TMP/tokens.txt" --count 4 --ttl 3600 2>"$TMP/mint.err"
mkdir -p "$TMP/policies"
cat >"$TMP/policies/bench.conf" <<'EOF'
roles = ( { name = "bench"; rules = [ "bench-rw" ]; token_ttl = 3600; } );
rules = ( { name = "bench-rw"; paths = [ "secret/data/bench/*" ];
            capabilities = [ "create", "read", "update" ]; } );
EOF
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" \
  "$BIN/tsi-vault" --dev --dev-root-token-id root --dev-listen "127.0.0.1:$port" \
  --policy-dir "$TMP/policies" --trust-ca "$TMP/ca/ca.pem" >"$TMP/vault.log" 2>&1 &
VPID=$!
for _ in $(seq 1 300); do curl -sf "$addr/v1/sys/health" >/dev/null && break; sleep 0.1; done
"$PY" "$ROOT/bench/populate.py" --addr "$addr" --token root --prefix bench/s --count 100
jwt=$(tail -1 "$TMP/tokens.txt")
tok=$(curl -sf -X POST "$addr/v1/auth/trusted-identity/login" \
  -d "{\"role\": \"bench\", \"jwt\": \"$jwt\"}" | jq -er .auth.client_token)
run() {
  TSI_BENCH_WRK_DIR=$ROOT/bench/wrk TSI_BENCH_TOKEN=$tok \
  TSI_BENCH_KV_PREFIX=/v1/secret/data/bench/s TSI_BENCH_KV_COUNT=100 \
    wrk -t2 -c16 -d"$1s" --timeout 10s -s "$ROOT/bench/wrk/kv_read.lua" "$addr" \
    | grep '^WRKJSON' | sed 's/^WRKJSON //'
}
run 2 >/dev/null
callgrind_control -z "$VPID" >/dev/null
out=$(run "$SECS")
callgrind_control -d "$VPID" >/dev/null
reads=$(jq .good <<<"$out")
bad=$(jq .bad <<<"$out")
kill "$VPID"; wait "$VPID" 2>/dev/null || true; VPID=""
f=$(ls -S "$TMP"/cg.out* | head -1)
for d in "$TMP"/cg.out.*; do [ -s "$d" ] && f=$d; done
echo "reads: $reads (errors $bad); profile $f"
callgrind_annotate --inclusive=yes "$f" 2>/dev/null | awk -v n="$reads" '
  /^ *[0-9,]+ .*[:(]/ { x = $1; gsub(",", "", x);
    if (n > 0 && x / n >= 500) printf "%8.1f k  %s\n", x / n / 1000, substr($0, index($0, $2)) }' \
  | head -${TOP:-70}
