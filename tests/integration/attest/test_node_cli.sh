#!/usr/bin/env bash
# `tsi node register|list|show|revoke|trust|remove` against tsi-attest --dev
# on loopback, with an EK certificate made by swtpm_setup and a local CA.
set -euo pipefail
BIN=${TSI_BIN_DIR:?}
TSI=$BIN/tsi
D=$(mktemp -d)
SRV=""
cleanup() {
  if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$D/srv.err" ] && tail -5 "$D/srv.err" >&2; exit 1; }

# An EK certificate as a TPM manufacturer would make it (swtpm's local CA).
mkdir -p "$D/ca" "$D/state"
cat > "$D/setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $D/localca.conf
create_certs_tool_options = $D/localca.options
active_pcr_banks = sha256
CONF
printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
  "$D/ca" "$D/ca" "$D/ca" "$D/ca" > "$D/localca.conf"
echo "--platform-manufacturer tsi-test" > "$D/localca.options"
swtpm_setup --tpm2 --tpmstate "$D/state" --create-ek-cert --config "$D/setup.conf" \
  --overwrite > "$D/setup.log" 2>&1 || fail "swtpm_setup"
cat "$D/ca/swtpm-localca-rootca-cert.pem" "$D/ca/issuercert.pem" > "$D/ek-ca.pem"
# The EK certificate stays in swtpm's NV state; swtpm_localca leaves no copy,
# so one is made here by the same CA for the same purpose.
openssl req -new -newkey rsa:2048 -nodes -keyout "$D/ek.key" -subj "/CN=ek" \
  -out "$D/ek.csr" 2>/dev/null
openssl x509 -req -in "$D/ek.csr" -CA "$D/ca/issuercert.pem" -CAkey "$D/ca/signkey.pem" \
  -set_serial 7 -days 30 -out "$D/ek.pem" \
  -extfile <(printf 'keyUsage=critical,keyEncipherment\nextendedKeyUsage=2.23.133.8.1\n') 2>/dev/null \
  || fail "EK certificate"
want=$(openssl x509 -in "$D/ek.pem" -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -c1-64)

# tsi-attest's own arguments and config errors (exit 2 with file:line)
"$BIN/tsi-attest" --version | grep -q '^tsi-attest ' || fail "--version"
"$BIN/tsi-attest" --help | grep -q -- '--dev-root-token-id' || fail "--help"
set +e
"$BIN/tsi-attest" --bogus 2>/dev/null; [ $? -eq 2 ] || fail "unknown argument exit"
"$BIN/tsi-attest" 2>/dev/null; [ $? -eq 2 ] || fail "no mode exit"
"$BIN/tsi-attest" --dev --dev-listen 0.0.0.0:1 2>/dev/null; [ $? -eq 2 ] || fail "dev off loopback"
printf 'listen = "127.0.0.1:1";\ndata_dir = "%s/x";\nbogus = 1;\n' "$D" > "$D/bad.conf"
"$BIN/tsi-attest" --config "$D/bad.conf" 2>"$D/e"; [ $? -eq 2 ] || fail "bad config exit"
grep -q "bad.conf:3: unknown setting 'bogus'" "$D/e" || fail "config error: $(cat "$D/e")"
printf 'pcr_policies = ( { name = "x"; allow = ( { pcr9 = "00"; } ); } );\n' > "$D/badpcr.conf"
"$BIN/tsi-attest" --dev --dev-listen 127.0.0.1:1 --pcr-policy "$D/badpcr.conf" 2>"$D/e"
[ $? -eq 2 ] || fail "bad pcr policy exit"
grep -q "badpcr.conf:1: 'pcr9'" "$D/e" || fail "pcr policy error: $(cat "$D/e")"
set -e
printf 'pcr_policies = ( { name = "x"; allow = ( { pcr0 = "%064d"; } ); } );\n' 0 > "$D/pcr.conf"

export TSI_ATTEST_TOKEN=cli-test-token-0123456789
for try in 1 2 3 4 5; do
  port=$((42000 + RANDOM % 20000))
  "$BIN/tsi-attest" --dev --dev-listen "127.0.0.1:$port" --dev-root-token-id "$TSI_ATTEST_TOKEN" \
    --ek-ca "$D/ek-ca.pem" --pcr-policy "$D/pcr.conf" > "$D/srv.out" 2> "$D/srv.err" &
  SRV=$!
  for _ in $(seq 1 200); do
    if curl -sf "http://127.0.0.1:$port/v1/health" >/dev/null 2>&1; then break; fi
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$SRV" 2>/dev/null; then break; fi
  wait "$SRV" || true
  SRV=""
done
[ -n "$SRV" ] || fail "tsi-attest did not start"
export TSI_ATTEST_ADDR="http://127.0.0.1:$port"

# A second tsi-attest on the same address stops with the reason, instead
# of sharing the port (SO_REUSEPORT) and answering half the requests.
set +e
timeout 20 "$BIN/tsi-attest" --dev --dev-listen "127.0.0.1:$port" \
  --dev-root-token-id "$TSI_ATTEST_TOKEN" > "$D/two.out" 2> "$D/two.err"
rc=$?
set -e
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "second tsi-attest on port $port: exit $rc"
grep -q 'address in use' "$D/two.err" || fail "second tsi-attest: $(cat "$D/two.err")"
curl -sf "http://127.0.0.1:$port/v1/health" > /dev/null || fail "first tsi-attest stopped serving"

# register: the hash printed is the operator's own computation
out=$("$TSI" node register --ek-cert "$D/ek.pem" --node n1 --cluster-name c1 \
  --region eu-west --datacenter dc1 --tag rack=r7 --tag role=worker) || fail "register"
[ "$out" = "registered node n1 (ek_sha256 $want)" ] || fail "register output: $out"
"$TSI" node register --ek-sha256 "$(printf 'b%.0s' $(seq 64))" --node n2 --cluster-name c1 \
  --region eu-west --datacenter dc2 --ek-hash-trust >/dev/null || fail "register by hash"
# the same EK twice, a duplicate name, a bad hash: refused (exit 1 / 2)
if "$TSI" node register --ek-cert "$D/ek.pem" --node n3 --cluster-name c1 --region r \
  --datacenter d 2>"$D/e"; then fail "same EK registered twice"; fi
grep -q "EK already registered" "$D/e" || fail "duplicate EK reason: $(cat "$D/e")"
set +e
"$TSI" node register --ek-sha256 xyz --node n4 --cluster-name c --region r --datacenter d 2>/dev/null
[ $? -eq 2 ] || fail "bad hash exit"
"$TSI" node register --node n4 --cluster-name c --region r --datacenter d 2>/dev/null
[ $? -eq 2 ] || fail "missing EK exit"
"$TSI" node register --ek-sha256 "$want" --node 'bad/name' --cluster-name c --region r --datacenter d 2>/dev/null
[ $? -eq 2 ] || fail "bad tag/name exit"
TSI_ATTEST_TOKEN= "$TSI" node list 2>/dev/null
[ $? -eq 2 ] || fail "no token exit"
TSI_ATTEST_TOKEN=wrong-token-xxxxxxxx "$TSI" node list 2>/dev/null
[ $? -eq 1 ] || fail "wrong token exit"
"$TSI" node show nosuch 2>/dev/null
[ $? -eq 1 ] || fail "unknown node exit"
set -e

# list in three formats
"$TSI" node list --format json > "$D/list.json"
/usr/bin/python3 - "$D/list.json" "$want" <<'PY' || fail "json list"
import json, sys
d = json.load(open(sys.argv[1]))["data"]["nodes"]
by = {n["node"]: n for n in d}
n1 = by["n1"]
assert n1["ek_sha256"] == sys.argv[2]
assert n1["tags"] == {"rack": "r7", "role": "worker"}
assert n1["state"] == "untrusted" and n1["last_quote"] is None
assert set(n1) == {"node", "cluster-name", "region", "datacenter", "tags", "state",
                   "reason", "last_quote", "ek_sha256"}
assert by["n2"]["datacenter"] == "dc2"
PY
"$TSI" node list --format csv > "$D/list.csv"
head -1 "$D/list.csv" | grep -qx 'node,cluster-name,region,datacenter,tags,state,reason,last_quote,ek_sha256' || fail "csv header"
grep -q "^n1,c1,eu-west,dc1,rack=r7;role=worker,untrusted," "$D/list.csv" || fail "csv row: $(cat "$D/list.csv")"
"$TSI" node list | grep -q '^n2 ' || fail "table"

# show, revoke, trust, remove
"$TSI" node show n1 | grep -q "^ek_sha256 *$want" || fail "show"
"$TSI" node revoke n1 --reason "disk stolen" | grep -q "revoked (state revoked)" || fail "revoke"
"$TSI" node show n1 | grep -q "^reason *disk stolen" || fail "revoke reason"
set +e; "$TSI" node revoke n1 2>/dev/null; rc=$?; set -e
[ $rc -eq 2 ] || fail "revoke without reason"
"$TSI" node trust n1 | grep -q "state untrusted" || fail "trust of a node never enrolled"
"$TSI" node remove n2 | grep -q "removed" || fail "remove"
"$TSI" node list --format json | grep -q '"n2"' && fail "n2 still listed"

# every change is in the audit log, readable by tsi audit
"$TSI" audit list --data-dir "$(sed -n 's/^Data dir: //p' "$D/srv.out")" --format json --limit 0 > "$D/audit.jsonl"
for op in node.register node.revoke node.trust node.remove; do
  grep -q "\"op\":\"$op\"" "$D/audit.jsonl" || fail "audit $op"
done
grep -q '"disk stolen"\|revoked: disk stolen' "$D/audit.jsonl" || fail "audit reason"
grep -q "$TSI_ATTEST_TOKEN" "$D/audit.jsonl" "$D/srv.err" && fail "token leaked into logs"
# a chunked body past 64 KiB (no Content-Length to refuse it early): 413
head -c 70000 /dev/zero | tr '\0' a > "$D/big"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
  --data-binary @"$D/big" "$TSI_ATTEST_ADDR/v1/enroll/start")
[ "$code" = 413 ] || fail "chunked oversized body: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
  --data-binary '{"session":"x"}' "$TSI_ATTEST_ADDR/v1/enroll/finish")
[ "$code" = 400 ] || fail "chunked small body: $code"

# SIGHUP reloads the PCR policy file; a broken file is refused and the
# previous policies stay
wait_log() {
  for _ in $(seq 1 200); do grep -q "$1" "$D/srv.err" && return 0; sleep 0.05; done
  return 1
}
printf 'pcr_policies = ( { name = "y"; allow = ( { pcr1 = "%064d"; } ); } );\n' 0 > "$D/pcr.conf"
kill -HUP "$SRV"
wait_log '"reload.done","result":"ok","pcr_policies":1' || fail "reload ok"
printf 'pcr_policies = ( { name = "y" allow } );\n' > "$D/pcr.conf"
kill -HUP "$SRV"
wait_log '"reload.pcr_policy_failed"' || fail "reload failure logged"
grep '"reload.pcr_policy_failed"' "$D/srv.err" | grep -q 'pcr.conf:1: ' || fail "reload error has file:line"
kill -0 "$SRV" || fail "server died on a bad reload"
curl -s "$TSI_ATTEST_ADDR/v1/metrics" | grep -q 'tsi_attest_reloads_total{result="failed"} 1' || fail "metrics"
# Config mode: TLS, admin token file, node CA from `tsi ca init`
kill "$SRV"; wait "$SRV" || true; SRV=""
"$TSI" ca init --out "$D/nodeca" >/dev/null 2>&1 || fail "tsi ca init"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$D/tls.key" -out "$D/tls.pem" 2>/dev/null || fail "tls cert"
printf '# admins\n%s\n' "$TSI_ATTEST_TOKEN" > "$D/tokens"
chmod 600 "$D/tokens"
write_conf() {
cat > "$D/attest.conf" <<CONF
listen = "127.0.0.1:$port";
tls_cert = "$D/tls.pem";
tls_key = "$D/tls.key";
data_dir = "$D/data";
admin_token_file = "$D/tokens";
ek_ca = [ "$D/ek-ca.pem" ];
node_ca_cert = "$D/nodeca/ca.pem";
node_ca_key = "$D/nodeca/ca.key";
cert_days = 7;
CONF
}
port=$((42000 + RANDOM % 20000))
write_conf
chmod 644 "$D/tokens"
set +e
"$BIN/tsi-attest" --config "$D/attest.conf" 2>"$D/e"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "must be mode 0600" "$D/e" || fail "token file mode: $rc $(cat "$D/e")"
chmod 600 "$D/tokens"
# a random port may be taken by another test on this machine: try others
for try in 1 2 3 4 5; do
  port=$((42000 + RANDOM % 20000))
  write_conf
  "$BIN/tsi-attest" --config "$D/attest.conf" > "$D/srv.out" 2> "$D/srv.err" &
  SRV=$!
  for _ in $(seq 1 200); do
    curl -sf --cacert "$D/tls.pem" "https://127.0.0.1:$port/v1/health" >/dev/null 2>&1 && break
    kill -0 "$SRV" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$SRV" 2>/dev/null; then break; fi
  wait "$SRV" || true
  SRV=""
done
[ -n "$SRV" ] || fail "config-mode server did not start"
export TSI_ATTEST_ADDR="https://127.0.0.1:$port" TSI_ATTEST_CACERT="$D/tls.pem"
"$TSI" node register --ek-cert "$D/ek.pem" --node n9 --cluster-name c --region r \
  --datacenter d >/dev/null || fail "register over TLS"
"$TSI" node list --format csv | grep -q '^n9,' || fail "list over TLS"
# An EK certificate in DER, as swtpm_setup --write-ek-cert-files and the
# TPM's NV index hold it, registers like its PEM form with the same hash.
openssl req -new -newkey rsa:2048 -nodes -keyout "$D/ek2.key" -subj "/CN=ek2" \
  -out "$D/ek2.csr" 2>/dev/null
openssl x509 -req -in "$D/ek2.csr" -CA "$D/ca/issuercert.pem" -CAkey "$D/ca/signkey.pem" \
  -set_serial 8 -days 30 -outform der -out "$D/ek2.der" \
  -extfile <(printf 'keyUsage=critical,keyEncipherment\nextendedKeyUsage=2.23.133.8.1\n') 2>/dev/null \
  || fail "DER EK certificate"
want2=$(openssl x509 -inform der -in "$D/ek2.der" -pubkey -noout | openssl pkey -pubin -outform der | sha256sum | cut -c1-64)
out=$("$TSI" node register --ek-cert "$D/ek2.der" --node n10 --cluster-name c --region r \
  --datacenter d 2>"$D/e") || fail "register a DER EK certificate: $(cat "$D/e")"
[ "$out" = "registered node n10 (ek_sha256 $want2)" ] || fail "DER register output: $out"
printf 'not a certificate' > "$D/junk.crt"
set +e
"$TSI" node register --ek-cert "$D/junk.crt" --node n11 --cluster-name c --region r \
  --datacenter d 2>"$D/e"; rc=$?
set -e
[ $rc -eq 1 ] || fail "junk EK certificate exit $rc"
grep -q "not a PEM or DER certificate" "$D/e" || fail "junk EK reason: $(cat "$D/e")"
curl -sf --cacert "$D/tls.pem" "https://127.0.0.1:$port/v1/node-ca" | cmp -s - "$D/nodeca/ca.pem" \
  || fail "node-ca answers the configured CA"
set +e
TSI_ATTEST_CACERT= "$TSI" node list >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 1 ] || fail "an untrusted TLS certificate must fail"
"$TSI" audit verify --data-dir "$D/data" | grep -q '^audit log intact' || fail "audit verify"
echo "PASS"
