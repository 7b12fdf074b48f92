#!/usr/bin/python3
"""Compares two result files of bench/run (e.g. before and after a change).

Usage: compare.py OLD.json NEW.json
Prints, per figure, both values and both ratios to their limits. Compare the
ratios rather than the raw values: the limits are measured in the same run,
so a ratio moves little when the machine is busier or slower.
"""
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if d.get("schema") != 1:
        raise SystemExit(f"{path}: not a bench/run result (schema 1)")
    return d


def cell(fig):
    if fig is None:
        return "-", "-"
    v = fig.get("value")
    r = fig.get("ratio")
    return (f"{v:,.1f} {fig.get('unit', '')}" if v is not None else "not measured",
            f"{r * 100:.1f}%" if r is not None else "-")


def main():
    if len(sys.argv) != 3:
        print("usage: compare.py OLD.json NEW.json", file=sys.stderr)
        return 2
    old, new = load(sys.argv[1]), load(sys.argv[2])
    print(f"old: {old['run'].get('commit', '?')[:12]} {old['run'].get('timestamp', '')} "
          f"({old['run'].get('mode', '?')})")
    print(f"new: {new['run'].get('commit', '?')[:12]} {new['run'].get('timestamp', '')} "
          f"({new['run'].get('mode', '?')})")
    ofig = {f["id"]: f for f in old["figures"]}
    ids = [f["id"] for f in new["figures"]] + [i for i in ofig if i not in
                                                {f["id"] for f in new["figures"]}]
    nfig = {f["id"]: f for f in new["figures"]}
    rows = [("figure", "old", "old ratio", "new", "new ratio")]
    for i in ids:
        label = (nfig.get(i) or ofig.get(i))["label"]
        ov, orat = cell(ofig.get(i))
        nv, nrat = cell(nfig.get(i))
        rows.append((label, ov, orat, nv, nrat))
    for i in list(new["limits"]) + [i for i in old["limits"] if i not in new["limits"]]:
        lo, ln = old["limits"].get(i), new["limits"].get(i)
        label = "limit: " + (ln or lo)["label"]
        rows.append((label, cell(lo)[0], "", cell(ln)[0], ""))
    w = [max(len(r[k]) for r in rows) for k in range(5)]
    for n, r in enumerate(rows):
        print("  ".join(c.ljust(x) for c, x in zip(r, w)).rstrip())
        if n == 0:
            print("  ".join("-" * x for x in w))
    return 0


if __name__ == "__main__":
    sys.exit(main())
