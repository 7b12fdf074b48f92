#!/usr/bin/env bash
# `tsi ca` and `tsi token` as a user drives them: exit codes 0/1/2, output
# on the right stream, one refusal line naming the reason.
set -euo pipefail
BIN=${TSI_BIN_DIR:?TSI_BIN_DIR not set}
TBIN=${TSI_TEST_BIN_DIR:?TSI_TEST_BIN_DIR not set}
TSI=$BIN/tsi
MINT=$TBIN/tsi_test_mint
tmp=$(mktemp -d /tmp/tsi-token-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect CODE CMD... : runs CMD, stdout to $tmp/out, stderr to $tmp/err
expect() {
	local want=$1; shift
	set +e
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	set -e
	[ "$got" = "$want" ] || { cat "$tmp/err" >&2; fail "'$*' exited $got, want $want"; }
}

# --help everywhere, exit 0.
for c in "ca --help" "ca init --help" "ca sign --help" "token --help" \
	"token decode --help" "token verify --help"; do
	expect 0 $TSI $c
	grep -q usage "$tmp/out" || fail "$c: no usage text"
done

# ca init: files, modes, no overwrite.
expect 0 "$TSI" ca init --out "$tmp/ca" --days 30
[ "$(stat -c %a "$tmp/ca/ca.key")" = 600 ] || fail "ca.key mode"
grep -q "BEGIN PRIVATE KEY" "$tmp/ca/ca.key" || fail "ca.key not PKCS#8 PEM"
sum=$(sha256sum "$tmp/ca/ca.key")
expect 1 "$TSI" ca init --out "$tmp/ca"
grep -q "refusing to overwrite" "$tmp/err" || fail "overwrite message"
[ "$(sha256sum "$tmp/ca/ca.key")" = "$sum" ] || fail "ca.key changed"
expect 2 "$TSI" ca init
expect 2 "$TSI" ca init --out "$tmp/x" --days 0
expect 2 "$TSI" ca frobnicate

# ca sign: node key made by openssl, CSR by openssl.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/node.key" 2>/dev/null
openssl req -new -key "$tmp/node.key" -subj /CN=whatever -out "$tmp/node.csr"
expect 0 "$TSI" ca sign --ca "$tmp/ca" --cluster-name hipaaCluster --region eu-de \
	--datacenter dal05 --node node-1 "$tmp/node.csr"
cp "$tmp/out" "$tmp/node.pem"
openssl verify -CAfile "$tmp/ca/ca.pem" "$tmp/node.pem" >/dev/null || fail "node cert does not chain"
openssl x509 -in "$tmp/node.pem" -noout -ext subjectAltName | grep -q "URI:tsi:region:eu-de" ||
	fail "region SAN missing"
expect 2 "$TSI" ca sign --ca "$tmp/ca" --cluster-name c --region "eu:de" --datacenter d "$tmp/node.csr"
grep -q "location values" "$tmp/err" || fail "bad location message"
expect 2 "$TSI" ca sign --ca "$tmp/ca" --cluster-name c --region r "$tmp/node.csr"
expect 1 "$TSI" ca sign --ca "$tmp/ca" --cluster-name c --region r --datacenter d /dev/null
# An encrypted CA key: refused without prompting for a passphrase.
mkdir "$tmp/encca"
openssl pkey -in "$tmp/ca/ca.key" -aes256 -passout pass:x -out "$tmp/encca/ca.key"
cp "$tmp/ca/ca.pem" "$tmp/encca/ca.pem"
expect 1 "$TSI" ca sign --ca "$tmp/encca" --cluster-name c --region r --datacenter d "$tmp/node.csr" </dev/null
grep -q "no unencrypted PEM private key" "$tmp/err" || fail "encrypted key message"
expect 1 "$TSI" ca sign --ca "$tmp/nonexistent" --cluster-name c --region r --datacenter d "$tmp/node.csr"
grep -q "cannot read the CA" "$tmp/err" || fail "missing CA message"
# A CSR whose signature was damaged.
/usr/bin/python3 - "$tmp/node.csr" "$tmp/bad.csr" <<'PY'
import base64, sys
lines = open(sys.argv[1]).read().split("\n")
der = bytearray(base64.b64decode("".join(l for l in lines if l and not l.startswith("-----"))))
der[-5] ^= 0x01  # inside s of the ECDSA signature
b64 = base64.b64encode(bytes(der)).decode()
with open(sys.argv[2], "w") as f:
    f.write("-----BEGIN CERTIFICATE REQUEST-----\n")
    f.write("\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)))
    f.write("\n-----END CERTIFICATE REQUEST-----\n")
PY
openssl req -in "$tmp/bad.csr" -noout || fail "damaged CSR no longer parses"
openssl req -in "$tmp/bad.csr" -noout -verify 2>&1 | grep -q "verify OK" && fail "damaged CSR still verifies"
expect 1 "$TSI" ca sign --ca "$tmp/ca" --cluster-name c --region r --datacenter d "$tmp/bad.csr"

# Tokens.
now=$(date +%s)
claims() { # iat exp [aud]
	printf '{"sub":"spiffe://tsi.example/uid/1000","aud":"%s","iat":%d,"exp":%d,"cluster-name":"hipaaCluster","region":"eu-de","datacenter":"dal05","node":"node-1"}' \
		"${3:-tsi-vault}" "$1" "$2"
}
good=$("$MINT" mint --key "$tmp/node.key" --chain "$tmp/node.pem" --session-ttl 600 \
	--claims "$(claims "$now" $((now + 300)))")
expect 0 "$TSI" token verify --ca "$tmp/ca/ca.pem" "$good"
/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert c["node"]=="node-1"' "$tmp/out" ||
	fail "verify output is not the claims"
[ ! -s "$tmp/err" ] || fail "verify wrote to stderr on success"
# From stdin, with a trailing newline.
set +e; printf '%s\n' "$good" | "$TSI" token verify --ca "$tmp/ca/ca.pem" - >/dev/null 2>&1; rc=$?; set -e
[ $rc = 0 ] || fail "verify from stdin exited $rc"
# Later than its lifetime: refused, exit 1, one line naming the reason.
expect 1 "$TSI" token verify --ca "$tmp/ca/ca.pem" --now $((now + 400)) "$good"
[ "$(wc -l <"$tmp/err")" = 1 ] || fail "refusal is not one line"
grep -q "^tsi: token refused: expired: " "$tmp/err" || fail "refusal does not name expired"
[ ! -s "$tmp/out" ] || fail "refused token printed claims"
# Past the session certificate's 600 s: the chain fails first.
expect 1 "$TSI" token verify --ca "$tmp/ca/ca.pem" --now $((now + 1000)) "$good"
grep -q "^tsi: token refused: cert_expired: " "$tmp/err" || fail "cert_expired not named"
expect 1 "$TSI" token verify --ca "$tmp/ca/ca.pem" --aud other "$good"
grep -q "bad_aud" "$tmp/err" || fail "bad_aud not named"
# Another CA is not trusted.
expect 0 "$TSI" ca init --out "$tmp/ca2"
expect 1 "$TSI" token verify --ca "$tmp/ca2/ca.pem" "$good"
grep -q "untrusted_chain" "$tmp/err" || fail "untrusted_chain not named"
# Both CAs: trusted.
expect 0 "$TSI" token verify --ca "$tmp/ca2/ca.pem" --ca "$tmp/ca/ca.pem" "$good"
# Revoked node certificate.
serial=$(openssl x509 -in "$tmp/node.pem" -noout -serial)
expect 1 "$TSI" token verify --ca "$tmp/ca/ca.pem" --revoke "$serial" "$good"
grep -q "cert_revoked" "$tmp/err" || fail "cert_revoked not named"
fp=$(openssl x509 -in "$tmp/node.pem" -noout -fingerprint -sha256 | cut -d= -f2)
expect 1 "$TSI" token verify --ca "$tmp/ca/ca.pem" --revoke "$fp" "$good"
grep -q "cert_revoked" "$tmp/err" || fail "cert_revoked (fingerprint) not named"
# Garbage.
expect 1 "$TSI" token verify --ca "$tmp/ca/ca.pem" "not.a.token"
grep -q "malformed" "$tmp/err" || fail "malformed not named"
head -c 20000 /dev/zero | tr '\0' 'a' >"$tmp/big"
set +e; "$TSI" token verify --ca "$tmp/ca/ca.pem" - <"$tmp/big" >/dev/null 2>"$tmp/err"; rc=$?; set -e
[ $rc = 1 ] && grep -q too_large "$tmp/err" || fail "20 KB token not refused as too_large ($rc)"
# Bad usage: exit 2.
expect 2 "$TSI" token verify "$good"
expect 2 "$TSI" token verify --ca "$tmp/ca/ca.pem"
expect 2 "$TSI" token verify --ca "$tmp/ca/ca.pem" --skew x "$good"
expect 2 "$TSI" token verify --ca "$tmp/nonexistent.pem" "$good"
expect 2 "$TSI" token verify --ca "$tmp/ca/ca.pem" --revoke "zz" "$good"
expect 2 "$TSI" token frob

# decode: marked unverified, works on a token no CA would accept.
expect 0 "$TSI" token decode "$good"
/usr/bin/python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
assert d["verified"] is False and "UNVERIFIED" in d["warning"]
assert d["header"]["alg"]=="ES256" and len(d["header"]["x5c"])==2
assert d["claims"]["region"]=="eu-de"' "$tmp/out" || fail "decode output"
expect 1 "$TSI" token decode "not-a-token"
expect 2 "$TSI" token decode
echo PASS
