#!/usr/bin/env bash
# tsi-sidecar --once against a real tsi-issuer (swtpm) and a configured
# tsi-vault over TLS, with more secrets than one batch of connections
# carries: every file lands whole, 0400, in its directory (nested ones
# included) with no temporary left; refusals (403, 404) fail only their own
# secret; a vault certificate that does not verify against VAULT_CACERT
# writes nothing.
set -euo pipefail
TAG=once
# shellcheck source=issuer_env.sh
. "$(dirname "$0")/issuer_env.sh"

# The workload (a copy of tsi-sidecar, by digest) may read app/*.
cp "$BIN/tsi-sidecar" "$T/app"
D=$(sha256sum "$T/app" | cut -d' ' -f1)
mkdir -p "$T/policies" "$T/data"
printf '%s\n' \
    'roles = ( { name = "app"; rules = [ "app-read" ]; token_ttl = 60; } );' \
    'rules = ( { name = "app-read"; paths = [ "secret/data/app/*" ];' \
    "            capabilities = [ \"read\" ]; match = { images = [ \"sha256:$D\" ]; }; } );" \
    >"$T/policies/app.conf"

# tsi-vault with TLS: a server certificate for 127.0.0.1, and a second,
# unrelated one that the sidecar must refuse.
for n in tls other; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	    -keyout "$T/$n.key" -out "$T/$n.pem" >/dev/null 2>&1
done
head -c 32 /dev/urandom >"$T/kv.key"
chmod 600 "$T/kv.key"
vport=$(free_port 1)
printf '%s\n' "listen = \"127.0.0.1:$vport\";" "tls_cert = \"$T/tls.pem\";" \
    "tls_key = \"$T/tls.key\";" "data_dir = \"$T/data\";" \
    "kv_key_file = \"$T/kv.key\";" "root_token_file = \"$T/root-token\";" \
    "policy_dir = \"$T/policies\";" "trust_ca = \"$T/ca/ca.pem\";" >"$T/vault.conf"
"$BIN/tsi-vault" --config "$T/vault.conf" >"$T/vault.out" 2>"$T/vault.log" &
pids+=($!)
VAULT=https://127.0.0.1:$vport
wait_for 20 tsi-vault curl -sf --cacert "$T/tls.pem" "$VAULT/v1/sys/health"
ROOT=$(cat "$T/root-token")
N=20
for i in $(seq 0 $((N - 1))); do
	code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/tls.pem" \
	    -H "X-Vault-Token: $ROOT" -d "{\"data\": {\"password\": \"pw-$i\", \"n\": $i}}" \
	    "$VAULT/v1/secret/data/app/s$i")
	[ "$code" = 200 ] || fail "put app/s$i: HTTP $code"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/tls.pem" \
    -H "X-Vault-Token: $ROOT" -d '{"data": {"password": "not-for-app"}}' \
    "$VAULT/v1/secret/data/other/x")
[ "$code" = 200 ] || fail "put other/x: HTTP $code"

# spec N [EXTRA]: N secrets, every third one two directories down.
spec() {
	local i s="[" dest
	for i in $(seq 0 $(($1 - 1))); do
		dest="s$i"
		[ $((i % 3)) -eq 0 ] && dest="deep/er/s$i"
		s+="{\"name\": \"s$i\", \"path\": \"app/s$i\", \"dest\": \"$dest\", \"field\": \"password\", \"format\": \"raw\"},"
	done
	echo "${s}${2:-}]" | sed 's/,]$/]/'
}
sidecar() { # OUT CACERT SPEC: runs --once, prints its exit code
	env -i PATH=/usr/bin:/bin TSI_ISSUER_SOCKET="$T/issuer.sock" VAULT_ADDR="$VAULT" \
	    VAULT_CACERT="$2" TSI_ROLE=app TSI_RETRY_MAX=1 TSI_SECRETS="$3" \
	    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" LSAN_OPTIONS="${LSAN_OPTIONS:-}" \
	    "$T/app" --once --dest-dir "$T/$1" 2>"$T/$1.log" && echo 0 || echo $?
}
check_files() { # OUT N: the N files, whole and 0400; nothing else
	local i f
	for i in $(seq 0 $(($2 - 1))); do
		f="$T/$1/s$i"
		[ $((i % 3)) -eq 0 ] && f="$T/$1/deep/er/s$i"
		[ -f "$f" ] || fail "$1: s$i missing"
		[ "$(cat "$f")" = "pw-$i" ] || fail "$1: s$i content"
		[ "$(stat -c %a "$f")" = 400 ] || fail "$1: s$i mode $(stat -c %a "$f")"
	done
	[ "$(find "$T/$1" -type f | wc -l)" -eq "$2" ] || fail "$1: $(find "$T/$1" -type f | wc -l) files, want $2"
	[ -z "$(find "$T/$1" -name '.tsi-tmp-*')" ] || fail "$1: temporary files left"
	[ "$(stat -c %a "$T/$1/deep/er")" = 700 ] || fail "$1: directory mode"
}

# 1. All released: exit 0, every file in place.
rc=$(sidecar out1 "$T/tls.pem" "$(spec $N)")
[ "$rc" = 0 ] || fail "--once exit $rc, want 0"
check_files out1 $N
[ "$(grep -c '"event":"secret.written"' "$T/out1.log")" -eq $N ] || fail "secret.written count"
grep -q "\"event\":\"sidecar.done\",\"mode\":\"once\",\"written\":$N,\"failed\":0" "$T/out1.log" ||
	fail "no summary"
echo "ok: $N secrets over TLS, all on disk"

# 2. One refused (403) and one missing (404) among them: only those fail.
rc=$(sidecar out2 "$T/tls.pem" "$(spec $N '{"name": "denied", "path": "other/x", "dest": "denied"},
    {"name": "missing", "path": "app/none", "dest": "missing"}')")
[ "$rc" = 1 ] || fail "--once with refusals exit $rc, want 1"
check_files out2 $N
grep '"event":"secret.failed"' "$T/out2.log" | grep -q '"name":"denied".*"final":"refused".*HTTP 403' ||
	fail "403 not reported as refused"
grep '"event":"secret.failed"' "$T/out2.log" | grep -q '"name":"missing".*"final":"refused".*HTTP 404' ||
	fail "404 not reported as refused"
grep -q "\"written\":$N,\"failed\":2" "$T/out2.log" || fail "summary with refusals"
echo "ok: 403 and 404 fail only their own secret"

# 3. A vault certificate that does not verify: nothing written, exit 1.
rc=$(sidecar out3 "$T/other.pem" "$(spec 3)")
[ "$rc" = 1 ] || fail "--once with the wrong CA exit $rc, want 1"
[ -z "$(find "$T/out3" -type f 2>/dev/null)" ] || fail "files written without a verified server"
grep -q '"event":"secret.failed".*certificate' "$T/out3.log" || fail "certificate failure not explained"
echo "ok: unverified server refused"

for f in "$T"/out*.log; do
	for s in pw-1 pw-7 not-for-app "$ROOT" eyJ; do
		! grep -qF -- "$s" "$f" || fail "'$s' in $(basename "$f")"
	done
done
echo "ok: nothing secret logged"
