#!/usr/bin/env bash
# hvac's auth.token calls (python3-hvac, Debian) against a real tsi-vault
# over TLS.
set -euo pipefail
exec "$TSI_TEST_BIN_DIR/vault_hvac_env" /usr/bin/python3 \
  "$TSI_SOURCE_DIR/tests/integration/vault/hvac_tokens.py"
