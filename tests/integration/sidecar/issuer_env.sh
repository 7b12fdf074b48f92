# Shared by the sidecar integration tests (sourced, after TAG is set):
# scratch directory $T, process list and cleanup, fail/wait_for/count/
# free_port helpers, and a running enrolled tsi-issuer (swtpm, a CA, the unix
# resolver) on $T/issuer.sock with location c1/r1/d1/n1.

BIN=${TSI_BIN_DIR:?TSI_BIN_DIR not set}
PY=/usr/bin/python3
T=$(mktemp -d "/tmp/tsi-sc-${TAG:?TAG not set}.XXXXXX")
pids=()
cleanup() {
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[$i]}" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	for f in "$T"/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
	exit 1
}
wait_for() { # SECONDS WHAT COMMAND...
	local n=$(( $1 * 10 )) what=$2
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1)); [ "$n" -gt 0 ] || fail "timed out waiting for $what"
		sleep 0.1
	done
}
count() { grep -c "$1" "$2" || true; }
free_port() { # N: a base port P with P..P+N-1 free on loopback
	"$PY" -c '
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    p = random.randint(20000, 60000); ss = []
    try:
        for q in range(p, p + n):
            s = socket.socket(); s.bind(("127.0.0.1", q)); ss.append(s)
        print(p); break
    except OSError: pass
    finally:
        for s in ss: s.close()
' "$1"
}

# swtpm, CA, enrolled issuer (unix resolver).
port=$(free_port 2)
mkdir -p "$T/tpm" "$T/state"
swtpm socket --tpm2 --server type=tcp,port="$port",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 --tpmstate dir="$T/tpm" \
    --flags not-need-init,startup-clear >"$T/swtpm.log" 2>&1 &
pids+=($!)
wait_for 10 swtpm bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
"$BIN/tsi" ca init --out "$T/ca" >/dev/null
printf '%s\n' "tcti = \"swtpm:host=127.0.0.1,port=$port\";" \
    "state_dir = \"$T/state\";" "node_cert = \"$T/node.pem\";" \
    "socket = \"$T/issuer.sock\";" 'resolver = "unix";' \
    'trust_domain = "tsi.example";' >"$T/issuer.conf"
"$BIN/tsi-issuer" csr --config "$T/issuer.conf" >"$T/node.csr" 2>"$T/csr.log"
"$BIN/tsi" ca sign --ca "$T/ca" --cluster-name c1 --region r1 --datacenter d1 \
    --node n1 "$T/node.csr" >"$T/node.pem"
"$BIN/tsi-issuer" run --config "$T/issuer.conf" 2>"$T/issuer.log" &
pids+=($!)
wait_for 20 "tsi-issuer" test -S "$T/issuer.sock"
