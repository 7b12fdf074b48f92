#!/usr/bin/env bash
# tsi-sidecar in refresh mode against a real tsi-issuer (swtpm) and tsi-vault
# (--dev): the file follows new versions, the sidecar logs in again before
# its short lease runs out, a secret the policy stops releasing (403 after a
# policy reload) has its file removed, and SIGTERM ends it within a second.
set -euo pipefail
TAG=refresh
# shellcheck source=issuer_env.sh
. "$(dirname "$0")/issuer_env.sh"

# The workload: a copy of tsi-sidecar; the policy releases app/* to its
# digest only, with 3-second tokens so that renewal happens during the test.
cp "$BIN/tsi-sidecar" "$T/app"
D=$(sha256sum "$T/app" | cut -d' ' -f1)
mkdir -p "$T/policies"
policy() { # DIGEST: written whole, then renamed (a reload never sees half)
	printf '%s\n' \
	    'roles = ( { name = "app"; rules = [ "app-read" ]; token_ttl = 3; } );' \
	    'rules = ( { name = "app-read"; paths = [ "secret/data/app/*" ];' \
	    "            capabilities = [ \"read\" ]; match = { images = [ \"sha256:$1\" ]; }; } );" \
	    >"$T/policies/app.conf.tmp"
	mv "$T/policies/app.conf.tmp" "$T/policies/app.conf"
}
policy "$D"
vport=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ROOT=root-token-of-the-refresh-test
"$BIN/tsi-vault" --dev --dev-listen "127.0.0.1:$vport" --dev-root-token-id "$ROOT" \
    --policy-dir "$T/policies" --trust-ca "$T/ca/ca.pem" >"$T/vault.out" 2>"$T/vault.log" &
vault_pid=$!
pids+=("$vault_pid")
VAULT=http://127.0.0.1:$vport
wait_for 20 tsi-vault curl -sf "$VAULT/v1/sys/health"
put() { # JSON data
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Vault-Token: $ROOT" \
	    -d "{\"data\": $1}" "$VAULT/v1/secret/data/app/config")
	[ "$code" = 200 ] || fail "put: HTTP $code"
}
put '{"user":"app","password":"v1-pass"}'

# Refresh mode, every second; the raw password and the whole object.
# The --dev server speaks plain HTTP: allowed only when asked for.
env -i PATH=/usr/bin:/bin TSI_ISSUER_SOCKET="$T/issuer.sock" VAULT_ADDR="$VAULT" \
    TSI_ALLOW_HTTP=1 TSI_ROLE=app TSI_REFRESH_INTERVAL=1 \
    TSI_SECRETS='[{"name":"pw","path":"app/config","dest":"pw","field":"password","format":"raw"},
                  {"name":"all","path":"secret/data/app/config","dest":"conf/all.json"}]' \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" LSAN_OPTIONS="${LSAN_OPTIONS:-}" \
    "$T/app" --dest-dir "$T/out" 2>"$T/sidecar.log" &
sc=$!
pids+=("$sc")
wait_for 15 "first write" test -f "$T/out/conf/all.json"
[ "$(cat "$T/out/pw")" = v1-pass ] || fail "pw content"
[ "$(stat -c %a "$T/out/pw")" = 400 ] || fail "pw mode"
wait_for 3 "sidecar.ready" grep -q '"event":"sidecar.ready"' "$T/sidecar.log"

# 1. A new version reaches the file.
put '{"user":"app","password":"v2-pass"}'
wait_for 5 "version 2 on disk" grep -qx v2-pass "$T/out/pw"
[ "$(stat -c %a "$T/out/pw")" = 400 ] || fail "pw mode after rewrite"
echo "ok: new version on disk"

# 2. Renewal: with 3 s leases the sidecar logs in again (at 2/3 of the lease)
#    and keeps reading (every second) without a single refusal: waited for
#    until two renewals (three logins) are logged.
logins_at_least() { [ "$(count '"event":"login.ok"' "$T/sidecar.log")" -ge "$1" ]; }
wait_for 10 "two renewals of 3 s leases" logins_at_least 3
logins=$(count '"event":"login.ok"' "$T/sidecar.log")
[ "$(count '"event":"secret.removed"' "$T/sidecar.log")" = 0 ] || fail "a file was removed while released"
[ "$(count 'HTTP 403' "$T/sidecar.log")" = 0 ] || fail "a read was refused with a live lease"
[ -f "$T/out/pw" ] || fail "pw vanished"
echo "ok: $logins logins, files kept"

# 3. The policy stops releasing: another digest, reloaded with SIGHUP. The
#    next read is 403; after one fresh login it is still 403, so both go.
policy "0000000000000000000000000000000000000000000000000000000000000000"
kill -HUP "$vault_pid"
wait_for 8 "removal of pw" test ! -e "$T/out/pw"
wait_for 3 "removal of all.json" test ! -e "$T/out/conf/all.json"
grep -q '"event":"secret.removed","name":"pw".*HTTP 403' "$T/sidecar.log" || fail "removal not explained"
[ -z "$(find "$T/out" -name '.tsi-tmp-*')" ] || fail "temporary files left"
echo "ok: files removed after the policy change"

# 4. SIGTERM: exit 0 within a second.
t0=$(date +%s%N)
kill -TERM "$sc"
set +e
wait "$sc"
rc=$?
set -e
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 0 ] || fail "exit $rc after SIGTERM"
[ "$ms" -lt 1000 ] || fail "stop took $ms ms"
for s in v1-pass v2-pass "$ROOT" eyJ; do
	! grep -qF -- "$s" "$T/sidecar.log" || fail "'$s' in the sidecar log"
done
echo "ok: stopped in $ms ms; nothing secret logged"
