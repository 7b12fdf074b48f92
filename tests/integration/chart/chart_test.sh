#!/usr/bin/env bash
# Chart tests: a real helm (lint --strict, template) and the Kubernetes schemas,
# fetched into build/tools by scripts/get-helm.sh and scripts/get-k8s-schemas.sh.
# usage: chart_test.sh [check_chart.py|enroll_test.py]   (default check_chart.py)
set -euo pipefail
src="${TSI_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}"
export TSI_SOURCE_DIR="$src"
export HELM K8S_MODULES
HELM="$(bash "$src/scripts/get-helm.sh")"
K8S_MODULES="$(bash "$src/scripts/get-k8s-schemas.sh")"
exec /usr/bin/python3 "$src/tests/integration/chart/${1:-check_chart.py}"
