#!/usr/bin/env python3
"""The DNS rows of scripts/bench.sh: dnsperf's results against the helper's DNS server and the
dnsmasq baseline, printed as a table with the ratio, and added to the JSON report.

  dns_report.py RESULTS_DIR JSON_OUT

RESULTS_DIR/dns holds dockroute.txt and dnsmasq.txt (dnsperf -v output: one "> RCODE name
type latency" line per response, then the statistics). Numbers are printed, never asserted.
"""
import json
import os
import re
import sys

SERVERS = ["dockroute", "dnsmasq"]


def pct(vals, p):
    """Nearest-rank percentile of a sorted list."""
    if not vals:
        return None
    k = max(0, min(len(vals) - 1, -(-p * len(vals) // 100) - 1))
    return vals[int(k)]


def parse(path):
    try:
        text = open(path).read()
    except OSError:
        return {"error": "not run"}
    latencies = []
    for line in text.splitlines():
        if line.startswith("> "):
            try:
                latencies.append(float(line.split()[-1]) * 1e6)
            except ValueError:
                pass
    latencies.sort()
    noerror = re.search(r"Response codes:.*?NOERROR (\d+)", text)
    runtime = re.search(r"Run time \(s\):\s+([0-9.]+)", text)
    sent = re.search(r"Queries sent:\s+(\d+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    if not noerror or not runtime:
        tail = text.strip().splitlines()[-1:] or ["no output"]
        return {"error": tail[0]}
    secs = float(runtime.group(1)) or 1.0
    return {
        "answered_qps": int(noerror.group(1)) / secs,
        "sent": int(sent.group(1)) if sent else None,
        "lost": int(lost.group(1)) if lost else None,
        "p50_us": pct(latencies, 50),
        "p99_us": pct(latencies, 99),
        "responses_timed": len(latencies),
        "seconds": secs,
    }


ROWS = [
    ("DNS answered", "answered_qps", "kq/s", 1e-3, "{:.1f}"),
    ("DNS latency p50", "p50_us", "us", 1, "{:.0f}"),
    ("DNS latency p99", "p99_us", "us", 1, "{:.0f}"),
]


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    resdir, out = sys.argv[1], sys.argv[2]
    d = os.path.join(resdir, "dns")
    if os.path.exists(os.path.join(d, "error")):
        results = {"error": open(os.path.join(d, "error")).read().strip()}
    else:
        results = {s: parse(os.path.join(d, s + ".txt")) for s in SERVERS}
    rows = [("metric", "unit", "dnsmasq", "dockroute", "dr/dnsmasq")]
    for label, key, unit, scale, f in ROWS:
        vals = [results.get(s, {}).get(key) if isinstance(results.get(s), dict) else None for s in SERVERS]
        dr, base = vals
        ratio = "{:.2f}x".format(dr / base) if dr is not None and base else "-"
        show = lambda v: "-" if v is None else f.format(v * scale)
        rows.append((label, unit, show(base), show(dr), ratio))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("DNS: dnsperf, 4 clients, 64 queries outstanding, A queries for names given through the API;"
          " baseline dnsmasq with the same names in the same namespace")
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    errors = [f"{s}: {v['error']}" for s, v in results.items() if isinstance(v, dict) and "error" in v]
    if "error" in results and isinstance(results["error"], str):
        errors = [results["error"]]
    for e in errors:
        print("  dns error: " + e)
    try:
        with open(out) as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        doc = {}
    doc["dns"] = results
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()
