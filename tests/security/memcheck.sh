#!/usr/bin/env bash
# Runs a chosen set of unit and integration test binaries under valgrind
# memcheck (leaks, invalid reads/writes, uninitialised values). Integration
# tests start tsi-vault through a wrapper, so the server runs under memcheck
# too: its errors make it exit 1, which the test's clean-stop assertion sees.
#   tests/security/memcheck.sh [BUILD_DIR]      (default: build)
# Exit 0 when every binary is clean. Logs: BUILD_DIR/memcheck/*.log
# Runtime here: about 10 minutes (2 shared cores; the two integration tests
# take 2-3 minutes each under memcheck), so it is a documented command, not
# part of .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
build=${1:-build}
[ -d "$build/tests" ] || { echo "memcheck: build $build first" >&2; exit 2; }
build=$(cd "$build" && pwd)
out=$build/memcheck
rm -rf "$out"
mkdir -p "$out/bin"
vg=(valgrind --tool=memcheck --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite,indirect --track-origins=no
    --num-callers=30 --suppressions="$src/tests/security/memcheck.supp")
# tsi-vault under memcheck, for the integration tests (found via TSI_BIN_DIR).
for p in tsi-vault; do
  cat >"$out/bin/$p" <<WRAP
#!/bin/sh
exec ${vg[*]} --log-file=$out/$p.%p.log $build/bin/$p "\$@"
WRAP
  chmod +x "$out/bin/$p"
done
for p in tsi tsi-issuer tsi-sidecar tsi-injector; do
  [ -e "$build/bin/$p" ] && ln -sf "$build/bin/$p" "$out/bin/$p"
done
# token_test_verify is left out: it builds certificates against the real
# clock but verifies at the time its fixture was made, and under memcheck's
# ~50x slowdown the two drift apart by more than its margins (e.g. a
# certificate that expired 10 s ago still looks valid). A test artefact, not
# a library bug; the same binary is clean under ASan in CI. Its threads are
# now joined before any assertion, so a failure no longer reads freed memory.
unit=(core_test_buf core_test_config core_test_err core_test_log
      token_test_b64url token_test_signer x509_test_ca
      policy_test_policy_parse policy_test_policy_glob policy_test_policy_cases
      audit_test_audit sidecar_test_spec sidecar_test_render
      sidecar_test_settings injector_test_injector_core)
integ=(vault_test_vault_server vault_test_vault_policy)
fail=0
t0=$(date +%s)
run() {
  local t=$1 binpath=$2
  local s=$(date +%s)
  if TSI_SOURCE_DIR=$src TSI_BIN_DIR=$binpath CMOCKA_MESSAGE_OUTPUT=STDOUT \
     "${vg[@]}" --log-file="$out/$t.log" "$build/tests/$t" >"$out/$t.out" 2>&1; then
    echo "memcheck: $t: clean ($(( $(date +%s) - s ))s)"
  else
    echo "memcheck: $t: FAILED (see $out/$t.log, $out/$t.out)"
    fail=1
  fi
}
for t in "${unit[@]}"; do
  [ -x "$build/tests/$t" ] && run "$t" "$build/bin"
done
for t in "${integ[@]}"; do
  [ -x "$build/tests/$t" ] && run "$t" "$out/bin"
done
# Server logs: any error reported by memcheck in tsi-vault.
for l in "$out"/tsi-vault.*.log; do
  [ -e "$l" ] || continue
  if ! grep -q "ERROR SUMMARY: 0 errors" "$l"; then
    echo "memcheck: tsi-vault: errors in $l"
    fail=1
  fi
done
echo "memcheck: $(ls "$out"/tsi-vault.*.log 2>/dev/null | wc -l) tsi-vault runs checked; total $(( $(date +%s) - t0 ))s"
exit $fail
