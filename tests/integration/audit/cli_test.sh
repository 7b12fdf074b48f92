#!/usr/bin/env bash
# `tsi audit list|show|verify|stats` against a log that a writer is still
# appending to (read-only, second process), in table, json and csv.
set -euo pipefail
BIN=${TSI_BIN_DIR:?}
TBIN=${TSI_TEST_BIN_DIR:?}
PY=/usr/bin/python3
TSI=$BIN/tsi
D=$(mktemp -d)
WRITER=""
cleanup() {
  if [ -n "$WRITER" ]; then kill "$WRITER" 2>/dev/null || true; wait "$WRITER" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); }

# the server's layout: <data_dir>/audit
"$TBIN/audit_load" "$D/audit" --threads 2 --count 0 --sleep-ms 5 --quiet &
WRITER=$!
for _ in $(seq 1 200); do
  if [ -f "$D/audit/data.mdb" ] && out=$("$TSI" audit verify --data-dir "$D" 2>/dev/null); then
    n=$(echo "$out" | sed -n 's/^audit log intact: \([0-9]*\) records.*/\1/p')
    [ -n "$n" ] && [ "$n" -ge 60 ] && break
  fi
  sleep 0.1
done
[ "${n:-0}" -ge 60 ] || fail "the writer did not get going"
kill -0 "$WRITER" || fail "writer died"

# verify while the writer runs, by data dir and by audit dir
"$TSI" audit verify --data-dir "$D" | grep -q '^audit log intact: ' || fail "verify data dir"; ok
"$TSI" audit verify --data-dir "$D/audit" | grep -q '^audit log intact: ' || fail "verify audit dir"; ok

# json: one canonical record per line, seq increasing, no secrets
"$TSI" audit list --data-dir "$D" --limit 0 --format json > "$D/all.jsonl"
$PY - "$D/all.jsonl" <<'PY' || fail "json list"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) >= 60, len(recs)
seqs = [r["seq"] for r in recs]
assert seqs == list(range(1, len(recs) + 1)), seqs[:10]
for line, r in zip(open(sys.argv[1]), recs):
    assert line.rstrip("\n") == json.dumps(r, sort_keys=True, separators=(",", ":")), "not canonical"
    for k in ("seq", "time", "time_us", "request_id", "op", "path", "version", "decision",
              "rule", "reason", "claims", "accessor", "remote", "status", "prev", "hash"):
        assert k in r, k
    assert "token" not in r and "jwt" not in r
    assert r["time"].endswith("Z") and len(r["time"]) == 27
for a, b in zip(recs, recs[1:]):
    assert b["prev"] == a["hash"]
    assert b["time_us"] >= a["time_us"]
PY
ok

# csv with filters: RFC 4180, a header, only matching rows
"$TSI" audit list --data-dir "$D" --limit 0 --datacenter dal05 --decision deny --format csv > "$D/f.csv"
$PY - "$D/f.csv" "$D/all.jsonl" <<'PY' || fail "csv filter"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
allr = [json.loads(l) for l in open(sys.argv[2])]
want = [r["seq"] for r in allr if r["claims"]["datacenter"] == "dal05" and r["decision"] == "deny"]
got = [int(r["seq"]) for r in rows]
# the writer goes on: rows may extend past the earlier snapshot
assert got[:len(want)] == want, (got[:5], want[:5])
assert len(want) > 0
for r in rows:
    assert r["datacenter"] == "dal05" and r["decision"] == "deny", r
    assert len(r["hash"]) == 64
assert list(rows[0].keys())[:4] == ["seq", "time", "op", "path"]
PY
ok

# path prefix, namespace, cluster, image
"$TSI" audit list --data-dir "$D" --limit 0 --format json --namespace medical > "$D/n.jsonl"
[ -s "$D/n.jsonl" ] || fail "namespace filter: nothing"
$PY -c 'import json,sys; assert all(json.loads(l)["claims"]["namespace"]=="medical" for l in open(sys.argv[1]))' "$D/n.jsonl" || fail "namespace filter"
"$TSI" audit list --data-dir "$D" --limit 0 --format json --path secret/data/medical/ \
  --cluster-name hipaaCluster \
  --image sha256:1111111111111111111111111111111111111111111111111111111111111111 > "$D/p.jsonl"
$PY - "$D/p.jsonl" <<'PY' || fail "path/ns/cluster/image filter"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert recs, "no records"
for r in recs:
    assert r["path"].startswith("secret/data/medical/")
    c = r["claims"]
    assert c["cluster-name"] == "hipaaCluster"
    assert "sha256:" + "1" * 64 in c["images"]
PY
ok

# table: header and --limit rows; the hint for the next page on stderr
"$TSI" audit list --data-dir "$D" --limit 5 > "$D/t.txt" 2> "$D/t.err"
head -1 "$D/t.txt" | grep -q '^SEQ  *TIME  *OP  *DECISION' || fail "table header"
[ "$(wc -l < "$D/t.txt")" -eq 6 ] || fail "table rows"
grep -q 'more with --after 5' "$D/t.err" || fail "paging hint"
"$TSI" audit list --data-dir "$D" --limit 5 --after 5 --format json | head -1 | grep -q '"seq":6,' || fail "--after"
ok

# time windows: relative and RFC 3339
[ "$("$TSI" audit list --data-dir "$D" --since 1h --limit 3 --format json | wc -l)" -eq 3 ] || fail "--since 1h"
[ "$("$TSI" audit list --data-dir "$D" --since 2000-01-01T00:00:00Z --until 2000-01-02T00:00:00+02:00 --format json | wc -l)" -eq 0 ] || fail "old window"
t3=$(sed -n 3p "$D/all.jsonl" | $PY -c 'import json,sys; print(json.load(sys.stdin)["time"])')
first=$("$TSI" audit list --data-dir "$D" --since "$t3" --limit 1 --format json | $PY -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
[ "$first" -le 3 ] || fail "--since RFC 3339 ($first)"
ok

# show
"$TSI" audit show --data-dir "$D" 3 | $PY -c 'import json,sys; r=json.load(sys.stdin); assert r["seq"]==3' || fail "show"
"$TSI" audit show --data-dir "$D" 3 --format csv | tail -1 | grep -q '^3,' || fail "show csv"
set +e
"$TSI" audit show --data-dir "$D" 99999999 >/dev/null 2>&1; [ $? -eq 1 ] || fail "show missing exit"
"$TSI" audit show --data-dir "$D" abc >/dev/null 2>&1; [ $? -eq 2 ] || fail "show bad seq exit"
set -e
ok

# stats
"$TSI" audit stats --data-dir "$D" --format json > "$D/s.json"
$PY - "$D/s.json" <<'PY' || fail "stats json"
import json, sys
s = json.load(open(sys.argv[1]))
n = s["records"]
assert n >= 60
for dim in ("decision", "rule", "cluster-name", "datacenter", "path"):
    assert sum(x["count"] for x in s[dim]) == n, dim
assert {x["value"] for x in s["datacenter"]} == {"dal05", "fra02", "lon04"}
PY
"$TSI" audit stats --data-dir "$D" --datacenter fra02 --format csv > "$D/s.csv"
$PY - "$D/s.csv" <<'PY' || fail "stats csv"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
dc = [r for r in rows if r["dimension"] == "datacenter"]
assert len(dc) == 1 and dc[0]["value"] == "fra02"
total = [r for r in rows if r["dimension"] == "total"][0]
assert int(total["count"]) == int(dc[0]["count"]) > 0
PY
"$TSI" audit stats --data-dir "$D" | grep -q '^by datacenter:' || fail "stats table"
ok

# --config: data_dir from a tsi-vault config file
printf 'data_dir = "%s";\nlisten = "127.0.0.1:8200";\n' "$D" > "$D/vault.conf"
"$TSI" audit verify --config "$D/vault.conf" | grep -q intact || fail "--config"
ok

# bad usage: exit 2 with a reason; runtime failure: exit 1
set +e
"$TSI" audit list --data-dir "$D" --since yesterday >/dev/null 2>"$D/e"; [ $? -eq 2 ] && grep -q since "$D/e" || fail "bad --since"
"$TSI" audit list --data-dir "$D" --format xml >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --format"
"$TSI" audit list --data-dir "$D" --decision maybe >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad --decision"
"$TSI" audit list >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --data-dir"
"$TSI" audit list --data-dir "$D" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown option"
"$TSI" audit frobnicate >/dev/null 2>&1; [ $? -eq 2 ] || fail "unknown command"
"$TSI" audit list --data-dir "$D/nope" >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing dir"
"$TSI" audit --help | grep -q 'tsi audit list' || fail "--help"
set -e
ok

kill -0 "$WRITER" || fail "the writer died while the CLI read"
kill "$WRITER"; wait "$WRITER" 2>/dev/null || true; WRITER=""
"$TSI" audit verify --data-dir "$D" | grep -q intact || fail "verify after stop"
ok
echo "audit cli: $pass passed, 0 failed"
