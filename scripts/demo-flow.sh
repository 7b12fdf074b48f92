#!/usr/bin/env bash
# The whole tsi flow on one machine, no manual step:
#   three software TPMs (swtpm) with EK certificates from a local CA each,
#   tsi-attest over TLS holding the node CA, two nodes registered by the
#   operator (node 1: hipaaCluster/dal05, node 2: hipaaCluster/wdc04) whose
#   tsi-issuers enroll themselves (attested enrollment), a third TPM that
#   nobody registered refused and listed as pending (then approved by the
#   operator in hipaaCluster/fra02, and enrolled), tsi-vault over TLS
#   trusting the node CA with the example policies, a medical record,
#   and three sidecar runs: the allowed workload on node 1, the same workload
#   on node 2, another executable on node 1. Then the audit trail.
#
# usage: scripts/demo-flow.sh BIN_DIR
# Environment:
#   TSI_FLOW_DIR   work in this directory (created, must not exist) and keep it
#                  afterwards, with results.env for tests; default: a
#                  temporary directory removed at exit.
#   TSI_FLOW_QUIET 1: print only the summary lines.
# Exit: 0 when every step behaved as expected, 1 otherwise. Everything this
# script starts is stopped (by PID) when it exits, however it exits.
set -euo pipefail

BIN=${1:?usage: scripts/demo-flow.sh BIN_DIR}
BIN=$(cd "$BIN" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
for p in tsi tsi-attest tsi-issuer tsi-vault tsi-sidecar; do
	[ -x "$BIN/$p" ] || { echo "demo: $BIN/$p is missing" >&2; exit 1; }
done
for c in swtpm swtpm_setup openssl curl sha256sum "$PY"; do
	command -v "$c" >/dev/null || { echo "demo: '$c' is needed" >&2; exit 1; }
done

if [ -n "${TSI_FLOW_DIR:-}" ]; then
	W=$TSI_FLOW_DIR
	mkdir "$W"
	keep=1
else
	W=$(mktemp -d /tmp/tsi-demo.XXXXXX)
	keep=0
fi
W=$(cd "$W" && pwd)
# The issuer's front end runs as an unprivileged user (front_user) and
# reads attest_ca itself: the directories above it must let it in. Keys
# stay 0600 below.
chmod 0755 "$W"
quiet=${TSI_FLOW_QUIET:-0}
pids=()

stop_all() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
	done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		wait "${pids[$i]}" 2>/dev/null || true
	done
	pids=()
}
on_exit() {
	local rc=$?
	stop_all
	[ "$keep" -eq 1 ] || rm -rf "$W"
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

say() { [ "$quiet" = 1 ] || printf '%s\n' "$*"; }
head1() { [ "$quiet" = 1 ] || printf '\n== %s\n' "$*"; }
die() { printf 'demo: FAILED: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# A free loopback port p with p+1 free too (swtpm: server and control).
free_port_pair() {
	"$PY" - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 60000)
    socks = []
    try:
        for q in (p, p + 1):
            s = socket.socket(); s.bind(("127.0.0.1", q)); socks.append(s)
        print(p); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
EOF
}
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local n=$(( $1 * 10 )) what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "timed out waiting for $what"
		sleep 0.1
	done
}

head1 "Working directory: $W"

# --- 1. tsi-attest: the node CA online, the EK manufacturers' CAs -----------
head1 "1. tsi-attest (TLS) holding the node CA"
A=$W/attest
mkdir -p "$A/data"
"$BIN/tsi" ca init --out "$W/ca" >/dev/null
say "   $W/ca: the node CA (tsi ca init); only tsi-attest holds its key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$A/tls-ca.key" -out "$A/tls-ca.pem" -days 1 \
    -subj "/CN=tsi demo attest TLS CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$A/tls.key" -out "$A/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$A/tls.ext"
openssl x509 -req -in "$A/tls.csr" -CA "$A/tls-ca.pem" -CAkey "$A/tls-ca.key" \
    -CAcreateserial -out "$A/tls.pem" -days 1 -extfile "$A/tls.ext" 2>/dev/null
chmod 0600 "$A/tls.key" "$A/tls-ca.key"
(umask 077 && openssl rand -hex 24 >"$A/admin-tokens")
ATOKEN=$(head -n1 "$A/admin-tokens")

# Each node's TPM is "manufactured" first: swtpm_setup makes its EK and
# writes an EK certificate signed by a local CA of its own (swtpm_localca),
# standing in for the TPM vendor's CA. Node 3 is a TPM nobody registers.
NODES=(1 2 3)
make_tpm() { # make_tpm N: swtpm state with an EK certificate from a local CA
	local d=$W/node$1
	mkdir -p "$d/tpm" "$d/state" "$d/ekca" "$d/ek"
	cat >"$d/ekca/swtpm-localca.conf" <<EOF
statedir = $d/ekca
signingkey = $d/ekca/signkey.pem
issuercert = $d/ekca/issuercert.pem
certserial = $d/ekca/certserial
EOF
	printf -- '--platform-manufacturer tsi-demo\n--platform-version 2.1\n--platform-model swtpm\n' \
	    >"$d/ekca/swtpm-localca.options"
	cat >"$d/ekca/swtpm_setup.conf" <<EOF
create_certs_tool = swtpm_localca
create_certs_tool_config = $d/ekca/swtpm-localca.conf
create_certs_tool_options = $d/ekca/swtpm-localca.options
active_pcr_banks = sha256
EOF
	swtpm_setup --tpm2 --tpm-state "$d/tpm" --create-ek-cert --overwrite \
	    --config "$d/ekca/swtpm_setup.conf" --write-ek-cert-files "$d/ek" \
	    >"$d/swtpm_setup.log" 2>&1 ||
		{ cat "$d/swtpm_setup.log" >&2; die "swtpm_setup for node $1"; }
	[ -f "$d/ek/ek-rsa2048.crt" ] || die "no EK certificate for node $1"
}
for n in "${NODES[@]}"; do
	make_tpm "$n"
done
say "   TPMs manufactured: an RSA EK and its certificate (NV 0x01c00002) in each, from"
say "   a local CA per node (swtpm_setup --create-ek-cert, swtpm_localca)"
APORT=$(free_port)
cat >"$A/attest.conf" <<EOF
# tsi-attest of the demo
listen           = "127.0.0.1:$APORT";
tls_cert         = "$A/tls.pem";
tls_key          = "$A/tls.key";
data_dir         = "$A/data";
admin_token_file = "$A/admin-tokens";
ek_ca            = [ "$W/node1/ekca/issuercert.pem", "$W/node2/ekca/issuercert.pem",
                     "$W/node3/ekca/issuercert.pem" ];
node_ca_cert     = "$W/ca/ca.pem";
node_ca_key      = "$W/ca/ca.key";
map_size         = 16777216;
EOF
"$BIN/tsi-attest" --config "$A/attest.conf" 2>"$A/attest.log" &
pids+=($!)
ATTEST=https://127.0.0.1:$APORT
wait_for 20 "tsi-attest" curl -sf --cacert "$A/tls-ca.pem" "$ATTEST/v1/health"
say "   tsi-attest on $ATTEST; ek_ca = the three local CAs"
# tsi-vault will trust the node CA that tsi-attest publishes.
curl -sf --cacert "$A/tls-ca.pem" "$ATTEST/v1/node-ca" >"$W/node-ca.pem" ||
	die "GET /v1/node-ca"
say "   GET /v1/node-ca -> $W/node-ca.pem: the CA tsi-vault will trust for node certificates"
tsi_node() {
	TSI_ATTEST_ADDR=$ATTEST TSI_ATTEST_TOKEN=$ATOKEN TSI_ATTEST_CACERT=$A/tls-ca.pem \
	    "$BIN/tsi" node "$@"
}

# --- 2. Two nodes: the operator registers them, the issuers enroll ----------
declare -A NODE_DC=([1]=dal05 [2]=wdc04) NODE_REGION=([1]=us-south [2]=us-east)
head1 "2. The operator registers the two nodes' EKs (tsi node register)"
for n in 1 2; do
	tsi_node register --ek-cert "$W/node$n/ek/ek-rsa2048.crt" --node "node$n" \
	    --cluster-name hipaaCluster --region "${NODE_REGION[$n]}" \
	    --datacenter "${NODE_DC[$n]}" >"$W/node$n/register.out" 2>&1 ||
		{ cat "$W/node$n/register.out" >&2; die "tsi node register node$n"; }
	say "   $(cat "$W/node$n/register.out"): hipaaCluster/${NODE_REGION[$n]}/${NODE_DC[$n]}"
done
start_swtpm() { # start_swtpm N: runs node N's swtpm, sets port
	local d=$W/node$1
	port=$(free_port_pair)
	[ -n "$port" ] || die "no free port pair for swtpm"
	swtpm socket --tpm2 --server type=tcp,port="$port",bindaddr=127.0.0.1 \
	    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
	    --tpmstate dir="$d/tpm" --flags not-need-init,startup-clear \
	    >"$d/swtpm.log" 2>&1 &
	pids+=($!)
	wait_for 10 "swtpm of node $1" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
	cat >"$d/issuer.conf" <<EOF
# tsi-issuer of demo node $1
tcti         = "swtpm:host=127.0.0.1,port=$port";
state_dir    = "$d/state";
node_cert    = "$d/node.pem";
socket       = "$d/issuer.sock";
socket_mode  = "0666";
signing      = "delegated";
resolver     = "unix";
trust_domain = "tsi.example";
token_ttl    = 300;
attest_url   = "$ATTEST";
attest_ca    = "$A/tls-ca.pem";
EOF
}
for n in 1 2; do
	head1 "2.$n Node $n enrolls itself: hipaaCluster / ${NODE_REGION[$n]} / ${NODE_DC[$n]}"
	d=$W/node$n
	start_swtpm "$n"
	say "   swtpm on 127.0.0.1:$port; the node key is made in that TPM and never leaves it"
	# No node certificate yet: tsi-issuer run proves the TPM to tsi-attest
	# (EK, AK, certify, activation, quote) and gets one before serving.
	"$BIN/tsi-issuer" run --config "$d/issuer.conf" 2>"$d/issuer.log" &
	pids+=($!)
	wait_for 30 "tsi-issuer of node $n" test -S "$d/issuer.sock"
	[ -f "$d/node.pem" ] || die "node $n serves without a node certificate"
	say "   enrolled: the node certificate binds $(openssl x509 -in "$d/node.pem" -noout -ext subjectAltName 2>/dev/null | grep -o 'tsi:[^,]*' | tr '\n' ' ')"
	say "   tsi-issuer serving on $d/issuer.sock (resolver: unix)"
	# Privilege separated (the default where the issuer has it): the TPM and the
	# session key stay in the root signer; HTTP is parsed by a confined front end.
	if "$BIN/tsi-issuer" --help 2>&1 | grep -q -- --single-process; then
		wait_for 10 "the front end of node $n to confine itself" \
		    grep -q '"sandbox.entered"' "$d/issuer.log"
		say "   front end confined: uid $(grep -m1 '"sandbox.entered"' "$d/issuer.log" | grep -o '"uid":[0-9]*' | sed 's/.*://'), no capabilities, seccomp filter of $(grep -m1 -o '"bpf_instructions":[0-9]*' "$d/issuer.log" | sed 's/.*://') BPF instructions"
	fi
done

head1 "2.3 A third TPM, never registered, tries to enroll: expected REFUSED"
start_swtpm 3
set +e
"$BIN/tsi-issuer" enroll --config "$W/node3/issuer.conf" >"$W/node3/enroll.out" 2>"$W/node3/enroll.log"
node3_rc=$?
set -e
echo "$node3_rc" >"$W/node3/enroll.rc"
say "   tsi-issuer enroll: exit $node3_rc: $(grep '^tsi-issuer: enroll:' "$W/node3/enroll.log" | head -n1)"
tsi_node list >"$W/nodes.txt" 2>&1 || { cat "$W/nodes.txt" >&2; die "tsi node list"; }
tsi_node list --format json >"$W/nodes.json" 2>&1 || { cat "$W/nodes.json" >&2; die "tsi node list --format json"; }
[ "$quiet" = 1 ] || sed 's/^/   /' "$W/nodes.txt"

head1 "2.4 The operator approves the pending TPM: registers its EK hash in fra02"
EK3=$("$PY" -c '
import json, sys
print([n["ek_sha256"] for n in json.load(open(sys.argv[1]))["data"]["nodes"]
       if n["state"] == "pending"][0])' "$W/nodes.json") || die "no pending EK listed"
tsi_node register --ek-sha256 "$EK3" --node node3 --cluster-name hipaaCluster \
    --region eu-de --datacenter fra02 >"$W/node3/register.out" 2>&1 ||
	{ cat "$W/node3/register.out" >&2; die "tsi node register node3"; }
say "   $(cat "$W/node3/register.out")"
set +e
"$BIN/tsi-issuer" enroll --config "$W/node3/issuer.conf" >"$W/node3/enroll2.out" 2>"$W/node3/enroll2.log"
node3_approved_rc=$?
set -e
say "   tsi-issuer enroll: exit $node3_approved_rc; the node certificate binds $(openssl x509 -in "$W/node3/node.pem" -noout -ext subjectAltName 2>/dev/null | grep -o 'tsi:[^,]*' | tr '\n' ' ')"

# --- 3. The workloads --------------------------------------------------------
head1 "3. Workloads (the unix resolver)"
mkdir -p "$W/images"
# "Workload X" is one specific executable: a copy of tsi-sidecar, the
# medical-records reader. "Another image" is a different executable: the
# same program with bytes appended, so its SHA-256 differs.
cp "$BIN/tsi-sidecar" "$W/images/medical-reader"
cp "$BIN/tsi-sidecar" "$W/images/other-app"
printf '\n# another image: same code, different bytes\n' >>"$W/images/other-app"
chmod 0755 "$W/images/medical-reader" "$W/images/other-app"
DX=$(sha256sum "$W/images/medical-reader" | cut -d' ' -f1)
DO=$(sha256sum "$W/images/other-app" | cut -d' ' -f1)
say "   A host workload has no container image. With resolver = \"unix\" the issuer"
say "   identifies the caller from the socket's peer credentials (pid -> uid and"
say "   /proc/<pid>/exe) and puts the SHA-256 of the executable in the token's"
say "   'images' claim: the executable *is* the image. Nothing the caller says counts."
say "   workload X    = $W/images/medical-reader  sha256:$DX"
say "   another image = $W/images/other-app       sha256:$DO"

# --- 4. tsi-vault over TLS with the example policies -------------------------
head1 "4. tsi-vault (TLS) with the policies"
V=$W/vault
mkdir -p "$V/data" "$V/policies"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$V/tls-ca.key" -out "$V/tls-ca.pem" -days 1 \
    -subj "/CN=tsi demo TLS CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$V/tls.key" -out "$V/tls.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$V/tls.ext"
openssl x509 -req -in "$V/tls.csr" -CA "$V/tls-ca.pem" -CAkey "$V/tls-ca.key" \
    -CAcreateserial -out "$V/tls.pem" -days 1 -extfile "$V/tls.ext" 2>/dev/null
chmod 0600 "$V/tls.key" "$V/tls-ca.key"
(umask 077 && openssl rand -hex 32 | tr -d '\n' >"$V/kv.key")
# The example policies name a placeholder digest for the medical-records
# reader; the demo's reader is workload X, so the policy directory is made
# from policies/ with that digest replaced (policies/ itself is untouched).
if [ -f "$SRC/policies/20-medical.conf" ]; then
	cp "$SRC"/policies/*.conf "$V/policies/"
	sed -E -i -e "s/sha256:4f5a9c1e[0-9a-f]{56}/sha256:$DX/" \
	    -e "s/uid( *)= \[ \"1000\" \]/uid\1= [ \"$(id -u)\" ]/" \
	    "$V/policies/20-medical.conf"
	grep -q "sha256:$DX" "$V/policies/20-medical.conf" ||
		die "could not put workload X's digest into 20-medical.conf"
	grep -q "uid *= \[ \"$(id -u)\" \]" "$V/policies/20-medical.conf" ||
		die "could not put the demo's uid into 20-medical.conf"
	say "   policies: $SRC/policies/*.conf, with workload X's digest and uid $(id -u) in 20-medical.conf"
else
	cat >"$V/policies/demo.conf" <<EOF
roles = ( { name = "demo"; rules = [ "medical-records" ];
            match = { cluster-name = [ "hipaaCluster" ]; datacenter = [ "dal05" ]; };
            token_ttl = 300; } );
rules = ( { name = "medical-records"; paths = [ "secret/data/medical/*" ];
            capabilities = [ "read" ];
            match = { images = [ "sha256:$DX" ]; uid = [ "$(id -u)" ];
                      cluster-name = [ "hipaaCluster" ];
                      datacenter = [ "dal05" ]; }; } );
EOF
	say "   policies: generated demo.conf (policies/ not found)"
fi
VPORT=$(free_port)
cat >"$V/vault.conf" <<EOF
# tsi-vault of the demo
listen          = "127.0.0.1:$VPORT";
tls_cert        = "$V/tls.pem";
tls_key         = "$V/tls.key";
data_dir        = "$V/data";
policy_dir      = "$V/policies";
trust_ca        = [ "$W/node-ca.pem" ];
kv_key_file     = "$V/kv.key";
root_token_file = "$V/root-token";
kv_map_size     = 16777216;
audit_map_size  = 16777216;
EOF
"$BIN/tsi-vault" --config "$V/vault.conf" 2>"$V/vault.log" &
pids+=($!)
VAULT=https://127.0.0.1:$VPORT
wait_for 20 "tsi-vault" curl -sf --cacert "$V/tls-ca.pem" "$VAULT/v1/sys/health"
say "   tsi-vault on $VAULT (certificate from a demo TLS CA: $V/tls-ca.pem)"
grep -qE 'name *= *"demo"' "$V"/policies/*.conf >/dev/null ||
	die "no role 'demo' in the policy directory"
say "   role 'demo': cluster-name hipaaCluster, datacenter dal05 (checked at login);"
say "   rule 'medical-records-host': secret/data/medical/*, read, only for images = [workload X]"
say "   run as uid $(id -u) (a digest alone would name the program, not who runs it)"

# --- 5. The medical record ---------------------------------------------------
head1 "5. The secret: secret/data/medical/record"
ROOT=$(head -n1 "$V/root-token")
VAULT_ADDR=$VAULT VAULT_TOKEN=$ROOT VAULT_CACERT=$V/tls-ca.pem \
    "$BIN/tsi" kv put secret/medical/record "patient=Jane Doe" \
    mrn=MRN-004217 "diagnosis=J45.909 asthma" "physician=Dr. Okafor" \
    >"$V/put.out" 2>&1 || { cat "$V/put.out" >&2; die "tsi kv put"; }
say "   tsi kv put secret/medical/record patient=... mrn=... diagnosis=... physician=..."
say "   (as the admin, with the root token)"

# --- 6. Three sidecars -------------------------------------------------------
SECRETS='[{"name":"medical-record","path":"secret/data/medical/record","dest":"medical/record.json"}]'
# run_case NAME EXECUTABLE NODE
run_case() {
	local name=$1 exe=$2 node=$3 t0 t1 rc
	mkdir -p "$W/out/$name"
	t0=$(now_ms)
	set +e
	env -i PATH=/usr/bin:/bin TSI_ISSUER_SOCKET="$W/node$node/issuer.sock" \
	    VAULT_ADDR="$VAULT" VAULT_CACERT="$V/tls-ca.pem" TSI_ROLE=demo \
	    TSI_SECRETS="$SECRETS" TSI_RETRY_MAX=4 TSI_RETRY_BASE_MS=200 \
	    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
	    LSAN_OPTIONS="${LSAN_OPTIONS:-}" \
	    "$exe" --once --dest-dir "$W/out/$name" 2>"$W/out/$name.log"
	rc=$?
	set -e
	t1=$(now_ms)
	echo "$rc" >"$W/out/$name.rc"
	echo $((t1 - t0)) >"$W/out/$name.wall_ms"
}
describe_case() { # prints the outcome of a case from its log
	"$PY" - "$W/out/$1.log" "$(cat "$W/out/$1.rc")" <<'EOF'
import json, sys
rc = int(sys.argv[2])
ev = []
for line in open(sys.argv[1]):
    try: ev.append(json.loads(line))
    except ValueError: pass
for e in ev:
    if e.get("event") == "secret.written":
        print("   written: %s (format %s, version %s)" % (e["dest"], e["format"], e["version"]))
    if e.get("event") == "secret.failed":
        print("   refused: %s: %s" % (e["name"], e.get("reason", "")))
        print("            (%s after %s attempt(s))" % (e.get("final"), e.get("attempts")))
    if e.get("event") == "sidecar.done":
        print("   exit %d; written %s, failed %s" % (rc, e["written"], e["failed"]))
EOF
}

head1 "6a. Workload X on node 1 (hipaaCluster/dal05): expected RELEASED"
run_case allowed "$W/images/medical-reader" 1
[ "$quiet" = 1 ] || describe_case allowed
head1 "6b. Workload X on node 2 (hipaaCluster/wdc04): expected REFUSED"
run_case other-node "$W/images/medical-reader" 2
[ "$quiet" = 1 ] || describe_case other-node
head1 "6c. Another image on node 1: expected REFUSED"
run_case other-image "$W/images/other-app" 1
[ "$quiet" = 1 ] || describe_case other-image

head1 "6d. Refresh mode: workload X on node 1 keeps the record while it is released"
mkdir -p "$W/out/refresh"
env -i PATH=/usr/bin:/bin TSI_ISSUER_SOCKET="$W/node1/issuer.sock" \
    VAULT_ADDR="$VAULT" VAULT_CACERT="$V/tls-ca.pem" TSI_ROLE=demo \
    TSI_SECRETS="$SECRETS" TSI_REFRESH_INTERVAL=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
    LSAN_OPTIONS="${LSAN_OPTIONS:-}" \
    "$W/images/medical-reader" --dest-dir "$W/out/refresh" 2>"$W/out/refresh.log" &
refresh_pid=$!
pids+=("$refresh_pid")
refresh_file=$W/out/refresh/medical/record.json
wait_for 15 "the refreshing sidecar's first write" test -f "$refresh_file"
refresh_written=1
say "   written: $refresh_file; refreshing every 1 s (+-20% jitter)"
# The record is deleted: reads now answer 404, the secret is no longer
# released, and the sidecar removes the file at its next refresh.
VAULT_ADDR=$VAULT VAULT_TOKEN=$ROOT VAULT_CACERT=$V/tls-ca.pem \
    "$BIN/tsi" kv delete secret/medical/record >"$V/delete.out" 2>&1 ||
	{ cat "$V/delete.out" >&2; die "tsi kv delete"; }
t0=$(now_ms)
wait_for 10 "the file's removal" test ! -e "$refresh_file"
refresh_removed=1
say "   record deleted by the admin (tsi kv delete); the file was removed $(( $(now_ms) - t0 )) ms later"
t0=$(now_ms)
kill -TERM "$refresh_pid"
set +e
wait "$refresh_pid"
refresh_rc=$?
set -e
refresh_stop_ms=$(( $(now_ms) - t0 ))
say "   SIGTERM: the sidecar stopped in $refresh_stop_ms ms with exit $refresh_rc"

read -r ms_to_last ms_exec_to_last < <("$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("event") == "sidecar.done":
        print(e.get("ms_to_last_file", -1), e.get("ms_exec_to_last_file", -1))
' "$W/out/allowed.log") || true
ms_to_last=${ms_to_last:--1}
ms_exec_to_last=${ms_exec_to_last:--1}

# --- 7. The audit trail ------------------------------------------------------
# The records through the server's audit endpoint (root token), and, with
# `tsi audit`, straight from the LMDB store while the server runs.
curl -sf --cacert "$V/tls-ca.pem" -H "X-Vault-Token: $ROOT" \
    "$VAULT/v1/sys/audit/releases?limit=1000" >"$W/audit.http.json" ||
	die "GET /v1/sys/audit/releases"
"$PY" -c '
import json, sys
for r in json.load(open(sys.argv[1]))["data"]["records"]:
    print(json.dumps(r))
' "$W/audit.http.json" >"$W/audit.json"
if "$BIN/tsi" audit --help >/dev/null 2>&1; then
	HAVE_AUDIT_CLI=1
	head1 "7. Audit trail (tsi audit list, read from tsi-vault's LMDB while it runs)"
	"$BIN/tsi" audit list --data-dir "$V/data" --limit 0 --format table >"$W/audit.table" 2>"$W/audit.err" ||
		{ cat "$W/audit.err" >&2; die "tsi audit list"; }
	"$BIN/tsi" audit list --data-dir "$V/data" --limit 0 --format json >"$W/audit.json" 2>>"$W/audit.err" ||
		die "tsi audit list --format json"
	[ "$quiet" = 1 ] || cat "$W/audit.table"
else
	HAVE_AUDIT_CLI=0
	head1 "7. Audit trail (GET /v1/sys/audit/releases; tsi audit is not built)"
fi
head1 "   Each decision and the rule that made it"
"$PY" - "$W/audit.json" "$DX" "$DO" >"$W/decisions.txt" <<'EOF'
import json, sys
dx, do = "sha256:" + sys.argv[2], "sha256:" + sys.argv[3]
for line in open(sys.argv[1]):
    line = line.strip()
    if not line: continue
    r = json.loads(line)
    c = r.get("claims") or {}
    imgs = c.get("images")
    if isinstance(imgs, str):
        try: imgs = json.loads(imgs)
        except ValueError: imgs = [imgs]
    who = "workload X" if imgs == [dx] else "another image" if imgs == [do] else "root/admin" if not c else str(imgs)
    print("   #%-3s %-6s %-32s %-5s rule=%-18s %s/%s %s: %s" % (
        r.get("seq"), r.get("op"), r.get("path", ""), r.get("decision"),
        r.get("rule"), c.get("cluster-name", "-"), c.get("datacenter", "-"),
        who, r.get("reason", "")))
EOF
[ "$quiet" = 1 ] || cat "$W/decisions.txt"
if [ "$HAVE_AUDIT_CLI" = 0 ]; then
	verify=skipped
	say "   tsi audit verify: skipped (tsi audit is not built)"
elif "$BIN/tsi" audit verify --data-dir "$V/data" >"$W/audit.verify" 2>&1; then
	verify=ok
	say "   tsi audit verify: ok ($(head -n1 "$W/audit.verify"))"
else
	verify=failed
	say "   tsi audit verify: FAILED ($(head -n1 "$W/audit.verify"))"
fi

if [ "$HAVE_AUDIT_CLI" = 1 ]; then
	head1 "   tsi-attest's audit: every enrollment decision (tsi audit list --data-dir)"
	"$BIN/tsi" audit list --data-dir "$A/data" --limit 0 --format table >"$W/attest-audit.table" 2>"$W/attest-audit.err" ||
		{ cat "$W/attest-audit.err" >&2; die "tsi audit list (tsi-attest)"; }
	[ "$quiet" = 1 ] || cat "$W/attest-audit.table"
fi

# --- 8. Results --------------------------------------------------------------
stop_all
cat >"$W/results.env" <<EOF
ALLOWED_RC=$(cat "$W/out/allowed.rc")
OTHER_NODE_RC=$(cat "$W/out/other-node.rc")
OTHER_IMAGE_RC=$(cat "$W/out/other-image.rc")
MS_TO_LAST_FILE=$ms_to_last
MS_EXEC_TO_LAST_FILE=$ms_exec_to_last
ALLOWED_WALL_MS=$(cat "$W/out/allowed.wall_ms")
AUDIT_VERIFY=$verify
AUDIT_JSON=$W/audit.json
DIGEST_X=sha256:$DX
DIGEST_OTHER=sha256:$DO
VAULT_DATA=$V/data
RECORD_FILE=$W/out/allowed/medical/record.json
REFRESH_WRITTEN=$refresh_written
REFRESH_REMOVED=$refresh_removed
REFRESH_RC=$refresh_rc
REFRESH_STOP_MS=$refresh_stop_ms
ATTEST_DATA=$A/data
NODE3_ENROLL_RC=$node3_rc
NODE3_APPROVED_RC=$node3_approved_rc
NODES_JSON=$W/nodes.json
EOF
head1 "8. Summary"
ok=1
check() { # check DESCRIPTION CONDITION...
	local what=$1
	shift
	if "$@"; then
		printf '   ok    %s\n' "$what"
	else
		printf '   WRONG %s\n' "$what"
		ok=0
	fi
}
check "nodes 1 and 2 enrolled themselves (node certificates from tsi-attest)" \
    test -s "$W/node1/node.pem" -a -s "$W/node2/node.pem"
check "the unregistered TPM was refused (exit 1) and is listed as pending" \
    test "$node3_rc" = 1 -a "$(grep -c '"state": *"pending"' "$W/nodes.json")" -ge 1
check "once approved (registered in fra02), the third TPM enrolled" \
    test "$node3_approved_rc" = 0 -a -s "$W/node3/node.pem"
check "workload X on node 1 got the record (exit 0, file mode 0400)" \
    test "$(cat "$W/out/allowed.rc")" = 0 -a "$(stat -c %a "$W/out/allowed/medical/record.json" 2>/dev/null)" = 400
check "workload X on node 2 was refused (exit 1, no file)" \
    test "$(cat "$W/out/other-node.rc")" = 1 -a ! -e "$W/out/other-node/medical/record.json"
check "another image on node 1 was refused (exit 1, no file)" \
    test "$(cat "$W/out/other-image.rc")" = 1 -a ! -e "$W/out/other-image/medical/record.json"
check "refresh mode removed the file once the record was deleted" \
    test "$refresh_written" = 1 -a "$refresh_removed" = 1
check "refresh mode ended cleanly within a second of SIGTERM" \
    test "$refresh_rc" = 0 -a "$refresh_stop_ms" -lt 1000
check "the audit chain verifies (or tsi audit is not built)" test "$verify" != failed
printf '   sidecar start -> last secret on disk: %s ms from main(), %s ms from exec\n' \
    "$ms_to_last" "$ms_exec_to_last"
printf '   (to the fsync of the directory after the rename; from exec includes loading\n'
printf '   the program); the whole run, exec to exit, took %s ms of wall time\n' \
    "$(cat "$W/out/allowed.wall_ms")"
say "   everything started here is now stopped; logs were in $W"
[ "$ok" = 1 ] || exit 1
exit 0
