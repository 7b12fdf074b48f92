#!/usr/bin/python3
"""Turns the measurements of one bench/run into its table and its JSON file.

Input: a JSON-lines file written by bench/run, one object per measurement:
  {"kind": "limit", "id", "label", "value" (number or null), "unit", "note"?}
  {"kind": "figure", "id", "label", "value" (number or null), "unit",
   "limit"? (id of a limit), "goal": {"ratio": r} | {"ratio": r, "time": true}
   | {"max": v} | {} , "note"?}  ("time": the figure is a time, ratio = limit / figure)
  {"kind": "meta", ...}  (merged into the JSON's "run" object)
A value of null means "not measured"; note then says why. Nothing is ever
filled in: a figure without a value prints its note.

Usage: report.py RESULTS.jsonl OUT.json
Prints the table on stdout and writes OUT.json (the schema is in
docs/performance.md).
"""
import json
import sys


def fmt_num(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main():
    if len(sys.argv) != 3:
        print("usage: report.py RESULTS.jsonl OUT.json", file=sys.stderr)
        return 2
    limits, figures, run = {}, [], {}
    with open(sys.argv[1], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"{sys.argv[1]}:{n}: {e}", file=sys.stderr)
                return 1
            kind = rec.pop("kind", None)
            if kind == "limit":
                limits[rec["id"]] = rec
            elif kind == "figure":
                figures.append(rec)
            elif kind == "meta":
                run.update(rec)

    rows = []
    for fig in figures:
        lim = limits.get(fig.get("limit")) if fig.get("limit") else None
        goal = fig.get("goal") or {}
        ratio = None
        if fig.get("value") is not None and lim and lim.get("value"):
            # For a time (a "max" goal, or a ratio goal marked "time") the
            # ratio is limit / figure: the share of the time that is the
            # floor; 100 % is the best.
            if ("max" in goal or goal.get("time")) and fig["value"] > 0:
                ratio = lim["value"] / fig["value"]
            elif "max" not in goal:
                ratio = fig["value"] / lim["value"]
        verdict = ""
        goal_txt = "reported"
        if "ratio" in goal:
            goal_txt = f">= {goal['ratio'] * 100:.0f}%"
            if ratio is not None:
                verdict = "meets" if ratio >= goal["ratio"] else "MISSES"
        elif "max" in goal:
            goal_txt = f"<= {goal['max']:g} {fig.get('unit', '')}".rstrip()
            if fig.get("value") is not None:
                verdict = "meets" if fig["value"] <= goal["max"] else "MISSES"
        fig["ratio"] = ratio
        fig["verdict"] = verdict or None
        if fig.get("value") is None:
            val_txt = fig.get("note") or "not measured"
        else:
            val_txt = f"{fmt_num(fig['value'])} {fig.get('unit', '')}".rstrip()
        if lim is None:
            lim_txt, lim_val = "-", "-"
        else:
            lim_txt = lim["label"]
            lim_val = (f"{fmt_num(lim['value'])} {lim.get('unit', '')}".rstrip()
                       if lim.get("value") is not None
                       else lim.get("note") or "not measured")
        rows.append((fig["label"], val_txt, lim_txt, lim_val,
                     f"{ratio * 100:.1f}%" if ratio is not None else "-",
                     goal_txt, verdict))

    head = ("figure", "value", "limit (same run)", "limit value", "ratio",
            "goal", "")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print(line.rstrip())
    print("  ".join("-" * w for w in widths).rstrip())
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    notes = [(f["label"], f["note"]) for f in figures
             if f.get("note") and f.get("value") is not None]
    notes += [(l["label"], l["note"]) for l in limits.values()
              if l.get("note") and l.get("value") is not None]
    if notes:
        print()
        for label, note in notes:
            print(f"note: {label}: {note}")

    out = {"schema": 1, "run": run, "limits": limits, "figures": figures}
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
