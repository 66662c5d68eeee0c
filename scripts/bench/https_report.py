#!/usr/bin/env python3
"""The HTTPS rows of scripts/bench.sh: wrk's results over plain HTTP (the container through the
tunnel) and over HTTPS (the helper's front, then the tunnel), keep-alive and a connection per
request, and full TLS handshakes per second beside plain TCP connects; printed as a table with the ratios and
added to the JSON report. Numbers are printed, never asserted.

  https_report.py RESULTS_DIR JSON_OUT
"""
import json
import os
import re
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(path):
    try:
        text = open(path).read()
    except OSError:
        return {"error": "not run"}
    out = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for p in ("50", "99"):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if m:
            out[f"p{p}_ms"] = float(m.group(1)) * UNITS[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non_2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: (.*)", text)
    if m:
        out["socket_errors"] = m.group(1).strip()
    return out or {"error": text.strip()[-300:]}


def loop_result(path):
    try:
        text = open(path).read()
    except OSError:
        return {"error": "not run"}
    try:
        out = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": text.strip()[-300:]}
    return out if out.get("handshakes") else {**out, "error": out.get("last_error", "none completed")}


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    res, json_out = sys.argv[1], sys.argv[2]
    d = os.path.join(res, "https")
    if os.path.exists(os.path.join(d, "error")):
        print(f"\nHTTPS: not measured: {open(os.path.join(d, 'error')).read().strip()}")
        return
    rows = {f"{proto}-{kind}": wrk(os.path.join(d, f"{proto}-{kind}.txt"))
            for kind in ("keepalive", "close") for proto in ("http", "https")}
    hs = loop_result(os.path.join(d, "handshakes.json"))
    tcp = loop_result(os.path.join(d, "connects.json"))
    print("\nHTTPS through the helper's front vs plain HTTP to the same container (wrk, 8 connections)")
    print(f"{'':24} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'req/s vs http':>14}")
    for kind in ("keepalive", "close"):
        base = rows[f"http-{kind}"].get("rps")
        for proto in ("http", "https"):
            r = rows[f"{proto}-{kind}"]
            ratio = r.get("rps") / base if base and r.get("rps") else None
            print(f"{proto + ' ' + kind:24} {fmt(r.get('rps'), '10.0f')} {fmt(r.get('p50_ms'), '8.2f')} "
                  f"{fmt(r.get('p99_ms'), '8.2f')} {fmt(ratio, '14.2f')}"
                  + (f"  errors: {r['socket_errors']}" if "socket_errors" in r else "")
                  + (f"  non-2xx: {r['non_2xx']}" if "non_2xx" in r else "")
                  + (f"  {r['error']}" if "error" in r else ""))
    print("\nNew connections, one client, no request: full TLS handshakes with the front (SNI, the CA\n"
          "verified, no resumption) vs plain TCP connects to the container on the same path")
    print(f"{'':24} {'per s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for label, r in (("TLS handshake", hs), ("TCP connect", tcp)):
        print(f"{label:24} {fmt(r.get('per_s'), '10.0f')} {fmt(r.get('p50_ms'), '8.2f')} {fmt(r.get('p99_ms'), '8.2f')}"
              + (f"  failures: {r['failures']}" if r.get("failures") else "")
              + (f"  {r['error']}" if "error" in r else ""))
    try:
        report = json.load(open(json_out))
    except (OSError, ValueError):
        report = {}
    report["https"] = {"wrk": rows, "tls_handshakes": hs, "tcp_connects": tcp}
    with open(json_out, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
