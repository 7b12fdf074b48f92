#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (unit, integration,
# e2e, security). `--sanitize` builds with ASan+UBSan into build-asan/.
# Extra arguments after `--` go to ctest (e.g. `-- -L unit`).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "usage: scripts/test.sh [--sanitize] [-- ctest args]" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/setup.sh

opts=(-DTSI_TESTS=ON)
[ "${CI:-}" = "true" ] && opts+=(-DTSI_WERROR=ON)
if [ "$sanitize" -eq 1 ]; then
  dir=build-asan
  opts+=(-DTSI_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
else
  dir=build
  # The benchmark programs are built too (not run: bench/run does that), so
  # that a change that breaks them shows here.
  opts+=(-DTSI_BENCH=ON)
fi
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir"
ctest --output-on-failure --timeout 600 "${ctest_args[@]}"
