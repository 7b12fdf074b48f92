#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# SECONDS (default 60) from its seed corpus. Exit 1 on the first crash.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
# FUZZ_TIMEOUT (seconds, default 10) is the per-input hang limit; raise it on
# a loaded machine, where a slow input is not a hang.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
shift || true
bash scripts/setup.sh
CC=clang cmake -S . -B build-fuzz -DTSI_FUZZ=ON -DTSI_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  cmake --build build-fuzz -j"$(nproc)" >/dev/null
  for t in build-fuzz/fuzz/fuzz_*; do targets+=("$(basename "$t")"); done
else
  cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >/dev/null
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
fail=0
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  seeds=tests/fuzz/corpus/$name
  work=build-fuzz/corpus/$name
  mkdir -p "$work" "build-fuzz/crashes/$name"
  args=(-max_total_time="$secs" -max_len=20000 -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048
        -artifact_prefix="build-fuzz/crashes/$name/" -print_final_stats=1)
  dict=tests/fuzz/$name.dict
  [ -f "$dict" ] && args+=(-dict="$dict")
  dirs=("$work")
  [ -d "$seeds" ] && dirs+=("$seeds")
  if "build-fuzz/fuzz/$t" "${args[@]}" "${dirs[@]}" >"build-fuzz/$t.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/$t.log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz: $t: ${secs}s, $runs runs, no crash"
  else
    echo "fuzz: $t: CRASH (see build-fuzz/$t.log, build-fuzz/crashes/$name/)"
    tail -n 30 "build-fuzz/$t.log"
    fail=1
  fi
done
exit $fail
