#!/usr/bin/env bash
# tsi-sidecar with its servers down: --once retries a bounded number of times,
# says clearly why each secret failed, writes nothing and exits 1 within the
# bound; refresh mode keeps retrying and stops cleanly on SIGTERM.
set -euo pipefail
BIN=${TSI_BIN_DIR:?TSI_BIN_DIR not set}
SC=$BIN/tsi-sidecar
tmp=$(mktemp -d /tmp/tsi-sc-down.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_grep() { # SECONDS PATTERN FILE: until FILE has a line matching PATTERN
	local n=$(( $1 * 20 ))
	until grep -q "$2" "$3" 2>/dev/null; do
		n=$((n - 1)); [ "$n" -gt 0 ] || return 1
		sleep 0.05
	done
}

# A closed loopback port for the server, a socket path with no issuer behind it.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TSI_ISSUER_SOCKET=$tmp/issuer.sock
export VAULT_ADDR=https://127.0.0.1:$port
export TSI_ROLE=demo
export TSI_SECRETS='[{"name":"record","path":"medical/record","dest":"record.json"},
                    {"name":"pw","path":"db/creds","dest":"db/pw","field":"password","format":"raw"}]'
export TSI_RETRY_MAX=4 TSI_RETRY_BASE_MS=100 TSI_RETRY_MAX_MS=400 TSI_HTTP_TIMEOUT_MS=1000

# 1. --once: exit 1 after 4 attempts; the sleeps add up to at most
#    100+200+400 ms, so the whole run stays far below 3 s.
start=$(date +%s%N)
set +e
"$SC" --once --dest-dir "$tmp/out" 2>"$tmp/once.log"
rc=$?
set -e
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -eq 1 ] || { cat "$tmp/once.log"; fail "--once exit $rc, want 1"; }
[ "$ms" -lt 3000 ] || fail "--once took $ms ms, bound is 3000"
retries=$(grep -c '"event":"fetch.retry"' "$tmp/once.log")
[ "$retries" -eq 3 ] || fail "want 3 retries logged, got $retries"
for n in record pw; do
	grep '"event":"secret.failed"' "$tmp/once.log" | grep -q "\"name\":\"$n\".*\"final\":\"gave up after retries\",\"attempts\":4.*cannot reach the issuer at $tmp/issuer.sock" ||
		{ cat "$tmp/once.log"; fail "no clear final error for $n"; }
done
grep -q '"event":"sidecar.done".*"written":0,"failed":2' "$tmp/once.log" || fail "no summary"
[ -z "$(ls -A "$tmp/out")" ] || fail "files written: $(ls -A "$tmp/out")"
echo "ok: --once gave up after 4 attempts in $ms ms with exit 1"

# 2. Refresh mode: keeps retrying; SIGTERM ends it within a second, exit 0.
"$SC" --dest-dir "$tmp/out2" 2>"$tmp/refresh.log" &
pid=$!
wait_grep 10 '"event":"login.retry"' "$tmp/refresh.log" || fail "refresh mode did not retry"
kill -0 "$pid" || fail "refresh mode exited early"
t0=$(date +%s%N)
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
pid=
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" -eq 0 ] || fail "refresh mode exit $rc after SIGTERM, want 0"
[ "$stop_ms" -lt 1000 ] || fail "SIGTERM took $stop_ms ms, want < 1000"
grep -q '"event":"sidecar.stopped"' "$tmp/refresh.log" || fail "no clean stop logged"
echo "ok: refresh mode stopped $stop_ms ms after SIGTERM"

# 3. SIGTERM while a request hangs (an issuer socket that accepts and never
#    answers): the transfer is aborted, exit 0 within a second.
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
    c.settimeout(30)
    c.recv(65536)   # the request has arrived: it will never be answered
    with open(sys.argv[2], "a") as f: f.write("request\n")
' "$tmp/hang.sock" "$tmp/hang.requests" &
hang=$!
for _ in $(seq 50); do [ -S "$tmp/hang.sock" ] && break; sleep 0.1; done
TSI_ISSUER_SOCKET=$tmp/hang.sock TSI_HTTP_TIMEOUT_MS=30000 "$SC" --dest-dir "$tmp/out4" 2>"$tmp/hang.log" &
pid=$!
wait_grep 10 request "$tmp/hang.requests" || fail "the sidecar never sent its request"
t0=$(date +%s%N)
kill -TERM "$pid"
set +e
wait "$pid"
rc=$?
set -e
pid=
kill "$hang"; wait "$hang" 2>/dev/null || true
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" -eq 0 ] || { cat "$tmp/hang.log"; fail "exit $rc after SIGTERM during a request"; }
[ "$stop_ms" -lt 1000 ] || fail "SIGTERM during a request took $stop_ms ms"
echo "ok: a hanging request was abandoned $stop_ms ms after SIGTERM"

# 4. Bad configuration is exit 2 with the reason, before any network.
set +e
TSI_SECRETS='[{"name":"x","path":"p","dest":"../../etc/passwd"}]' "$SC" --once --dest-dir "$tmp/out3" 2>"$tmp/bad.log"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad TSI_SECRETS exit $rc, want 2"
grep -q "TSI_SECRETS\[0\].dest" "$tmp/bad.log" || fail "bad TSI_SECRETS not explained"
[ ! -e "$tmp/out3" ] || fail "destination created despite bad config"

# 5. Nothing secret in the logs: the role is fine, tokens never appear.
if grep -qiE 'eyJ|X-Vault-Token' "$tmp"/*.log; then fail "token material in logs"; fi
echo "ok: all checks passed"
