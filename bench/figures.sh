# bench/figures.sh - the figures of bench/run (sourced by it, after the
# limits). Each figure starts what it needs from build-bench/bin/ and reports
# "not measured (<program> not built)" when a program is missing.
# Uses from bench/run: BIN BENCH TMP PY SECS NTOKENS NSECRETS CALLERS CONNS
# TCTI PIDS RESULTS figure limit jget wrk_run free_ports wait_for stop log want
# missing_note.

ROLE=bench
ROOT_TOKEN=bench-root-token
LOC_ARGS=(--cluster-name bench-cluster --region bench-region --datacenter bench-dc --node bench-node)

# --- the cluster CA (shared by the login tokens, the issuer and the vault) ---
CA_DIR=$TMP/ca
TOKENS=$TMP/tokens.txt
have_tokens=0
if (want login || want jwt_verify || want issuer || want sidecar || want kv) && [ -x "$BIN/mint_tokens" ]; then
  log "minting $NTOKENS login tokens (before the clock starts)"
  if "$BIN/mint_tokens" --ca-dir "$CA_DIR" --out "$TOKENS" --count "$NTOKENS" \
       --ttl 3600 2>"$TMP/mint.err"; then
    have_tokens=1
  else
    log "mint_tokens failed: $(tail -1 "$TMP/mint.err")"
  fi
elif [ -x "$BIN/tsi" ] && "$BIN/tsi" ca init --out "$CA_DIR" >/dev/null 2>&1; then
  :
fi

# --- tsi-issuer ---------------------------------------------------------------
ISSUER_PID="" ISSUER_SOCK=$TMP/issuer.sock
# Privilege separation (docs/issuer.md): the issuer's figures are measured the
# way it runs by default (signer + confined front end); ISSUER_PROCESS=single
# measures them with "privsep = false" instead. When the issuer has the switch
# (its --help names --single-process), each token mode is also measured the
# other way right after, as the limit its figure is judged against.
ISSUER_PROCESS=${ISSUER_PROCESS:-default}
issuer_has_privsep() { "$BIN/tsi-issuer" --help 2>&1 | grep -q -- --single-process; }
# start_issuer MODE [single]: starts tsi-issuer with signing = MODE (one
# process with "single"); 0 when it serves.
start_issuer() {
  local mode=$1 conf=$TMP/issuer-$1.conf single=${2:-}
  [ "$ISSUER_PROCESS" = single ] && single=single
  mkdir -p "$TMP/issuer-state"
  cat >"$conf" <<EOF
tcti         = "$TCTI";
state_dir    = "$TMP/issuer-state";
node_cert    = "$TMP/issuer-state/node.pem";
socket       = "$ISSUER_SOCK";
signing      = "$mode";
resolver     = "unix";
trust_domain = "bench.tsi";
token_ttl    = 300;
EOF
  [ "$single" = single ] && echo "privsep      = false;" >>"$conf"
  if [ ! -s "$TMP/issuer-state/node.pem" ]; then
    "$BIN/tsi-issuer" csr --config "$conf" >"$TMP/node.csr" 2>"$TMP/issuer-csr.err" || {
      log "tsi-issuer csr failed: $(tail -1 "$TMP/issuer-csr.err")"; return 1; }
    "$BIN/tsi" ca sign --ca "$CA_DIR" "${LOC_ARGS[@]}" "$TMP/node.csr" \
      >"$TMP/issuer-state/node.pem" 2>"$TMP/ca-sign.err" || {
      log "tsi ca sign failed: $(tail -1 "$TMP/ca-sign.err")"; return 1; }
  fi
  rm -f "$ISSUER_SOCK"
  "$BIN/tsi-issuer" run --config "$conf" >"$TMP/issuer-$mode$single.log" 2>&1 &
  ISSUER_PID=$!
  PIDS+=("$ISSUER_PID")
  if ! wait_for curl -sf --unix-socket "$ISSUER_SOCK" http://localhost/v1/health; then
    log "tsi-issuer ($mode $single) did not become healthy: $(tail -2 "$TMP/issuer-$mode$single.log")"
    stop "$ISSUER_PID"
    ISSUER_PID=""
    return 1
  fi
}

issuer_figure() {
  local mode=$1 id=$2 label=$3 lim=$4 goal=$5 out
  if [ ! -x "$BIN/tsi-issuer" ]; then
    figure "$id" "$label" null "tokens/s" "$lim" "$goal" "$(missing_note tsi-issuer)"
    return
  fi
  if [ -z "$TCTI" ]; then
    figure "$id" "$label" null "tokens/s" "$lim" "$goal" "not measured (swtpm did not start)"
    return
  fi
  if [ ! -d "$CA_DIR" ]; then
    figure "$id" "$label" null "tokens/s" "$lim" "$goal" "not measured (no CA: tsi ca init failed)"
    return
  fi
  if [ "$mode" = tpm ]; then
    log "limit: raw ESAPI sign loop on the same swtpm, before the tpm run (${SECS}s)"
    esapi_before=$("$BIN/esapi_sign" --tcti "$TCTI" --seconds "$SECS" 2>"$TMP/esapi.err") || esapi_before=""
  fi
  log "figure: tsi-issuer $mode, $CALLERS callers (${SECS}s)"
  if ! start_issuer "$mode"; then
    figure "$id" "$label" null "tokens/s" "$lim" "$goal" "not measured (tsi-issuer $mode did not start)"
    [ "$mode" = tpm ] && esapi_limit
    return
  fi
  # The length of a real token answer, for the floor (issuer_hello_limit).
  if [ "$mode" = delegated ]; then
    ISSUER_BODY_BYTES=$(curl -sf --unix-socket "$ISSUER_SOCK" \
      'http://localhost/v1/token?aud=tsi-vault' | wc -c) || ISSUER_BODY_BYTES=""
  fi
  if out=$("$BIN/issuer_load" --socket "$ISSUER_SOCK" --callers "$CALLERS" \
             --seconds "$SECS" 2>"$TMP/issuer-load-$mode.err"); then
    figure "$id" "$label" "$(jget "$out" per_sec)" "tokens/s" "$lim" "$goal" \
      "p99 $(jget "$out" p99_ms) ms" "$out"
  else
    figure "$id" "$label" null "tokens/s" "$lim" "$goal" \
      "not measured (issuer_load failed: $(tail -1 "$TMP/issuer-load-$mode.err"))" "$out"
  fi
  stop "$ISSUER_PID"
  ISSUER_PID=""
  if [ "$mode" = tpm ]; then
    esapi_limit
  fi
}

# The raw ESAPI limit, measured just before and just after the issuer's tpm
# run (swtpm serves one client at a time, so not during it); the better of
# the two is the limit, so the machine's load drifting between them cannot
# flatter the figure.
esapi_limit() {
  local after b a
  esapi_done=1
  log "limit: raw ESAPI sign loop on the same swtpm, after the tpm run (${SECS}s)"
  after=$("$BIN/esapi_sign" --tcti "$TCTI" --seconds "$SECS" 2>>"$TMP/esapi.err") || after=""
  b=$([ -n "$esapi_before" ] && jget "$esapi_before" signs_per_sec || echo null)
  a=$([ -n "$after" ] && jget "$after" signs_per_sec || echo null)
  if [ "$b" = null ] && [ "$a" = null ]; then
    limit esapi_sign "raw Esys_Sign loop, same swtpm" null "signs/s" \
      "not measured (esapi_sign failed: $(tail -1 "$TMP/esapi.err" 2>/dev/null))"
  else
    limit esapi_sign "raw Esys_Sign loop, same swtpm (best of before/after)" \
      "$(awk -v b="$b" -v a="$a" 'BEGIN { if (b == "null") b = 0; if (a == "null") a = 0; print (a > b ? a : b) }')" \
      "signs/s" "before the tpm run $b, after it $a signs/s"
  fi
}
esapi_before="" esapi_done=0

# The floor of the delegated figure: tsi-issuer minus the work. issuer_hello
# runs libmicrohttpd with the issuer's own settings (issuer/api_mhd.h, shared
# by both programs) on a Unix socket, answering a body as long as a real
# token answer, under the same issuer_load; measured right after the
# delegated run. With the signature the two limits give the ceiling on 2
# cores: a token needs both an HTTP exchange and a signature, so at best
# 1 / (1/hello + 1/openssl_sign) tokens/s.
ISSUER_BODY_BYTES=""
issuer_hello_limit() {
  local sock=$TMP/issuer-hello.sock pid out hl sign label note
  label="hello-world MHD, tsi-issuer's settings, Unix socket, same issuer_load"
  if [ ! -x "$BIN/issuer_hello" ]; then
    limit issuer_hello "$label" null "req/s" "$(missing_note issuer_hello)"
    return
  fi
  if [ -z "$ISSUER_BODY_BYTES" ] || [ "$ISSUER_BODY_BYTES" -lt 64 ]; then
    limit issuer_hello "$label" null "req/s" "not measured (no token answer to size the body)"
    return
  fi
  log "limit: issuer_hello (tsi-issuer's MHD settings, ${ISSUER_BODY_BYTES}-byte body), $CALLERS callers (${SECS}s)"
  rm -f "$sock"
  "$BIN/issuer_hello" --unix "$sock" --body-bytes "$ISSUER_BODY_BYTES" \
    >"$TMP/issuer-hello.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if wait_for grep -q ready "$TMP/issuer-hello.out" &&
     out=$("$BIN/issuer_load" --socket "$sock" --callers "$CALLERS" \
             --seconds "$SECS" 2>"$TMP/issuer-hello-load.err"); then
    hl=$(jget "$out" per_sec)
    limit issuer_hello "$label" "$hl" "req/s" \
      "p99 $(jget "$out" p99_ms) ms, ${ISSUER_BODY_BYTES}-byte body"
  else
    hl=null
    limit issuer_hello "$label" null "req/s" \
      "not measured (issuer_hello or issuer_load failed: $(tail -1 "$TMP/issuer-hello-load.err" 2>/dev/null))"
  fi
  stop "$pid"
  sign=$(jq -r 'select(.kind == "limit" and .id == "openssl_sign") | .value' "$RESULTS" | tail -1)
  label="ceiling on 2 cores: 1 / (1/hello + 1/openssl sign)"
  if [[ "$hl" =~ ^[0-9.]+$ && "$sign" =~ ^[0-9.]+$ ]]; then
    note="1 / (1/$hl + 1/$sign): each token needs one HTTP exchange and one signature on the same 2 cores"
    limit issuer_ceiling "$label" \
      "$(awk -v h="$hl" -v s="$sign" 'BEGIN { printf "%.1f", 1 / (1 / h + 1 / s) }')" \
      "tokens/s" "$note"
  else
    limit issuer_ceiling "$label" null "tokens/s" \
      "not measured (needs both issuer_hello and openssl sign)"
  fi
}

# The same MODE with one process (privsep = false), right after the default
# run, as the limit of the privilege-separated figure; then that figure again
# against it (goal: within 10 %, issue 18).
issuer_privsep_pair() {
  local mode=$1 label out value note=""
  label="tokens/s, $mode signing, one process (privsep = false), $CALLERS callers"
  if [ ! -x "$BIN/tsi-issuer" ] || [ -z "$TCTI" ] || [ ! -d "$CA_DIR" ]; then
    note="not measured (no tsi-issuer, swtpm or CA; see issuer_$mode)"
  elif ! issuer_has_privsep; then
    note="not measured (this tsi-issuer runs as one process only)"
  elif [ "$ISSUER_PROCESS" = single ]; then
    note="not measured (ISSUER_PROCESS=single: issuer_$mode is already one process)"
  fi
  if [ -z "$note" ]; then
    log "limit: tsi-issuer $mode as one process, $CALLERS callers (${SECS}s)"
    if ! start_issuer "$mode" single; then
      note="not measured (tsi-issuer $mode, one process, did not start)"
    elif out=$("$BIN/issuer_load" --socket "$ISSUER_SOCK" --callers "$CALLERS" \
                 --seconds "$SECS" 2>"$TMP/issuer-load-$mode-single.err"); then
      limit "issuer_${mode}_single" "$label" "$(jget "$out" per_sec)" "tokens/s" \
        "p99 $(jget "$out" p99_ms) ms; measured right after the privilege-separated run"
    else
      note="not measured (issuer_load failed: $(tail -1 "$TMP/issuer-load-$mode-single.err"))"
    fi
    [ -n "$ISSUER_PID" ] && stop "$ISSUER_PID"
    ISSUER_PID=""
  fi
  [ -n "$note" ] && limit "issuer_${mode}_single" "$label" null "tokens/s" "$note"
  value=$(jq -r "select(.kind == \"figure\" and .id == \"issuer_$mode\") | .value" "$RESULTS" | tail -1)
  if [ -z "$note" ] && [[ "$value" =~ ^[0-9.]+$ ]]; then
    figure "issuer_${mode}_privsep" "issuer_$mode (signer + confined front end) against one process" \
      "$value" "tokens/s" "issuer_${mode}_single" '{"ratio": 0.9}'
  else
    figure "issuer_${mode}_privsep" "issuer_$mode (signer + confined front end) against one process" \
      null "tokens/s" "issuer_${mode}_single" '{"ratio": 0.9}' "${note:-not measured (issuer_$mode did not run)}"
  fi
}

if want issuer; then
  issuer_figure delegated issuer_delegated "tokens/s, delegated signing, $CALLERS callers" \
    openssl_sign '{"ratio": 0.5}'
  issuer_privsep_pair delegated
  issuer_hello_limit
  delegated_value=$(jq -r 'select(.kind == "figure" and .id == "issuer_delegated") | .value' "$RESULTS" | tail -1)
  if [[ "$delegated_value" =~ ^[0-9.]+$ ]]; then
    figure issuer_delegated_floor "the same delegated tokens/s, against the ceiling" \
      "$delegated_value" "tokens/s" issuer_ceiling '{}'
  else
    figure issuer_delegated_floor "the same delegated tokens/s, against the ceiling" \
      null "tokens/s" issuer_ceiling '{}' "not measured (the delegated figure did not run)"
  fi
  issuer_figure tpm issuer_tpm "tokens/s, tpm signing, $CALLERS callers" \
    esapi_sign '{"ratio": 0.85}'
  issuer_privsep_pair tpm
  # The tpm figure could not run: the limit on its own.
  if [ "$esapi_done" -eq 0 ] && [ -n "$TCTI" ]; then
    esapi_limit
  fi
fi

# --- tsi-vault ------------------------------------------------------------------
VAULT_PID="" VAULT_ADDR="" VAULT_LOG=$TMP/vault.log
write_policy() {
  mkdir -p "$TMP/policies"
  cat >"$TMP/policies/bench.conf" <<'EOF'
# bench/run: one role whose tokens read and write the benchmark's secrets.
roles = ( { name = "bench"; rules = [ "bench-rw" ]; token_ttl = 3600; } );
rules = (
  { name = "bench-rw";
    paths = [ "secret/data/bench/*" ];
    capabilities = [ "create", "read", "update" ];
  }
);
EOF
}
start_vault() {
  local port
  write_policy
  port=$(free_ports 1)
  VAULT_ADDR=http://127.0.0.1:$port
  local args=(--dev --dev-root-token-id "$ROOT_TOKEN" --dev-listen "127.0.0.1:$port"
              --policy-dir "$TMP/policies")
  [ -f "$CA_DIR/ca.pem" ] && args+=(--trust-ca "$CA_DIR/ca.pem")
  "$BIN/tsi-vault" "${args[@]}" >"$VAULT_LOG" 2>&1 &
  VAULT_PID=$!
  PIDS+=("$VAULT_PID")
  if ! wait_for curl -sf "$VAULT_ADDR/v1/sys/health"; then
    log "tsi-vault did not start: $(tail -2 "$VAULT_LOG")"
    stop "$VAULT_PID"
    VAULT_PID=""
    return 1
  fi
}

# login_token: a client token from one login with a minted JWT (stdout).
login_token() {
  local jwt
  jwt=$(tail -1 "$TOKENS")
  curl -sf -X POST "$VAULT_ADDR/v1/auth/trusted-identity/login" \
    -H 'Content-Type: application/json' \
    -d "{\"role\": \"$ROLE\", \"jwt\": \"$jwt\"}" | jq -er .auth.client_token
}

# metric NAME: a value from /v1/sys/metrics?format=prometheus (null if absent).
metric() {
  curl -sf -H "X-Vault-Token: $ROOT_TOKEN" "$VAULT_ADDR/v1/sys/metrics?format=prometheus" \
    | awk -v n="$1" '$1 == n { print $2; found = 1; exit } END { if (!found) print "null" }'
}

vault_ready=0
if want login || want kv || want sidecar; then
  if [ -x "$BIN/tsi-vault" ]; then
    log "starting tsi-vault --dev"
    start_vault && vault_ready=1
  fi
fi
vault_note() {
  if [ ! -x "$BIN/tsi-vault" ]; then missing_note tsi-vault
  else echo "not measured (tsi-vault did not start)"; fi
}

# The login's verification alone (no HTTP, policy or audit), same tokens.
if want login || want jwt_verify; then
  label="tsi_jwt_verify alone, 2 threads (login ceiling)"
  if [ ! -x "$BIN/jwt_verify" ]; then
    figure jwt_verify "$label" null "verifies/s" openssl_verify '{}' "$(missing_note jwt_verify)"
  elif [ "$have_tokens" -ne 1 ]; then
    figure jwt_verify "$label" null "verifies/s" openssl_verify '{}' "not measured (no tokens minted)"
  else
    log "figure: tsi_jwt_verify alone (${SECS}s)"
    if out=$("$BIN/jwt_verify" --ca "$CA_DIR/ca.pem" --tokens "$TOKENS" --threads 2 \
               --seconds "$SECS" 2>"$TMP/jwt-verify.err"); then
      figure jwt_verify "$label" "$(jget "$out" verifies_per_sec)" "verifies/s" openssl_verify '{}' "" "$out"
    else
      figure jwt_verify "$label" null "verifies/s" openssl_verify '{}' \
        "not measured (jwt_verify failed: $(tail -1 "$TMP/jwt-verify.err"))"
    fi
  fi
fi

# login_floor LABEL LOGINS: the login figure against a ceiling made of
# measured parts. hello-world MHD with --login (the HTTP part alone: the
# same POST bodies from the same wrk script, an answer of a login's size,
# tsi-vault's thread count) and openssl's verifies/s (the one signature a
# login cannot skip), each using both cores: a login costs at least the
# time of both, so ceiling = 1 / (1/hello_post + 1/openssl_verify).
login_floor() {
  local flabel=$1 logins=$2 threads port hpid hout verify ceiling hlabel clabel
  threads=$(grep -o '"threads":[0-9]*' "$VAULT_LOG" 2>/dev/null | head -1 | cut -d: -f2 || true)
  threads=${threads:-8}
  hlabel="hello-world MHD --login (pool of $threads), same POST bodies and wrk load"
  log "limit: hello-world libmicrohttpd answering the login POSTs (${SECS}s)"
  port=$(free_ports 1)
  "$BIN/mhd_hello" --port "$port" --threads "$threads" --epoll --login >"$TMP/mhd-login.out" 2>&1 &
  hpid=$!
  PIDS+=("$hpid")
  if wait_for grep -q ready "$TMP/mhd-login.out" &&
     hout=$(TSI_BENCH_TOKENS=$TOKENS TSI_BENCH_ROLE=$ROLE wrk_run login.lua "http://127.0.0.1:$port"); then
    limit mhd_login "$hlabel" "$(jget "$hout" per_sec)" "req/s" \
      "p99 $(jget "$hout" p99_ms) ms, $(jget "$hout" bad) errors"
  else
    hout=""
    limit mhd_login "$hlabel" null "req/s" "not measured (mhd_hello or wrk failed)"
  fi
  stop "$hpid"
  verify=$(jq -r 'select(.kind == "limit" and .id == "openssl_verify") | .value // "null"' "$RESULTS" | tail -1)
  clabel="1 / (1/hello-world login POSTs + 1/openssl verifies), both measured above"
  if [ -n "$hout" ] && [ "$(jget "$hout" per_sec)" != null ] && [[ "$verify" =~ ^[0-9.]+$ ]]; then
    ceiling=$(awk -v h="$(jget "$hout" per_sec)" -v v="$verify" 'BEGIN { printf "%.1f", 1 / (1 / h + 1 / v) }')
    limit login_ceiling "$clabel" "$ceiling" "logins/s" \
      "hello-world POSTs $(jget "$hout" per_sec)/s and openssl verifies ${verify}/s"
  else
    limit login_ceiling "$clabel" null "logins/s" "not measured (a part is missing)"
  fi
  figure vault_login_ceiling "$flabel, against that ceiling" "$logins" "logins/s" \
    login_ceiling '{}' ""
}

if want login; then
  label="logins/s, fresh JWT each, $CONNS conns"
  if [ "$vault_ready" -ne 1 ]; then
    figure vault_login "$label" null "logins/s" openssl_verify '{"ratio": 0.5}' "$(vault_note)"
  elif [ "$have_tokens" -ne 1 ]; then
    figure vault_login "$label" null "logins/s" openssl_verify '{"ratio": 0.5}' \
      "$(missing_note mint_tokens) (needs tsi_jwt_mint and the x509 functions in lib/)"
  else
    log "figure: logins (${SECS}s)"
    logins=null
    if out=$(TSI_BENCH_TOKENS=$TOKENS TSI_BENCH_ROLE=$ROLE wrk_run login.lua "$VAULT_ADDR"); then
      note="p99 $(jget "$out" p99_ms) ms, $(jget "$out" bad) errors"
      [ "$(jget "$out" reused_rounds)" != "0" ] && note="$note; tokens ran out and were reused"
      logins=$(jget "$out" per_sec)
      figure vault_login "$label" "$logins" "logins/s" openssl_verify \
        '{"ratio": 0.5}' "$note" "$out"
    else
      figure vault_login "$label" null "logins/s" openssl_verify '{"ratio": 0.5}' "not measured (wrk failed)"
    fi
    login_floor "$label" "$logins"
  fi
fi

# The hello-world limit, with tsi-vault's own thread count (from its start
# log; 8, its default, when it is not running) and the same wrk load.
if want mhd || want kv; then
  mhd_threads=$(grep -o '"threads":[0-9]*' "$VAULT_LOG" 2>/dev/null | head -1 | cut -d: -f2 || true)
  mhd_threads=${mhd_threads:-8}
  log "limit: hello-world libmicrohttpd, $mhd_threads threads, wrk $CONNS conns (${SECS}s)"
  port=$(free_ports 1)
  "$BIN/mhd_hello" --port "$port" --threads "$mhd_threads" --epoll >"$TMP/mhd.out" 2>&1 &
  mpid=$!
  PIDS+=("$mpid")
  mlabel="hello-world MHD (epoll, pool of $mhd_threads), same wrk load"
  if wait_for grep -q ready "$TMP/mhd.out" &&
     out=$(TSI_BENCH_TOKEN=bench TSI_BENCH_KV_PREFIX=/v1/secret/data/bench/s \
           TSI_BENCH_KV_COUNT=$NSECRETS wrk_run kv_read.lua "http://127.0.0.1:$port"); then
    limit mhd_hello "$mlabel" "$(jget "$out" per_sec)" "req/s" \
      "p99 $(jget "$out" p99_ms) ms, $(jget "$out" bad) errors"
  else
    limit mhd_hello "$mlabel" null "req/s" "not measured (mhd_hello or wrk failed)"
  fi
  stop "$mpid"
fi

if want kv; then
  label="KV reads/s, durable audit, $CONNS conns keep-alive"
  if [ "$vault_ready" -ne 1 ]; then
    figure vault_kv "$label" null "reads/s" mhd_hello '{"ratio": 0.5}' "$(vault_note)"
    figure vault_kv_p99 "KV read p99 latency under that load" null "ms" "" '{"max": 10}' "$(vault_note)"
    figure audit_commit "audit records committed/s under that load" null "records/s" lmdb_raw '{}' "$(vault_note)"
  else
    log "figure: KV reads (${SECS}s), $NSECRETS secrets"
    kv_token=$ROOT_TOKEN kv_who="root token"
    if [ "$have_tokens" -eq 1 ] && t=$(login_token 2>/dev/null); then
      kv_token=$t kv_who="a logged-in token (policy evaluated)"
    fi
    if ! "$PY" "$BENCH/populate.py" --addr "$VAULT_ADDR" --token "$ROOT_TOKEN" \
         --prefix bench/s --count "$NSECRETS" 2>"$TMP/populate.err"; then
      note="not measured (writing the secrets failed: $(tail -1 "$TMP/populate.err"))"
      figure vault_kv "$label" null "reads/s" mhd_hello '{"ratio": 0.5}' "$note"
      figure vault_kv_p99 "KV read p99 latency under that load" null "ms" "" '{"max": 10}' "$note"
      figure audit_commit "audit records committed/s under that load" null "records/s" lmdb_raw '{}' "$note"
    else
      c0=$(metric tsi_vault_audit_committed_total)
      if out=$(TSI_BENCH_TOKEN=$kv_token TSI_BENCH_KV_PREFIX=/v1/secret/data/bench/s \
               TSI_BENCH_KV_COUNT=$NSECRETS wrk_run kv_read.lua "$VAULT_ADDR"); then
        c1=$(metric tsi_vault_audit_committed_total)
        kv_out=$out
        figure vault_kv "$label" "$(jget "$out" per_sec)" "reads/s" mhd_hello '{"ratio": 0.5}' \
          "as $kv_who; $(jget "$out" bad) errors" "$out"
        figure vault_kv_p99 "KV read p99 latency under that load" "$(jget "$out" p99_ms)" "ms" "" '{"max": 10}'
        if [ "$c0" != null ] && [ "$c1" != null ]; then
          figure audit_commit "audit records committed/s under that load" \
            "$(awk -v a="$c0" -v b="$c1" -v s="$(jget "$out" seconds)" 'BEGIN { printf "%.1f", (b - a) / s }')" \
            "records/s" lmdb_raw '{}'
        else
          figure audit_commit "audit records committed/s under that load" null "records/s" lmdb_raw '{}' \
            "not measured (no tsi_vault_audit_committed_total in /v1/sys/metrics)"
        fi
      else
        figure vault_kv "$label" null "reads/s" mhd_hello '{"ratio": 0.5}' "not measured (wrk failed)"
        figure vault_kv_p99 "KV read p99 latency under that load" null "ms" "" '{"max": 10}' "not measured (wrk failed)"
        figure audit_commit "audit records committed/s under that load" null "records/s" lmdb_raw '{}' "not measured (wrk failed)"
      fi
    fi
  fi
fi

# The second KV limit: hello-world MHD plus one durable audit record per
# request through the same audit library (bench/mhd_audit.c), with a record
# tsi-vault stored for one of the reads above (same size), same wrk load.
# KV reads against it: what the KV read path costs beyond the audit alone.
if want kv; then
  alabel="hello-world MHD + one durable audit record per request (epoll, pool of ${mhd_threads:-8}), same wrk load"
  if [ ! -x "$BIN/mhd_audit" ]; then
    limit mhd_audit "$alabel" null "req/s" "$(missing_note mhd_audit)"
  else
    rec_note="a built-in KV read record"
    rec_args=()
    if [ "$vault_ready" -eq 1 ] && [ "${c1:-null}" != null ] &&
       curl -sf -H "X-Vault-Token: $ROOT_TOKEN" \
         "$VAULT_ADDR/v1/sys/audit/releases?path=secret/data/bench/s&after=$((${c1%.*} > 50 ? ${c1%.*} - 50 : 0))&limit=100" \
         | jq -e '[.data.records[] | select(.op == "read")] | last' >"$TMP/kv-record.json" 2>/dev/null; then
      rec_args=(--record "$TMP/kv-record.json")
      rec_note="a KV read record tsi-vault stored in this run ($(jq -c 'del(.seq, .time, .time_us, .prev, .hash)' "$TMP/kv-record.json" | wc -c) bytes before the writer's fields)"
    fi
    log "limit: hello-world MHD + durable audit, $mhd_threads threads, wrk $CONNS conns (${SECS}s)"
    port=$(free_ports 1)
    "$BIN/mhd_audit" --port "$port" --threads "${mhd_threads:-8}" --epoll --dir "$TMP/mhd-audit" \
      "${rec_args[@]}" >"$TMP/mhd-audit.out" 2>&1 &
    apid=$!
    PIDS+=("$apid")
    if wait_for grep -q ready "$TMP/mhd-audit.out" &&
       out=$(TSI_BENCH_TOKEN=bench TSI_BENCH_KV_PREFIX=/v1/secret/data/bench/s \
             TSI_BENCH_KV_COUNT=$NSECRETS wrk_run kv_read.lua "http://127.0.0.1:$port"); then
      limit mhd_audit "$alabel" "$(jget "$out" per_sec)" "req/s" \
        "p99 $(jget "$out" p99_ms) ms, $(jget "$out" bad) errors; $rec_note"
      if [ -n "${kv_out:-}" ]; then
        figure vault_kv_audit_floor "KV reads/s against that (the KV read path's own share)" \
          "$(jget "$kv_out" per_sec)" "reads/s" mhd_audit '{}'
      fi
    else
      limit mhd_audit "$alabel" null "req/s" "not measured (mhd_audit or wrk failed: $(tail -1 "$TMP/mhd-audit.out"))"
    fi
    stop "$apid"
  fi
fi

# --- the audit store's group commit on its own ----------------------------------
# Not a goal: shows how many records/s the store commits when N callers each
# wait for their own record (tsi-vault's request threads do), next to lmdb_raw.
if want kv || want audit_append; then
  # tsi-vault's request threads (from its log; 8, its default) and many.
  vthreads=$(grep -o '"threads":[0-9]*' "$VAULT_LOG" 2>/dev/null | head -1 | cut -d: -f2 || true)
  vthreads=${vthreads:-8}
  append_secs=$([ "$quick" -eq 1 ] && echo 1 || echo "$SECS")
  append_counts=$([ "$quick" -eq 1 ] && echo "$vthreads" || echo "$vthreads 256")
  for n in $append_counts; do
    label="audit store alone, $n appenders waiting for durability"
    if [ ! -x "$BIN/audit_append" ]; then
      figure "audit_append_$n" "$label" null "records/s" lmdb_raw '{}' "$(missing_note audit_append)"
      continue
    fi
    log "figure: audit store group commit, $n appenders (${append_secs}s)"
    mkdir -p "$TMP/audit-append-$n"
    if out=$("$BIN/audit_append" --dir "$TMP/audit-append-$n" --threads "$n" \
               --seconds "$append_secs" 2>"$TMP/audit-append-$n.err"); then
      figure "audit_append_$n" "$label" "$(jget "$out" records_per_sec)" "records/s" lmdb_raw '{}' "" "$out"
    else
      figure "audit_append_$n" "$label" null "records/s" lmdb_raw '{}' \
        "not measured (audit_append failed: $(grep -v '^{' "$TMP/audit-append-$n.err" | tail -1))"
    fi
    rm -rf "$TMP/audit-append-$n"
  done
fi

# --- the floor of the two whole-process timings below -----------------------------
# fork + exec + wait of /bin/true timed the same way (bash EPOCHREALTIME):
# the part of "start to done" that is the machine, not tsi. Median of 7.
if want audit_query || want sidecar; then
  spawn_times=()
  for i in 1 2 3 4 5 6 7; do
    t0=$EPOCHREALTIME
    /bin/true
    t1=$EPOCHREALTIME
    spawn_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
  done
  limit spawn_true "spawn + exit of /bin/true, timed the same way" \
    "$(printf '%s\n' "${spawn_times[@]}" | sort -n | sed -n 4p)" "ms" "median of 7"
fi

# --- tsi audit list over 1,000,000 records ---------------------------------------
# The 1,000,000-record audit store shared by the query and RSS figures:
# written through the audit library (audit_append --datacenters 10: ten
# datacenters, 13 namespaces, 10 % denials), kept in build-bench/ between runs
# and rebuilt when the audit code changes (filling it takes minutes, so
# --quick only uses one a full run made). The library stamps records with
# the time they are written, so they all fall in the day(s) of the fill.
# TSI_BENCH_AUDIT_RECORDS: a smaller store, only to try the harness itself.
AUDIT_NREC=${TSI_BENCH_AUDIT_RECORDS:-1000000}
AUDIT_NREC_TXT=$(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$AUDIT_NREC")
AUDIT_STORE="" AUDIT_STORE_NOTE=""
# ensure_audit_store: sets AUDIT_STORE (a directory holding audit/) or
# AUDIT_STORE_NOTE (why there is none); returns 0 when there is one.
ensure_audit_store() {
  local key store out
  [ -n "$AUDIT_STORE" ] && return 0
  if [ ! -x "$BIN/audit_append" ]; then
    AUDIT_STORE_NOTE=$(missing_note audit_append); return 1
  fi
  key=$(cat "$ROOT"/lib/audit_*.c "$ROOT/include/tsi/audit.h" "$BENCH/audit_append.c" | sha256sum | cut -c1-16)
  store=$BUILD/audit-$AUDIT_NREC-$key
  if [ ! -f "$store/complete" ]; then
    if [ "$quick" -eq 1 ]; then
      AUDIT_STORE_NOTE="not measured (no $AUDIT_NREC_TXT-record store for this audit code yet: run bench/run once without --quick)"
      return 1
    fi
    rm -rf "$BUILD"/audit-"$AUDIT_NREC"-*
    mkdir -p "$store/audit"
    log "filling an audit store with $AUDIT_NREC_TXT records (kept in build-bench/ for later runs)"
    if ! out=$("$BIN/audit_append" --dir "$store/audit" --threads 256 --records "$AUDIT_NREC" \
                 --datacenters 10 --seconds 1200 --map-size $((4 << 30)) 2>"$TMP/audit-fill.err") ||
       [ "$(jget "$out" records)" -lt "$AUDIT_NREC" ]; then
      AUDIT_STORE_NOTE="not measured (filling the audit store stopped at $(jget "${out:-null}" records) records in 1200 s)"
      rm -rf "$store"
      return 1
    fi
    echo "$out" >"$store/complete"
  fi
  AUDIT_STORE=$store
}

# Timed: the whole `tsi audit list --data-dir D --since <day> --until <day+1>
# --datacenter bench-dc-3 --format json` process (its default --limit, 100
# records), median of 7 runs after one warm-up. The day filter keeps every
# record (see above), the datacenter filter one in ten.
audit_query_figure() {
  local label="tsi audit list, 1 day + 1 datacenter of $AUDIT_NREC_TXT records"
  local goal='{"max": 100}' store n i t0 t1 times=() since until sorted median
  if [ ! -x "$BIN/tsi" ] || ! "$BIN/tsi" audit list --help >/dev/null 2>&1; then
    figure audit_query "$label" null "ms" "" "$goal" "not measured (tsi audit list not built)"; return
  fi
  if ! ensure_audit_store; then
    figure audit_query "$label" null "ms" "" "$goal" "$AUDIT_STORE_NOTE"; return
  fi
  store=$AUDIT_STORE
  since=$(date -u -d "$(stat -c %y "$store/complete" | cut -c1-10)" +%Y-%m-%dT00:00:00Z)
  until=$(date -u -d "$since + 1 day" +%Y-%m-%dT00:00:00Z)
  log "figure: tsi audit list over $AUDIT_NREC_TXT records"
  for i in 0 1 2 3 4 5 6 7; do
    t0=$EPOCHREALTIME
    if ! "$BIN/tsi" audit list --data-dir "$store/audit" --since "$since" --until "$until" \
         --datacenter bench-dc-3 --format json >"$TMP/audit-list.out" 2>"$TMP/audit-list.err"; then
      figure audit_query "$label" null "ms" "" "$goal" \
        "not measured (tsi audit list failed: $(tail -1 "$TMP/audit-list.err"))"
      return
    fi
    t1=$EPOCHREALTIME
    [ "$i" -eq 0 ] && continue   # warm-up: page cache
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
  done
  n=$(grep -o '"datacenter": *"bench-dc-3"' "$TMP/audit-list.out" | wc -l)
  if [ "$n" -eq 0 ]; then
    figure audit_query "$label" null "ms" "" "$goal" \
      "not measured (tsi audit list returned no bench-dc-3 record)"
    return
  fi
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  median=$(sed -n 4p <<<"$sorted")
  figure audit_query "$label" "$median" "ms" spawn_true "$goal" \
    "median of 7 runs (whole process, $n records listed, default --limit); min $(head -1 <<<"$sorted") ms, max $(tail -1 <<<"$sorted") ms" \
    "{\"runs_ms\": [$(IFS=,; echo "${times[*]}")], \"listed\": $n}"
}
if want audit_query; then
  audit_query_figure
fi

# --- sidecar: start -> last of 10 secrets on disk ---------------------------------
# Wall time from the fork of `tsi-sidecar --once` to its exit, which comes
# after the last of its 10 files is renamed into place: an upper bound on
# "start to the last secret on disk" (file mtimes are too coarse to do better).
# The median of several runs; the first (cold caches) is included.
#
# Its floor, measured in the same run by programs that do only the
# unavoidable part, and reported as the figure's limit:
#   (a) fork to exit of bench/curl_start (linked with the sidecar's libraries,
#       calls curl_global_init), timed like the figure, right after each run;
#   (b) bench/sidecar_files: write + fsync + rename of 10 small files and one
#       directory fsync, in a fresh directory beside the sidecar's (the
#       smallest median of three ways to order them);
#   (c) one synced LMDB commit (bench/lmdb_raw --batch 1: 1 / commits per s);
#       the run needs two: the login's audit record, then the reads' (ten
#       records, one commit at best) - the reads need the login's token.
#   floor = (a) + (b) + 2 x (c)
# The sidecar's own timeline (its sidecar.done line, from main) gives the
# phases; "start+exit" is fork to exit minus main to the done line.

# med: the median of the numbers on stdin (one a line).
med() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "null" }'; }

sidecar_figure() {
  local label="tsi-sidecar --once: start to 10 secrets on disk" runs i t0 t1 dest
  local secrets="[" times=() ctimes=() n flabel="floor: (a) libcurl start + (b) 10 file fsyncs + 2 x (c) synced commit"
  if [ ! -x "$BIN/tsi-sidecar" ]; then
    figure sidecar_start "$label" null "ms" "" '{"max": 25}' "$(missing_note tsi-sidecar)"; return
  elif [ ! -x "$BIN/tsi-issuer" ]; then
    figure sidecar_start "$label" null "ms" "" '{"max": 25}' "$(missing_note tsi-issuer)"; return
  elif [ "$vault_ready" -ne 1 ]; then
    figure sidecar_start "$label" null "ms" "" '{"max": 25}' "$(vault_note)"; return
  elif [ -z "$TCTI" ] || [ ! -f "$CA_DIR/ca.pem" ]; then
    figure sidecar_start "$label" null "ms" "" '{"max": 25}' "not measured (no swtpm or no CA)"; return
  fi
  if ! "$PY" "$BENCH/populate.py" --addr "$VAULT_ADDR" --token "$ROOT_TOKEN" \
       --prefix bench/sidecar --count 10 2>"$TMP/populate-sidecar.err"; then
    figure sidecar_start "$label" null "ms" "" '{"max": 25}' \
      "not measured (writing the secrets failed: $(tail -1 "$TMP/populate-sidecar.err"))"; return
  fi
  for i in $(seq 0 9); do
    secrets+="{\"name\": \"s$i\", \"path\": \"secret/data/bench/sidecar$i\", \"dest\": \"s$i\", \"field\": \"password\"}"
    [ "$i" -lt 9 ] && secrets+=", "
  done
  secrets+="]"
  if ! start_issuer delegated; then
    figure sidecar_start "$label" null "ms" "" '{"max": 25}' "not measured (tsi-issuer did not start)"; return
  fi
  log "figure: tsi-sidecar --once, 10 secrets (and its floor)"
  runs=$([ "$quick" -eq 1 ] && echo 7 || echo 21)
  for i in $(seq 1 "$runs"); do
    dest=$TMP/sidecar-out-$i
    mkdir -p "$dest"
    t0=$EPOCHREALTIME
    if ! TSI_SECRETS=$secrets TSI_ISSUER_SOCKET=$ISSUER_SOCK VAULT_ADDR=$VAULT_ADDR TSI_ALLOW_HTTP=1 \
         TSI_ROLE=$ROLE TSI_RETRY_MAX=1 "$BIN/tsi-sidecar" --once --dest-dir "$dest" \
         >"$TMP/sidecar-$i.log" 2>&1; then
      figure sidecar_start "$label" null "ms" "" '{"max": 25}' \
        "not measured (tsi-sidecar --once failed: $(tail -1 "$TMP/sidecar-$i.log"))"
      stop "$ISSUER_PID"; ISSUER_PID=""; return
    fi
    t1=$EPOCHREALTIME
    n=$(find "$dest" -type f | wc -l)
    if [ "$n" -ne 10 ]; then
      figure sidecar_start "$label" null "ms" "" '{"max": 25}' \
        "not measured (tsi-sidecar wrote $n files, not 10)"
      stop "$ISSUER_PID"; ISSUER_PID=""; return
    fi
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
    # (a), interleaved so that both see the same load.
    if [ -x "$BIN/curl_start" ]; then
      t0=$EPOCHREALTIME
      "$BIN/curl_start" && t1=$EPOCHREALTIME && \
        ctimes+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
    fi
  done
  stop "$ISSUER_PID"
  ISSUER_PID=""
  local median phases="" ph v fout="" lout="" fa="null" fb="null" fc="null" floor=null
  median=$(printf '%s\n' "${times[@]}" | med)
  # The timeline: per phase, the median over the runs (ms).
  for ph in setup issuer login reads files; do
    v=$(for i in $(seq 1 "$runs"); do
          { grep '"sidecar.done"' "$TMP/sidecar-$i.log" | jq -r ".us_$ph // empty"; } || true
        done | med)
    if [ "$v" = null ]; then phases+="$ph -, "
    else phases+="$ph $(awk -v v="$v" 'BEGIN { printf "%.1f", v / 1000 }'), "; fi
  done
  v=$(for i in $(seq 1 "$runs"); do
        m=$({ grep '"sidecar.done"' "$TMP/sidecar-$i.log" | jq -r '.us_main // empty'; } || true)
        if [ -n "$m" ]; then
          awk -v t="${times[$((i - 1))]}" -v m="$m" 'BEGIN { printf "%.3f\n", t - m / 1000 }'
        fi
      done | med)
  [ "$v" = null ] && v=-
  phases="start+exit $v, $phases"
  # (b) and (c), after the runs, on the same disk.
  if [ -x "$BIN/sidecar_files" ] && mkdir -p "$TMP/sidecar-files" &&
     fout=$("$BIN/sidecar_files" --dir "$TMP/sidecar-files" --files 10 --rounds "$runs" \
              2>"$TMP/sidecar-files.err"); then
    fb=$(jget "$fout" floor_ms)
  fi
  rm -rf "$TMP/sidecar-files"
  mkdir -p "$TMP/sidecar-lmdb"
  if lout=$("$BIN/lmdb_raw" --dir "$TMP/sidecar-lmdb" --seconds "$([ "$quick" -eq 1 ] && echo 0.5 || echo 2)" \
              --batch 1 2>"$TMP/sidecar-lmdb.err"); then
    fc=$(awk -v c="$(jget "$lout" commits_per_sec)" 'BEGIN { if (c > 0) printf "%.3f", 1000 / c; else print "null" }')
  fi
  rm -rf "$TMP/sidecar-lmdb"
  [ "${#ctimes[@]}" -gt 0 ] && fa=$(printf '%s\n' "${ctimes[@]}" | med)
  if [ "$fa" != null ] && [ "$fb" != null ] && [ "$fc" != null ]; then
    floor=$(awk -v a="$fa" -v b="$fb" -v c="$fc" 'BEGIN { printf "%.3f", a + b + 2 * c }')
    limit sidecar_floor "$flabel" "$floor" "ms" \
      "(a) curl_start fork to exit $fa ms (median of ${#ctimes[@]}), (b) sidecar_files $fb ms (the best of three ways, medians of $runs: one file at a time $(jget "$fout" seq_ms), all written then fsyncs at once $(jget "$fout" par_ms), all written then fsyncs one after the other $(jget "$fout" pre_ms)), (c) synced LMDB commit $fc ms (lmdb_raw --batch 1)"
  else
    limit sidecar_floor "$flabel" null "ms" \
      "not measured ((a) $fa, (b) $fb, (c) $fc ms: $(tail -1 "$TMP/sidecar-files.err" "$TMP/sidecar-lmdb.err" 2>/dev/null | tail -1))"
  fi
  figure sidecar_start "$label" "$median" "ms" sidecar_floor '{"max": 25}' \
    "median of $runs runs; min $(printf '%s\n' "${times[@]}" | sort -n | head -1) ms, max $(printf '%s\n' "${times[@]}" | sort -n | tail -1) ms; phases (medians, ms): ${phases%, }" \
    "{\"runs_ms\": [$(IFS=,; echo "${times[*]}")], \"curl_start_ms\": [$(IFS=,; echo "${ctimes[*]}")], \"files\": ${fout:-null}, \"lmdb_batch1\": ${lout:-null}}"
}
if want sidecar; then
  sidecar_figure
fi

# --- tsi-vault RSS with 100,000 secrets and 1,000,000 audit records ---------------
# Full run only (filling the stores takes minutes). A configured (TLS) server
# on a data directory whose audit store was filled beforehand with 1,000,000
# records through the audit library (a real chain, which the vault
# continues); then 100,000 secrets written through the API, all read once.
# From /proc/PID/status: the figure is the private resident memory,
# RssAnon + RssShmem (what the goal is judged on: memory only this process
# holds, which the kernel cannot reclaim without swap); RssFile (file pages
# mapped in: libraries and the LMDB maps, i.e. shared, clean page cache the
# kernel reclaims) and VmRSS (the sum) are reported beside it, RssFile split
# by mapping from /proc/PID/smaps. Also measured: the same right after
# startup (before any request), which shows what opening the stores touches.
rss_figure() {
  # TSI_BENCH_RSS_SECRETS: fewer secrets, only to try the harness itself.
  local nsec=${TSI_BENCH_RSS_SECRETS:-100000}
  local label="tsi-vault RSS, $(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$nsec") secrets + $AUDIT_NREC_TXT audit records"
  local goal='{"max": 64}' d=$TMP/rss port pid out n_audit status rss anon file shmem hwm
  local start_status start_anon start_file maps
  if [ "$quick" -eq 1 ]; then
    figure vault_rss "$label" null "MiB" "" "$goal" "not measured (full run only: bench/run without --quick)"; return
  elif [ ! -x "$BIN/tsi-vault" ]; then
    figure vault_rss "$label" null "MiB" "" "$goal" "$(missing_note tsi-vault)"; return
  fi
  if ! ensure_audit_store; then
    figure vault_rss "$label" null "MiB" "" "$goal" "$AUDIT_STORE_NOTE"; return
  fi
  mkdir -p "$d/data"
  write_policy
  log "figure: RSS: copying the $AUDIT_NREC_TXT-record audit store"
  cp -r "$AUDIT_STORE/audit" "$d/data/audit"
  n_audit=$AUDIT_NREC
  head -c 32 /dev/urandom >"$d/kv.key" && chmod 600 "$d/kv.key"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$d/tls.key" -out "$d/tls.pem" >/dev/null 2>&1
  port=$(free_ports 1)
  printf '%s\n' "listen = \"127.0.0.1:$port\";" "tls_cert = \"$d/tls.pem\";" \
    "tls_key = \"$d/tls.key\";" "data_dir = \"$d/data\";" "kv_key_file = \"$d/kv.key\";" \
    "root_token_file = \"$d/root-token\";" "policy_dir = \"$TMP/policies\";" \
    "audit_map_size = $((4 << 30))L;" >"$d/vault.conf"
  "$BIN/tsi-vault" --config "$d/vault.conf" >"$d/vault.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if ! wait_for curl -sf --cacert "$d/tls.pem" "https://127.0.0.1:$port/v1/sys/health"; then
    figure vault_rss "$label" null "MiB" "" "$goal" \
      "not measured (configured tsi-vault did not start: $(tail -1 "$d/vault.log"))"
    stop "$pid"; return
  fi
  start_status=$(cat "/proc/$pid/status")
  start_anon=$(awk '/^RssAnon:/ { print $2 }' <<<"$start_status")
  start_file=$(awk '/^RssFile:/ { print $2 }' <<<"$start_status")
  log "figure: RSS: writing $nsec secrets"
  if ! "$PY" "$BENCH/populate.py" --addr "https://127.0.0.1:$port" --cacert "$d/tls.pem" \
       --token "$(cat "$d/root-token")" --prefix bench/r --count "$nsec" --threads 64 \
       2>"$d/populate.err"; then
    figure vault_rss "$label" null "MiB" "" "$goal" \
      "not measured (writing the secrets failed: $(tail -1 "$d/populate.err"))"
    stop "$pid"; return
  fi
  log "figure: RSS: reading them (${SECS}s)"
  TSI_BENCH_TOKEN=$(cat "$d/root-token") TSI_BENCH_KV_PREFIX=/v1/secret/data/bench/r \
    TSI_BENCH_KV_COUNT=$nsec wrk_run kv_read.lua "https://127.0.0.1:$port" >/dev/null || true
  status=$(cat "/proc/$pid/status")
  # Resident kB per file mapping: the two LMDB maps, the rest (libraries).
  maps=$(awk -v data="$d/data/" '
    /^[0-9a-f]+-[0-9a-f]+ / { name = $6 }
    /^Rss:/ { if (name == data "audit/data.mdb") a += $2; else if (name == data "kv/data.mdb") k += $2;
              else if (name ~ /^\//) o += $2 }
    END { printf "{\"audit_map_kb\": %d, \"kv_map_kb\": %d, \"other_files_kb\": %d}", a, k, o }' \
    "/proc/$pid/smaps")
  rss=$(awk '/^VmRSS:/ { print $2 }' <<<"$status")
  anon=$(awk '/^RssAnon:/ { print $2 }' <<<"$status")
  file=$(awk '/^RssFile:/ { print $2 }' <<<"$status")
  shmem=$(awk '/^RssShmem:/ { print $2 }' <<<"$status")
  hwm=$(awk '/^VmHWM:/ { print $2 }' <<<"$status")
  stop "$pid"
  mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
  figure vault_rss "$label: private (RssAnon + RssShmem)" "$(mib $((anon + shmem)))" "MiB" "" "$goal" \
    "RssAnon $(mib "$anon"), RssShmem $(mib "$shmem") MiB; beside it RssFile $(mib "$file") MiB (audit map $(mib "$(jget "$maps" audit_map_kb)"), KV map $(mib "$(jget "$maps" kv_map_kb)"), libraries $(mib "$(jget "$maps" other_files_kb)")): VmRSS $(mib "$rss") MiB, peak $(mib "$hwm"); after startup RssAnon $(mib "$start_anon"), RssFile $(mib "$start_file") MiB; TLS; $n_audit records pre-filled, then the API's" \
    "{\"vmrss_kb\": $rss, \"rssanon_kb\": $anon, \"rssfile_kb\": $file, \"rssshmem_kb\": $shmem, \"vmhwm_kb\": $hwm, \"maps\": $maps, \"after_start\": {\"rssanon_kb\": $start_anon, \"rssfile_kb\": $start_file}}"
  figure vault_vmrss "$label: VmRSS (with file pages)" "$(mib "$rss")" "MiB" "" '{}' \
    "RssAnon + RssFile + RssShmem; RssFile is page cache of the LMDB files and libraries, shared and reclaimable"
}
if want rss; then
  rss_figure
fi

if [ -n "$VAULT_PID" ]; then
  stop "$VAULT_PID"
  VAULT_PID=""
fi

# --- attested enrollment (--only attest) ---------------------------------------
# A node as the issue's quick start makes it: swtpm_setup --create-ek-cert
# with a local CA, tsi-attest --dev trusting that CA, the node registered by
# its EK hash. Two figures:
#  attest_enroll: `tsi-issuer enroll` of that node, request to certificate:
#    the time between its enroll.start and enroll.done log lines (both in the
#    process, after the TPM is opened and the signing key loaded), median of
#    ENROLLS runs; the whole process (fork to exit) is in the note. Limit
#    esapi_enroll: the same TPM commands through raw ESAPI on the same swtpm
#    (bench/esapi_enroll.c), median of as many rounds, measured just before
#    and just after (swtpm serves one client at a time), the faster of the
#    two. Goal: at most 20 % beyond it, i.e. limit / figure >= 1/1.2.
#  attest_verify: tsi-attest's verification calls for one enrollment on one
#    thread (bench/attest_verify.c) against a ceiling from `openssl speed`
#    on one core for the public-key operations they contain: three ECDSA
#    P-256 verifies (CSR, certify, quote), one RSA-2048 public-key operation
#    (MakeCredential's OAEP encryption; OpenSSL 3.0's speed has no encrypt
#    column, the RSA verify is the same public-key operation) and the EK
#    chain's signatures as OpenSSL verifies them (counted and typed by
#    attest_verify itself).
attest_figures() {
  local d=$TMP/attest port tport pid spid tok=bench-attest-token-0123456789
  local label_e="tsi-issuer enroll, request to certificate (median)"
  local label_v="tsi-attest verification per enrollment, 1 thread"
  local goal_e='{"ratio": 0.8333, "time": true}' goal_v='{"ratio": 0.5}'
  local rounds=$([ "$quick" -eq 1 ] && echo 7 || echo 21)
  local out before after b a best lim_note i t0 t1 spans=() procs=() h line
  local ev rv sigs algs ceil
  ATTEST_VERIFY_US=""
  local need
  for need in tsi-attest tsi-issuer tsi esapi_enroll attest_verify; do
    if [ ! -x "$BIN/$need" ]; then
      figure attest_enroll "$label_e" null "ms" esapi_enroll "$goal_e" "$(missing_note "$need")"
      figure attest_verify "$label_v" null "enrollments/s" attest_ceiling "$goal_v" "$(missing_note "$need")"
      return
    fi
  done
  mkdir -p "$d/ca" "$d/state" "$d/issuer" "$d/verify"
  cat >"$d/setup.conf" <<CONF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $d/localca.conf
create_certs_tool_options = $d/localca.options
active_pcr_banks = sha256
CONF
  printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' \
    "$d/ca" "$d/ca" "$d/ca" "$d/ca" >"$d/localca.conf"
  echo "--platform-manufacturer tsi-bench" >"$d/localca.options"
  log "attest: swtpm_setup --create-ek-cert with a local CA"
  if ! swtpm_setup --tpm2 --tpmstate "$d/state" --create-ek-cert --config "$d/setup.conf" \
       --overwrite >"$d/setup.log" 2>&1; then
    figure attest_enroll "$label_e" null "ms" esapi_enroll "$goal_e" "not measured (swtpm_setup failed)"
    figure attest_verify "$label_v" null "enrollments/s" attest_ceiling "$goal_v" "not measured (swtpm_setup failed)"
    return
  fi
  cat "$d/ca/swtpm-localca-rootca-cert.pem" "$d/ca/issuercert.pem" >"$d/ek-ca.pem"
  tport=$(free_ports 2) || { log "no free ports"; return; }
  swtpm socket --tpm2 --server type=tcp,port="$tport",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((tport + 1)),bindaddr=127.0.0.1 \
    --tpmstate dir="$d/state" --flags not-need-init,startup-clear >"$d/swtpm.log" 2>&1 &
  spid=$!
  PIDS+=("$spid")
  if ! wait_for bash -c "kill -0 $spid && (exec 3<>/dev/tcp/127.0.0.1/$((tport + 1)))"; then
    figure attest_enroll "$label_e" null "ms" esapi_enroll "$goal_e" "not measured (swtpm did not start)"
    figure attest_verify "$label_v" null "enrollments/s" attest_ceiling "$goal_v" "not measured (swtpm did not start)"
    return
  fi
  local tcti="swtpm:host=127.0.0.1,port=$tport"

  # The verification figure first: it also gives the EK hash to register.
  log "figure: attest_verify (${SECS}s) and openssl speed ecdsap256 rsa2048 (1 core, ${OSSL_SECS}s each)"
  if out=$("$BIN/attest_verify" --tcti "$tcti" --state-dir "$d/verify" --ek-ca "$d/ek-ca.pem" \
             --seconds "$SECS" --breakdown 2>"$d/verify.err"); then
    h=$(jq -r .ek_sha256 <<<"$out")
    sigs=$(jq -r .chain_sigs <<<"$out")
    algs=$(jq -r .chain_algs <<<"$out")
    # The EK chain's signers decide which RSA sizes openssl speed measures.
    local sizes=2048 alg ok=1 per=0 speed_note
    for alg in $(tr ',' ' ' <<<"$algs"); do
      case "$alg" in
        RSA-2048|RSA-3072|RSA-4096) [[ " $sizes " == *" ${alg#RSA-} "* ]] || sizes="$sizes ${alg#RSA-}" ;;
        EC-256) ;;
        *) ok=0 ;;
      esac
    done
    line=$(openssl speed -seconds "$OSSL_SECS" ecdsap256 $(printf 'rsa%s ' $sizes) 2>/dev/null || true)
    ev=$(grep -E '^ *256 bits ecdsa \(nistp256\)' <<<"$line" | tail -1 | awk '{print $NF}')
    [[ "$ev" =~ ^[0-9.]+$ ]] || ok=0
    speed_note="ECDSA P-256 $ev verifies/s"
    declare -A rsa_v=()
    for alg in $sizes; do
      rsa_v[$alg]=$(grep -E "^rsa $alg bits" <<<"$line" | tail -1 | awk '{print $NF}')
      [[ "${rsa_v[$alg]}" =~ ^[0-9.]+$ ]] || ok=0
      speed_note="$speed_note, RSA-$alg ${rsa_v[$alg]} verifies/s"
    done
    if [ "$ok" -eq 1 ]; then
      # seconds per enrollment: 3 ECDSA verifies, 1 RSA-2048 public op,
      # and one verify per signature of the EK chain by its signer's type.
      per=$(awk -v e="$ev" -v r="${rsa_v[2048]}" 'BEGIN { printf "%.9f", 3 / e + 1 / r }')
      for alg in $(tr ',' ' ' <<<"$algs"); do
        case "$alg" in
          EC-256) per=$(awk -v p="$per" -v e="$ev" 'BEGIN { printf "%.9f", p + 1 / e }') ;;
          RSA-*) per=$(awk -v p="$per" -v r="${rsa_v[${alg#RSA-}]}" 'BEGIN { printf "%.9f", p + 1 / r }') ;;
        esac
      done
      ceil=$(awk -v p="$per" 'BEGIN { printf "%.1f", 1 / p }')
      limit attest_ceiling "ceiling on 1 core: the enrollment's public-key operations at openssl speed" \
        "$ceil" "enrollments/s" \
        "openssl speed (1 core): $speed_note; per enrollment 3 ECDSA P-256 verifies (CSR, certify, quote), 1 RSA-2048 public-key operation (MakeCredential's OAEP encryption, timed as a verify), the EK chain's $sigs signature(s) by $algs"
    else
      limit attest_ceiling "ceiling on 1 core from openssl speed" null "enrollments/s" \
        "not measured (openssl speed not parsed, or an EK chain key other than RSA-2048/3072/4096 or EC-256: $algs)"
    fi
    ATTEST_VERIFY_US=$(jget "$out" us_per_round)
    figure attest_verify "$label_v" "$(jget "$out" per_sec)" "enrollments/s" attest_ceiling "$goal_v" \
      "$(jget "$out" us_per_round) us per enrollment over $(jget "$out" rounds) rounds; evidence captured once from swtpm; each part alone (us): $(jq -r '.phases_us | to_entries | map("\(.key) \(.value)") | join(", ")' <<<"$out")" "$out"
  else
    h=""
    limit attest_ceiling "ceiling on 1 core from openssl speed" null "enrollments/s" "not measured (attest_verify failed)"
    figure attest_verify "$label_v" null "enrollments/s" attest_ceiling "$goal_v" \
      "not measured (attest_verify failed: $(tail -1 "$d/verify.err"))"
  fi

  # tsi-attest --dev with the local CA; the node registered by its EK hash.
  for i in 1 2 3 4 5; do
    port=$(free_ports 1) || break
    "$BIN/tsi-attest" --dev --dev-listen "127.0.0.1:$port" --dev-root-token-id "$tok" \
      --ek-ca "$d/ek-ca.pem" >"$d/attest.out" 2>"$d/attest.err" &
    pid=$!
    PIDS+=("$pid")
    if wait_for bash -c "kill -0 $pid && curl -sf http://127.0.0.1:$port/v1/health"; then break; fi
    stop "$pid"
    pid=""
  done
  if [ -z "${pid:-}" ] || [ -z "$h" ] || ! TSI_ATTEST_ADDR="http://127.0.0.1:$port" TSI_ATTEST_TOKEN=$tok \
       "$BIN/tsi" node register --ek-sha256 "$h" "${LOC_ARGS[@]}" >"$d/register.out" 2>&1; then
    figure attest_enroll "$label_e" null "ms" esapi_enroll "$goal_e" \
      "not measured (tsi-attest did not start or the node could not be registered: $(tail -1 "$d/register.out" 2>/dev/null))"
    [ -n "${pid:-}" ] && stop "$pid"
    return
  fi
  cat >"$d/issuer.conf" <<EOF2
tcti         = "$tcti";
state_dir    = "$d/issuer";
node_cert    = "$d/issuer/node.pem";
node_ca      = "$d/issuer/node-ca.pem";
socket       = "$d/issuer.sock";
resolver     = "unix";
trust_domain = "bench.tsi";
node_name    = "bench-node";
attest_url   = "http://127.0.0.1:$port/";
EOF2

  log "limit: esapi_enroll, $rounds rounds, before the enrollments"
  before=$("$BIN/esapi_enroll" --tcti "$tcti" --rounds "$rounds" 2>"$d/esapi.err") || before=""
  log "figure: tsi-issuer enroll x $rounds"
  for i in $(seq 1 "$rounds"); do
    t0=$EPOCHREALTIME
    if ! "$BIN/tsi-issuer" enroll --config "$d/issuer.conf" >"$d/enroll-$i.out" 2>"$d/enroll-$i.err"; then
      spans=()
      break
    fi
    t1=$EPOCHREALTIME
    procs+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) * 1000 }')")
    spans+=("$("$PY" - "$d/enroll-$i.err" <<'PY'
import datetime, json, sys
ts = {}
for line in open(sys.argv[1], encoding="utf-8"):
    try:
        rec = json.loads(line)
    except ValueError:
        continue
    if rec.get("event") in ("enroll.start", "enroll.done"):
        ts[rec["event"]] = datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
print("%.3f" % ((ts["enroll.done"] - ts["enroll.start"]).total_seconds() * 1000))
PY
)")
  done
  log "limit: esapi_enroll, $rounds rounds, after the enrollments"
  after=$("$BIN/esapi_enroll" --tcti "$tcti" --rounds "$rounds" 2>>"$d/esapi.err") || after=""
  stop "$pid"
  b=$([ -n "$before" ] && jget "$before" median_ms || echo null)
  a=$([ -n "$after" ] && jget "$after" median_ms || echo null)
  if [ "$b" = null ] && [ "$a" = null ]; then
    limit esapi_enroll "raw ESAPI: the same TPM commands, same swtpm" null "ms" \
      "not measured (esapi_enroll failed: $(tail -1 "$d/esapi.err" 2>/dev/null))"
  else
    best=$(awk -v b="$b" -v a="$a" 'BEGIN { if (b == "null") b = 1e9; if (a == "null") a = 1e9; print (a < b ? a : b) }')
    lim_note="medians of $rounds rounds: before $b ms, after $a ms; $(jget "${before:-$after}" commands) TPM commands a round, EK $(jq -r .ek <<<"${before:-$after}") (EK certificate NV reads, EK ReadPublic x2, AK CreatePrimary x4, Sign for the CSR, StartAuthSession, PolicySecret, ActivateCredential, Certify, PCR_Read, Quote, flushes)"
    limit esapi_enroll "raw ESAPI: the same TPM commands, same swtpm (median, faster of before/after)" \
      "$best" "ms" "$lim_note"
  fi
  # The floor of the same enrollment: the TPM commands, the synced writes
  # its records need (5 in tsi-attest: the session and the start's audit
  # record; the session taken, the enrollment record and the finish's audit
  # record; 2 in tsi-issuer: node-ca and node_cert, each written, fsynced
  # and renamed; counted with strace -e fdatasync,fsync), each at the cost
  # of one synced LMDB commit measured now (lmdb_raw --batch 1), and the
  # verification's CPU (attest_verify above).
  local commit_ms="" floor_ms=""
  mkdir -p "$d/lmdb"
  if [ "$best" != "" ] && [ -n "${ATTEST_VERIFY_US:-}" ] && [ "$ATTEST_VERIFY_US" != null ] && \
     out=$("$BIN/lmdb_raw" --dir "$d/lmdb" --seconds 1 --batch 1 2>"$d/lmdb.err"); then
    commit_ms=$(awk -v c="$(jget "$out" commits_per_sec)" 'BEGIN { printf "%.3f", 1000 / c }')
    floor_ms=$(awk -v t="$best" -v c="$commit_ms" -v v="$ATTEST_VERIFY_US" 'BEGIN { printf "%.3f", t + 7 * c + v / 1000 }')
    limit attest_enroll_floor "floor: TPM commands (esapi_enroll) + 7 synced writes + verification CPU" \
      "$floor_ms" "ms" "esapi_enroll $best ms + 7 x $commit_ms ms (one synced LMDB commit, lmdb_raw --batch 1) + attest_verify $ATTEST_VERIFY_US us"
  else
    limit attest_enroll_floor "floor: TPM commands (esapi_enroll) + 7 synced writes + verification CPU" null "ms" \
      "not measured (esapi_enroll, attest_verify or lmdb_raw failed)"
  fi
  rm -rf "$d/lmdb"
  if [ "${#spans[@]}" -eq 0 ]; then
    figure attest_enroll "$label_e" null "ms" esapi_enroll "$goal_e" \
      "not measured (tsi-issuer enroll failed: $(tail -1 "$d/enroll-$i.err" 2>/dev/null))"
    return
  fi
  local med pmed smin smax
  med=$(printf '%s\n' "${spans[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  smin=$(printf '%s\n' "${spans[@]}" | sort -n | head -1)
  smax=$(printf '%s\n' "${spans[@]}" | sort -n | tail -1)
  # tsi-attest's own time in its two handlers (its log's "us"), medians.
  local hs hd
  hs=$(grep '"event":"enroll.started"' "$d/attest.err" | tail -"${#spans[@]}" | sed 's/.*"us":\([0-9]*\).*/\1/' | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] / 1000; else print "?" }')
  hd=$(grep '"event":"enroll.done"' "$d/attest.err" | tail -"${#spans[@]}" | sed 's/.*"us":\([0-9]*\).*/\1/' | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] / 1000; else print "?" }')
  pmed=$(printf '%s\n' "${procs[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  figure attest_enroll "$label_e" "$med" "ms" esapi_enroll "$goal_e" \
    "enroll.start to enroll.done (log timestamps, ms resolution), median of ${#spans[@]} enrollments of one registered node; min $smin, max $smax ms; the whole process (fork to exit, TPM opened and key loaded, libraries started) median $pmed ms; tsi-attest's handlers (its log) median start $hs ms, finish $hd ms" \
    "{\"spans_ms\": [$(IFS=,; echo "${spans[*]}")], \"process_ms\": [$(IFS=,; echo "${procs[*]}")]}"
  figure attest_enroll_floor "the same enrollment, against its floor" "$med" "ms" attest_enroll_floor '{"time": true}'
}
if want attest; then
  attest_figures
fi
