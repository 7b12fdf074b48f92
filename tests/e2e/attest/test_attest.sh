#!/usr/bin/env bash
# End to end, attested enrollment: runs scripts/demo-flow.sh (which makes
# three swtpm TPMs with EK certificates from a local CA each, starts
# tsi-attest over TLS, registers nodes 1 and 2, lets their tsi-issuer run
# enroll itself, tries to enroll the unregistered third TPM, then approves it
# by its pending EK hash and enrolls it), then checks
# what tsi-attest decided and recorded: the node certificates carry the
# inventory's locations and chain to the node CA tsi-vault trusts, the tokens
# minted with them log in (node 1 released, node 2 refused by location), the
# third TPM was refused with a clear message and is pending, and tsi-attest's
# audit log holds every decision with the EK hashes, its chain intact.
set -euo pipefail
BIN=${TSI_BIN_DIR:?TSI_BIN_DIR not set}
SRC=${TSI_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
PY=/usr/bin/python3
base=$(mktemp -d /tmp/tsi-e2e-attest.XXXXXX)
# The issuer's front end (front_user) reads attest_ca below it.
chmod 0755 "$base"
W=$base/flow
trap 'rm -rf "$base"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
"$BIN/tsi" audit --help >/dev/null 2>&1 || fail "tsi audit is not built"

set +e
TSI_FLOW_DIR=$W TSI_FLOW_QUIET=1 bash "$SRC/scripts/demo-flow.sh" "$BIN" >"$base/flow.out" 2>&1
rc=$?
set -e
cat "$base/flow.out"
if [ ! -f "$W/results.env" ]; then
	for f in "$W"/attest/attest.log "$W"/node*/issuer.log "$W"/node3/enroll.log; do
		[ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }
	done
	fail "the flow did not finish (exit $rc)"
fi
# shellcheck disable=SC1091
. "$W/results.env"
[ "$rc" -eq 0 ] || fail "demo-flow exit $rc"

# The EK identity: SHA-256 of the DER SubjectPublicKeyInfo of each EK
# certificate, computed here independently of tsi.
ekhash() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der |
		sha256sum | cut -d' ' -f1
}
EK1=$(ekhash "$W/node1/ek/ek-rsa2048.crt")
EK2=$(ekhash "$W/node2/ek/ek-rsa2048.crt")
EK3=$(ekhash "$W/node3/ek/ek-rsa2048.crt")
[ "$EK1" != "$EK2" ] && [ "$EK2" != "$EK3" ] || fail "two TPMs share an EK"

# 1. The node certificates: signed by the node CA tsi-attest published (the
#    one tsi-vault trusts), for the key in that TPM, with the inventory's
#    location and nothing else.
for n in 1 2; do
	openssl verify -CAfile "$W/node-ca.pem" "$W/node$n/node.pem" >/dev/null 2>&1 ||
		fail "node $n's certificate does not verify to GET /v1/node-ca"
done
openssl x509 -in "$W/node-ca.pem" -noout -fingerprint -sha256 >"$base/ca1"
openssl x509 -in "$W/ca/ca.pem" -noout -fingerprint -sha256 >"$base/ca2"
cmp -s "$base/ca1" "$base/ca2" || fail "GET /v1/node-ca is not the configured node CA"
sans() { openssl x509 -in "$1" -noout -ext subjectAltName | grep -o 'tsi:[^,]*' | sort | tr '\n' ' '; }
[ "$(sans "$W/node1/node.pem")" = "tsi:cluster-name:hipaaCluster tsi:datacenter:dal05 tsi:node:node1 tsi:region:us-south " ] ||
	fail "node 1 SANs: $(sans "$W/node1/node.pem")"
[ "$(sans "$W/node2/node.pem")" = "tsi:cluster-name:hipaaCluster tsi:datacenter:wdc04 tsi:node:node2 tsi:region:us-east " ] ||
	fail "node 2 SANs: $(sans "$W/node2/node.pem")"
for n in 1 2; do
	grep -q '"event":"enroll.done"' "$W/node$n/issuer.log" ||
		{ cat "$W/node$n/issuer.log"; fail "node $n: no enroll.done in the issuer's log"; }
done
# The third TPM got a certificate only after the operator approved it.
[ "$NODE3_APPROVED_RC" = 0 ] || { cat "$W/node3/enroll2.log"; fail "approved node 3: exit $NODE3_APPROVED_RC"; }
openssl verify -CAfile "$W/node-ca.pem" "$W/node3/node.pem" >/dev/null 2>&1 ||
	fail "node 3's certificate does not verify to the node CA"
[ "$(sans "$W/node3/node.pem")" = "tsi:cluster-name:hipaaCluster tsi:datacenter:fra02 tsi:node:node3 tsi:region:eu-de " ] ||
	fail "node 3 SANs: $(sans "$W/node3/node.pem")"

# 2. Their tokens log in to tsi-vault as before: released on node 1 only.
[ "$ALLOWED_RC" = 0 ] || { cat "$W/out/allowed.log"; fail "workload X on node 1: exit $ALLOWED_RC"; }
[ -f "$RECORD_FILE" ] || fail "no record on node 1"
[ "$OTHER_NODE_RC" = 1 ] || fail "workload X on node 2: exit $OTHER_NODE_RC, want 1"
grep -q '"reason":"login: HTTP 403' "$W/out/other-node.log" ||
	{ cat "$W/out/other-node.log"; fail "node 2 not refused at login"; }
"$PY" - "$AUDIT_JSON" <<'PYEOF' || fail "tsi-vault's audit: logins"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
logins = [(r["decision"], (r.get("claims") or {}).get("datacenter"),
           (r.get("claims") or {}).get("node")) for r in recs if r["op"] == "login"]
assert ("allow", "dal05", "node1") in logins, logins
assert ("deny", "wdc04", "node2") in logins, logins
assert not any(d == "allow" and dc != "dal05" for d, dc, _ in logins), logins
PYEOF

# 3. The third TPM: refused at once with a reason that says what to do,
#    exit 1, and listed as pending with its EK hash for an admin to approve.
[ "$NODE3_ENROLL_RC" = 1 ] || { cat "$W/node3/enroll.log"; fail "tsi-issuer enroll on node 3: exit $NODE3_ENROLL_RC, want 1"; }
msg=$(grep '^tsi-issuer: enroll:' "$W/node3/enroll.log" || true)
[ -n "$msg" ] || { cat "$W/node3/enroll.log"; fail "no 'tsi-issuer: enroll:' message"; }
echo "$msg" | grep -q 'not registered' || fail "node 3's message does not say the EK is not registered: $msg"
echo "$msg" | grep -q 'tsi node register' || fail "node 3's message does not say how to approve it: $msg"
"$PY" - "$NODES_JSON" "$EK1" "$EK2" "$EK3" <<'PYEOF' || fail "tsi node list"
import json, sys
nodes = json.load(open(sys.argv[1]))["data"]["nodes"]
ek1, ek2, ek3 = sys.argv[2:5]
by = {n["ek_sha256"]: n for n in nodes}
assert len(nodes) == 3, nodes
n1, n2, n3 = by[ek1], by[ek2], by[ek3]
assert (n1["node"], n1["state"], n1["cluster-name"], n1["datacenter"]) == \
    ("node1", "trusted", "hipaaCluster", "dal05"), n1
assert (n2["node"], n2["state"], n2["cluster-name"], n2["datacenter"]) == \
    ("node2", "trusted", "hipaaCluster", "wdc04"), n2
assert n3["state"] == "pending" and n3["node"] is None, n3
PYEOF
grep -q 'pending' "$W/nodes.txt" || fail "the table of tsi node list shows no pending TPM"

# 4. tsi-attest's audit log (read from its data dir, the server stopped):
#    the registrations, both enrollments (start and finish) with the EK and
#    the certificate serial, the third TPM's refusal with its EK hash, and
#    the chain intact.
"$BIN/tsi" audit verify --data-dir "$ATTEST_DATA" >"$base/verify.out" 2>&1 ||
	{ cat "$base/verify.out"; fail "tsi audit verify on tsi-attest's data dir"; }
"$BIN/tsi" audit list --data-dir "$ATTEST_DATA" --limit 0 --format json >"$base/attest-audit.json" ||
	fail "tsi audit list on tsi-attest's data dir"
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
"$PY" - "$base/attest-audit.json" "$EK1" "$EK2" "$EK3" \
    "$(serial "$W/node1/node.pem")" "$(serial "$W/node2/node.pem")" <<'PYEOF' || fail "tsi-attest's audit"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ek1, ek2, ek3, s1, s2 = sys.argv[2:7]
for i, r in enumerate(recs):
    assert r.get("seq") == i + 1, r
    assert r.get("reason"), r
def c(r): return r.get("claims") or {}
def find(op, dec, ek):
    return [r for r in recs if r["op"] == op and r["decision"] == dec and
            c(r).get("ek_sha256") == ek]
for ek, node, dc, serial in ((ek1, "node1", "dal05", s1), (ek2, "node2", "wdc04", s2)):
    reg = find("node.register", "allow", ek)
    assert len(reg) == 1 and c(reg[0]).get("node") == node, (node, reg)
    st = find("enroll.start", "allow", ek)
    fin = find("enroll.finish", "allow", ek)
    assert len(st) == 1 and len(fin) == 1, (node, st, fin)
    assert st[0]["seq"] > reg[0]["seq"] and fin[0]["seq"] > st[0]["seq"], (reg, st, fin)
    f = c(fin[0])
    assert f.get("node") == node and f.get("datacenter") == dc and \
        f.get("cluster-name") == "hipaaCluster", fin
    assert f.get("ak_name"), fin
    cs = str(f.get("cert_serial", "")).lower().lstrip("0")
    assert cs and cs == serial.lstrip("0"), (cs, serial)
    assert r"nodes/" + node == fin[0].get("path"), fin
# The third TPM: refused at the first step while unregistered; enrolled
# only after the operator registered it (in fra02).
deny = find("enroll.start", "deny", ek3)
assert len(deny) == 1, [r for r in recs if c(r).get("ek_sha256") == ek3]
assert "not registered" in deny[0]["reason"], deny
reg3 = find("node.register", "allow", ek3)
fin3 = find("enroll.finish", "allow", ek3)
assert len(reg3) == 1 and len(fin3) == 1, [r for r in recs if c(r).get("ek_sha256") == ek3]
assert deny[0]["seq"] < reg3[0]["seq"] < fin3[0]["seq"], (deny, reg3, fin3)
assert c(fin3[0]).get("node") == "node3" and c(fin3[0]).get("datacenter") == "fra02", fin3
assert [r["seq"] for r in recs if r["decision"] != "allow"] == [deny[0]["seq"]], \
    [r for r in recs if r["decision"] != "allow"]
print("tsi-attest audit: %d records" % len(recs))
PYEOF
# Nothing secret in tsi-attest's log or audit: the admin token.
tok=$(head -n1 "$W/attest/admin-tokens")
! grep -qF -- "$tok" "$W/attest/attest.log" "$base/attest-audit.json" ||
	fail "the admin token appears in tsi-attest's log or audit"

# 5. Everything the flow started is gone.
if pgrep -f "$W" >/dev/null; then
	pgrep -af "$W" >&2
	fail "processes of the flow still running"
fi
echo "ok: e2e attest: 2 nodes enrolled (dal05, wdc04), tokens released on node 1 only," \
    "the unregistered TPM refused and pending, then approved (fra02) and enrolled," \
    "tsi-attest's audit chain intact"
