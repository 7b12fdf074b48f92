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

# complete: every module the validators import resolves (a tree half written
# by an interrupted or concurrent install fails this, not the tests later).
complete() {
  [ -d "$dir/node_modules/kubernetes-models" ] &&
    (cd "$dir" && node -e '
      const fs = require("fs"), path = require("path");
      const d = "node_modules/kubernetes-models/_schemas";
      const missing = fs.readdirSync(d).filter(f => f.endsWith(".d.ts"))
        .filter(f => !fs.existsSync(path.join(d, f.replace(/\.d\.ts$/, ".js"))));
      process.exit(missing.length ? 1 : 0);') >/dev/null 2>&1
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && complete; then
  echo "$dir/node_modules"
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "get-k8s-schemas: npm is missing (scripts/setup.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
exec 9>"$dir.lock"
flock 9                     # one install at a time into this directory
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && complete; then
  echo "$dir/node_modules"  # another process installed it meanwhile
  exit 0
fi
rm -f "$stamp"
[ -f "$dir/package.json" ] || echo '{"name":"tsi-k8s-schemas","private":true}' > "$dir/package.json"
for attempt in 1 2; do
  if ! npm install --prefix "$dir" --no-audit --no-fund --silent "${PKGS[@]}" >"$dir/npm.log" 2>&1; then
    echo "get-k8s-schemas: npm install failed:" >&2
    cat "$dir/npm.log" >&2
    exit 1
  fi
  complete && break
  if [ "$attempt" -eq 2 ]; then
    echo "get-k8s-schemas: npm install left an incomplete kubernetes-models tree in $dir" >&2
    exit 1
  fi
  # A damaged npm cache entry gives the same partial tree again: check it.
  rm -rf "$dir/node_modules"
  npm cache verify >/dev/null 2>&1 || true
done
echo "$want" > "$stamp"
echo "$dir/node_modules"
