#!/usr/bin/env bash
# Installs the Kubernetes API schema validators used by the chart tests into a
# cache directory and prints that directory's node_modules path.
#
# kubernetes-models ships ajv validators generated from the Kubernetes OpenAPI
# schemas, one per kind; @kubernetes-models/cert-manager does the same for
# cert-manager's resources; @marcbachmann/cel-js evaluates the CEL of the
# chart's ValidatingAdmissionPolicy. Idempotent and quiet. Cache: $TSI_TOOLS_DIR or
# <repo>/build/tools.
set -euo pipefail

PKGS=(kubernetes-models@5.1.0 @kubernetes-models/cert-manager@6.0.0 js-yaml@4.1.0
      @marcbachmann/cel-js@8.0.0)
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${TSI_TOOLS_DIR:-$root/build/tools}/k8s-schemas"
stamp="$dir/.installed"
want="${PKGS[*]}"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
   [ -d "$dir/node_modules/kubernetes-models" ]; then
  echo "$dir/node_modules"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "get-k8s-schemas: npm is missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name":"tsi-k8s-schemas","private":true}' > "$dir/package.json"
if ! npm install --prefix "$dir" --no-audit --no-fund --silent "${PKGS[@]}" >"$dir/npm.log" 2>&1; then
  echo "get-k8s-schemas: npm install failed:" >&2
  cat "$dir/npm.log" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "$dir/node_modules"
