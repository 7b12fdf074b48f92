#!/usr/bin/env bash
# `tsi policy check` and `tsi policy eval`: outputs and exit codes, on the
# shipped policies/, the test set, and a broken directory.
set -uo pipefail
src=${TSI_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
tsi=${TSI_BIN_DIR:-$src/build/bin}/tsi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# run NAME WANT_RC CMD...: runs CMD, keeps stdout/stderr, checks the code.
run() {
  local name=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, want $want"; sed 's/^/  | /' "$tmp/out" "$tmp/err"
    fails=$((fails + 1))
    return 1
  fi
  echo "ok   $name"
}
# has NAME FILE TEXT: FILE contains the fixed string TEXT.
has() {
  if ! grep -qF -- "$3" "$tmp/$2"; then
    echo "FAIL $1: '$3' not in $2:"; sed 's/^/  | /' "$tmp/$2"
    fails=$((fails + 1))
  fi
}

run "help" 0 "$tsi" policy --help && has "help" out "tsi policy check DIR"
run "no subcommand" 2 "$tsi" policy
run "unknown subcommand" 2 "$tsi" policy frobnicate
run "check usage" 2 "$tsi" policy check
run "shipped policies pass" 0 "$tsi" policy check "$src/policies" && has "shipped summary" out "ok: "
run "test policies pass" 0 "$tsi" policy check "$src/tests/data/policy"
run "missing dir" 2 "$tsi" policy check "$tmp/nope" && has "missing dir" err "cannot open policy directory"

mkdir "$tmp/bad"
cat >"$tmp/bad/a.conf" <<'CONF'
rules = (
  { name = "r1"; paths = [ "secret/data/x" ];
    capabilities = [ "read", "sudo" ]; },
  { name = "r2"; paths = [ "kv/x" ]; capabilities = [ "read" ]; }
);
CONF
cat >"$tmp/bad/b.conf" <<'CONF'
roles = ( { name = "r"; rules = [ "r1", "ghost" ]; token_ttl = 0; } );
CONF
run "bad dir exits 2" 2 "$tsi" policy check "$tmp/bad"
has "bad: capability" err "$tmp/bad/a.conf:3: rule 'r1': unknown capability 'sudo'"
has "bad: mount" err "$tmp/bad/a.conf:4: rule 'r2': path 'kv/x' is not under a known mount"
has "bad: ttl" err "$tmp/bad/b.conf:1: role 'r': 'token_ttl' must be between 1 and 86400"
has "bad: ref" err "$tmp/bad/b.conf:1: role 'r': unknown rule 'ghost'"
has "bad: count" err "$tmp/bad: 4 errors"
if [ "$(grep -c ':[0-9]*: ' "$tmp/err")" -ne 4 ]; then
  echo "FAIL bad: want 4 file:line lines"; fails=$((fails + 1))
fi

demo_claims() { # region datacenter images...
  local region=$1 dc=$2; shift 2
  local imgs; imgs=$(printf '"%s",' "$@"); imgs=${imgs%,}
  printf '{"sub":"spiffe://tsi.example/ns/medical/sa/reader","aud":"tsi-vault",
"images":[%s],"cluster-name":"hipaaCluster","region":"%s","datacenter":"%s",
"namespace":"medical","service-account":"reader"}\n' "$imgs" "$region" "$dc"
}
X=sha256:4f5a9c1e2b7d3a6f8e0c4b2a1d9f7e5c3b1a0f8e6d4c2b0a9f7e5d3c1b0a8f6e
Y=sha256:0000000000000000000000000000000000000000000000000000000000000001
demo_claims us-south dal05 "$X" >"$tmp/x.json"
demo_claims us-south dal05 "$X" "$Y" >"$tmp/xy.json"
demo_claims us-south wdc01 "$X" >"$tmp/wdc.json"
demo_claims eu-de dal05 "$X" >"$tmp/eu.json"
P="$src/policies"

run "eval allow" 0 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/medical/r1 --role demo
has "eval allow" out "allow"; has "eval allow rule" out "rule: medical-records"
run "eval allow without role" 0 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/medical/r1
run "eval extra image denied" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/xy.json" --path secret/data/medical/r1 --role demo
has "eval extra image" out "rule: default-deny"; has "eval extra image reason" out "is not allowed"
run "eval bound claims" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/wdc.json" --path secret/data/medical/r1 --role demo
has "eval bound claims" out "rule: role:demo"
run "eval capability mismatch" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/medical/r1 --capability update --role demo
run "eval geofence" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/eu/x --role demo
has "eval geofence" out "rule: never-outside-eu"
run "eval eu app" 0 "$tsi" policy eval --dir "$P" --claims "$tmp/eu.json" --path secret/data/eu/x --capability create --role eu-apps
run "eval location template" 0 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/tsi-rcn/us-south/hipaaCluster/medical/db --role demo
run "eval json" 0 "$tsi" policy eval --json --dir "$P" --claims - --path secret/data/medical/r1 <"$tmp/x.json"
has "eval json" out '{"decision":"allow","rule":"medical-records"'
run "eval unknown role" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/medical/r1 --role nobody
has "eval unknown role" out "unknown role"

# The auditor role is bound to a location (cluster-name, datacenter from the
# node certificate), not only to namespace and service account, which root
# on any trusted node can mint.
auditor_claims() { # cluster datacenter
  printf '{"sub":"spiffe://tsi.example/ns/audit/sa/auditor","aud":"tsi-vault",
"cluster-name":"%s","region":"us-south","datacenter":"%s",
"namespace":"audit","service-account":"auditor"}\n' "$1" "$2"
}
auditor_claims hipaaCluster dal05 >"$tmp/aud.json"
auditor_claims rogueCluster dal05 >"$tmp/aud-cluster.json"
auditor_claims hipaaCluster wdc01 >"$tmp/aud-dc.json"
printf '{"namespace":"audit","service-account":"auditor"}\n' >"$tmp/aud-bare.json"
run "auditor at its location" 0 "$tsi" policy eval --dir "$P" --claims "$tmp/aud.json" --path sys/audit/releases --capability audit --role auditor
run "auditor from another cluster" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/aud-cluster.json" --path sys/audit/releases --capability audit --role auditor
has "auditor from another cluster" out "rule: role:auditor"
run "auditor from another datacenter" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/aud-dc.json" --path sys/audit/releases --capability audit --role auditor
run "auditor without a location" 3 "$tsi" policy eval --dir "$P" --claims "$tmp/aud-bare.json" --path sys/audit/releases --capability audit --role auditor
# Every shipped role binds a location claim (cluster-name, region or
# datacenter) or a claim value only its location yields.
for role in $(sed -n 's/^ *{ *name *= *"\([^"]*\)".*/\1/p' "$P/10-roles.conf"); do
  block=$(awk -v r="\"$role\"" 'index($0, "name = " r) { p = 1 } p { print } p && /}[;,]? *$/ && !/match *= *{[^}]*$/ { exit }' "$P/10-roles.conf")
  case $role in tsi-role-*) continue ;; esac  # location is in their path templates
  if ! printf '%s' "$block" | grep -qE 'cluster-name|region|datacenter'; then
    echo "FAIL role $role binds no location"; fails=$((fails + 1))
  fi
done

# Guardrails bind the root token: the shipped geofence is one.
run "check counts guardrails" 0 "$tsi" policy check "$P" && has "check counts guardrails" out "(1 guardrail)"
run "root eval geofence" 3 "$tsi" policy eval --dir "$P" --root --path secret/data/eu/x --capability create
has "root eval geofence" out "rule: never-outside-eu"
run "root eval elsewhere" 0 "$tsi" policy eval --dir "$P" --root --path secret/data/medical/r1
has "root eval elsewhere" out "rule: root"
run "root eval in the EU" 0 "$tsi" policy eval --dir "$P" --root --claims "$tmp/eu.json" --path secret/data/eu/x
run "root eval with a role" 2 "$tsi" policy eval --dir "$P" --root --role demo --path secret/data/eu/x

echo '{"images": [' >"$tmp/broken.json"
run "eval bad claims" 2 "$tsi" policy eval --dir "$P" --claims "$tmp/broken.json" --path secret/data/medical/r1
echo '["not", "an", "object"]' >"$tmp/array.json"
run "eval claims not an object" 2 "$tsi" policy eval --dir "$P" --claims "$tmp/array.json" --path secret/data/medical/r1
run "eval missing path" 2 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json"
run "eval unknown capability" 2 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/medical/r1 --capability sudo
run "eval unknown option" 2 "$tsi" policy eval --dir "$P" --claims "$tmp/x.json" --path secret/data/medical/r1 --bogus
run "eval bad policy dir" 2 "$tsi" policy eval --dir "$tmp/bad" --claims "$tmp/x.json" --path secret/data/medical/r1
has "eval bad policy dir" err "a.conf:3: "

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all passed"
