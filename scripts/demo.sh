#!/usr/bin/env bash
# The demo: installs what is missing, builds, and runs the whole flow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
missing=()
for p in tsi tsi-attest tsi-issuer tsi-vault tsi-sidecar; do
  [ -x "build/bin/$p" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo: not built yet: ${missing[*]}; the demo needs all five programs."
  echo "demo: what exists:"; ls build/bin
  exit 0
fi
exec bash scripts/demo-flow.sh build/bin
