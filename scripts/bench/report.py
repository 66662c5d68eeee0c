#!/usr/bin/env python3
"""Turn the raw results of scripts/bench.sh into a table (stdout) and a JSON file.

  report.py RESULTS_DIR JSON_OUT

RESULTS_DIR holds meta.tsv and one folder per path (raw, wireguard-go, dockroute, and
dockroute-tcp: Dockroute with `transport tcp`) with tcp1.json, tcp8.json, udp.json (iperf3 -J),
ping.txt, rr.json (tcprr.py), cpu.txt, idle.txt; and docker-idle.txt, the guest's idle CPU
measured in real Docker (tests-e2e/tests/sleep.rs), when it was run.
Targets are printed next to the numbers, never asserted: the exit code is 0 whenever a report
could be written.
"""
import json
import os
import re
import sys

PATHS = ["raw", "wireguard-go", "dockroute", "dockroute-tcp"]
# Teammate → container (sharing): through the helper, and wireguard-go ⇄ wireguard-go.
SHARE_PATHS = ["teammate-wireguard-go", "teammate-dockroute"]
SHARE_ROWS = [
    ("TCP 1 stream", ("tcp_1", "gbit_s"), "Gbit/s", "{:.3f}"),
    ("ICMP RTT p50", ("icmp_rtt", "p50_us"), "us", "{:.0f}"),
    ("ICMP RTT p99", ("icmp_rtt", "p99_us"), "us", "{:.0f}"),
    ("TCP req/resp p50", ("tcp_rr", "p50_us"), "us", "{:.0f}"),
    ("TCP req/resp p99", ("tcp_rr", "p99_us"), "us", "{:.0f}"),
]
# Which of the tunnel's processes is the "mac" end and which the "vm" end.
ENDS = {"wireguard-go": ("mac", "vm"), "dockroute": ("helper", "guest"), "dockroute-tcp": ("helper", "guest")}


def docker_idle(resdir):
    """The MEASURED line of the Docker idle test: {"cpu_pct": ..., "line": ...} or None."""
    try:
        text = open(os.path.join(resdir, "docker-idle.txt")).read()
    except OSError:
        return None
    m = re.search(r"guest_idle_cpu_pct=([0-9.]+)(.*)", text)
    if not m:
        return {"error": text.strip()[-300:] or "no measurement"}
    return {"cpu_pct": float(m.group(1)), "detail": m.group(2).strip()}


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    try:
                        out[parts[0]] = float(parts[1])
                    except ValueError:
                        pass
    except OSError:
        pass
    return out


def pct(vals, p):
    """Nearest-rank percentile of an already sorted list."""
    if not vals:
        return None
    k = max(0, min(len(vals) - 1, -(-p * len(vals) // 100) - 1))
    return vals[int(k)]


def iperf_error(doc, errfile):
    if doc is None:
        try:
            err = open(errfile).read().strip()
        except OSError:
            err = ""
        return err or "no iperf3 output"
    return doc.get("error")


def tcp_result(d, name):
    doc = load_json(os.path.join(d, name + ".json"))
    err = iperf_error(doc, os.path.join(d, name + ".err"))
    if err:
        return {"error": err}
    end = doc.get("end", {})
    rx = end.get("sum_received", {})
    tx = end.get("sum_sent", {})
    return {
        "gbit_s": rx.get("bits_per_second", 0) / 1e9,
        "bytes": rx.get("bytes", 0),
        "seconds": rx.get("seconds"),
        "retransmits": tx.get("retransmits"),
    }


def udp_result(d):
    doc = load_json(os.path.join(d, "udp.json"))
    err = iperf_error(doc, os.path.join(d, "udp.err"))
    if err:
        return {"error": err}
    end = doc.get("end", {})
    tx = end.get("sum_sent") or end.get("sum", {})
    rx = end.get("sum_received") or end.get("sum", {})
    secs = rx.get("seconds") or tx.get("seconds") or 1
    sent = tx.get("packets", 0)
    # receiver: "packets" is the highest sequence seen, "lost_packets" the gaps below it
    got = max(rx.get("packets", 0) - rx.get("lost_packets", 0), 0)
    return {
        "sent_pps": sent / secs,
        "rx_pps": got / secs,
        "loss_pct": 100.0 * (sent - got) / sent if sent else None,
        "rx_gbit_s": rx.get("bits_per_second", 0) / 1e9,
        "payload_bytes": doc.get("start", {}).get("test_start", {}).get("blksize"),
    }


def ping_result(d):
    try:
        text = open(os.path.join(d, "ping.txt")).read()
    except OSError:
        return {"error": "no ping output"}
    rtts = sorted(float(m) * 1000 for m in re.findall(r"time=([0-9.]+) ms", text))
    m = re.search(r"(\d+) packets transmitted, (\d+) received", text)
    sent, got = (int(m.group(1)), int(m.group(2))) if m else (None, len(rtts))
    if not rtts:
        return {"error": "no replies", "sent": sent}
    return {
        "count": len(rtts), "sent": sent, "lost": (sent - got) if sent is not None else None,
        "p50_us": pct(rtts, 50), "p90_us": pct(rtts, 90), "p99_us": pct(rtts, 99),
        "min_us": rtts[0], "max_us": rtts[-1],
    }


def rr_result(d):
    doc = load_json(os.path.join(d, "rr.json"))
    if doc is None:
        try:
            err = open(os.path.join(d, "rr.err")).read().strip().splitlines()[-1:]
        except OSError:
            err = []
        return {"error": err[0] if err else "no output"}
    return doc


def cpu_result(d, path, clk_tck, tcp1):
    ends = ENDS.get(path)
    if not ends:
        return None
    kv = load_kv(os.path.join(d, "cpu.txt"))
    out = {}
    gb = (tcp1.get("bytes") or 0) / 1e9
    total = 0.0
    for end in ends:
        b, a = kv.get(end + "_ticks_before"), kv.get(end + "_ticks_after")
        if a is None or b is None:
            continue
        secs = (a - b) / clk_tck
        total += secs
        out[end + "_cpu_s"] = secs
        out[end + "_cpu_s_per_gb"] = secs / gb if gb else None
    out["total_cpu_s_per_gb"] = total / gb if gb else None
    out["gb_moved"] = gb
    return out


def idle_result(d, path, clk_tck):
    ends = ENDS.get(path)
    kv = load_kv(os.path.join(d, "idle.txt"))
    if not ends or not kv:
        return None
    wall = kv.get("idle_wall_ns", 0) / 1e9 or 1
    out = {"seconds": wall}
    for end in ends:
        b, a = kv.get(end + "_idle_ticks_before"), kv.get(end + "_idle_ticks_after")
        sb, sa = kv.get(end + "_idle_sched_before"), kv.get(end + "_idle_sched_after")
        if a is not None and b is not None:
            out[end + "_cpu_pct_ticks"] = 100 * (a - b) / clk_tck / wall
        if sa is not None and sb is not None and (sa or sb):
            # live threads only, ns resolution; a thread that exited in between makes it < 0
            out[end + "_cpu_pct"] = max(0.0, 100 * (sa - sb) / 1e9 / wall)
        for k in ("rss_kb", "hwm_kb"):
            if end + "_" + k in kv:
                out[end + "_" + k.replace("_kb", "_mb")] = kv[end + "_" + k] / 1024
    return out


def collect(resdir):
    meta = {}
    try:
        with open(os.path.join(resdir, "meta.tsv")) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                meta[k] = v
    except OSError:
        pass
    clk_tck = float(meta.get("clk_tck") or 100)
    results = {}
    for path in PATHS:
        d = os.path.join(resdir, path)
        if not os.path.isdir(d):
            results[path] = {"error": "not run"}
            continue
        if os.path.exists(os.path.join(d, "error")):
            results[path] = {"error": open(os.path.join(d, "error")).read().strip()}
            continue
        tcp1 = tcp_result(d, "tcp1")
        r = {
            "tcp_1": tcp1,
            "tcp_8": tcp_result(d, "tcp8"),
            "udp": udp_result(d),
            "icmp_rtt": ping_result(d),
            "tcp_rr": rr_result(d),
        }
        cpu = cpu_result(d, path, clk_tck, tcp1)
        if cpu:
            r["cpu_tcp_1"] = cpu
        idle = idle_result(d, path, clk_tck)
        if idle:
            r["idle"] = idle
        results[path] = r
    for path in SHARE_PATHS:
        d = os.path.join(resdir, path)
        if not os.path.isdir(d):
            continue
        if os.path.exists(os.path.join(d, "error")):
            results[path] = {"error": open(os.path.join(d, "error")).read().strip()}
            continue
        results[path] = {"tcp_1": tcp_result(d, "tcp1"), "icmp_rtt": ping_result(d), "tcp_rr": rr_result(d)}
    di = docker_idle(resdir)
    if di is not None:
        results["docker_idle"] = di
    return meta, results


def share_table(results):
    """Teammate → container: wireguard-go ⇄ wireguard-go, Dockroute's share, and the ratio."""
    if not any(p in results for p in SHARE_PATHS):
        return []
    rows = [("teammate -> container", "unit", "wg-go<->wg-go", "dockroute share", "share/wg")]
    for label, keys, unit, f in SHARE_ROWS:
        wg, dr = (get(results, p, *keys) for p in SHARE_PATHS)
        rows.append((label, unit, fmt(f, wg), fmt(f, dr), fmt("{:.2f}x", dr / wg if dr is not None and wg else None)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    for p in SHARE_PATHS:
        res = results.get(p, {})
        if "error" in res:
            lines.append(f"  {p}: {res['error']}")
        for k, v in res.items():
            if isinstance(v, dict) and "error" in v:
                lines.append(f"  {p} {k}: {v['error']}")
    return lines


def share_summary(results):
    out = {}
    for label, keys, unit, _ in SHARE_ROWS:
        wg, dr = (get(results, p, *keys) for p in SHARE_PATHS)
        out[label] = {"unit": unit, "wireguard-go": wg, "dockroute": dr,
                      "dockroute_over_wireguard_go": dr / wg if dr is not None and wg else None}
    return out


def get(results, path, *keys):
    v = results.get(path, {})
    for k in keys:
        if not isinstance(v, dict):
            return None
        v = v.get(k)
    return v if isinstance(v, (int, float)) else None


# (label, keys, unit, format, higher_is_better)
ROWS = [
    ("TCP 1 stream", ("tcp_1", "gbit_s"), "Gbit/s", "{:.3f}", True),
    ("TCP 8 streams", ("tcp_8", "gbit_s"), "Gbit/s", "{:.3f}", True),
    ("UDP 1400B sent", ("udp", "sent_pps"), "kpps", "{:.1f}", True),
    ("UDP 1400B received", ("udp", "rx_pps"), "kpps", "{:.1f}", True),
    ("UDP 1400B loss", ("udp", "loss_pct"), "%", "{:.1f}", False),
    ("ICMP RTT p50", ("icmp_rtt", "p50_us"), "us", "{:.0f}", False),
    ("ICMP RTT p99", ("icmp_rtt", "p99_us"), "us", "{:.0f}", False),
    ("TCP req/resp p50", ("tcp_rr", "p50_us"), "us", "{:.0f}", False),
    ("TCP req/resp p99", ("tcp_rr", "p99_us"), "us", "{:.0f}", False),
    ("CPU/GB mac end", ("cpu_tcp_1", None), "s/GB", "{:.2f}", False),
    ("CPU/GB vm end", ("cpu_tcp_1", None), "s/GB", "{:.2f}", False),
    ("CPU/GB both ends", ("cpu_tcp_1", "total_cpu_s_per_gb"), "s/GB", "{:.2f}", False),
    ("idle CPU mac end", ("idle", None), "%", "{:.3f}", False),
    ("idle CPU vm end", ("idle", None), "%", "{:.3f}", False),
    ("RSS mac end (idle)", ("idle", None), "MB", "{:.1f}", False),
    ("peak RSS mac end", ("idle", None), "MB", "{:.1f}", False),
    ("RSS vm end (idle)", ("idle", None), "MB", "{:.1f}", False),
]


def row_keys(label, keys, path):
    """Resolve the per-end key names (mac end = helper / wg mac, vm end = guest / wg vm)."""
    ends = ENDS.get(path)
    if keys[1] is not None:
        return keys
    if not ends:
        return None
    mac, vm = ends
    if label == "CPU/GB mac end":
        return ("cpu_tcp_1", mac + "_cpu_s_per_gb")
    if label == "CPU/GB vm end":
        return ("cpu_tcp_1", vm + "_cpu_s_per_gb")
    if label == "idle CPU mac end":
        return ("idle", mac + "_cpu_pct")
    if label == "idle CPU vm end":
        return ("idle", vm + "_cpu_pct")
    if label == "RSS vm end (idle)":
        return ("idle", vm + "_rss_mb")
    if label == "RSS mac end (idle)":
        return ("idle", mac + "_rss_mb")
    if label == "peak RSS mac end":
        return ("idle", mac + "_hwm_mb")
    return None


# Issue 20's targets that compare two paths of this one run on the same measurement:
# (target, "ratio" a/b or "added" a-b, path a, path b, keys, goal, whether the value must be at least the goal).
COMPARED = [
    ("TCP 1 stream >= 0.6x raw", "ratio", "dockroute", "raw", ("tcp_1", "gbit_s"), 0.6, True),
    ("TCP 8 streams >= 0.7x raw", "ratio", "dockroute", "raw", ("tcp_8", "gbit_s"), 0.7, True),
    ("ICMP RTT p50 added over raw <= 60 us", "added", "dockroute", "raw", ("icmp_rtt", "p50_us"), 60.0, False),
    ("TCP req/resp p50 added over raw <= 60 us", "added", "dockroute", "raw", ("tcp_rr", "p50_us"), 60.0, False),
    ("TCP 1 stream >= 5x wireguard-go", "ratio", "dockroute", "wireguard-go", ("tcp_1", "gbit_s"), 5.0, True),
    ("TCP transport >= 0.5x UDP (1 stream)", "ratio", "dockroute-tcp", "dockroute", ("tcp_1", "gbit_s"), 0.5, True),
    ("TCP transport ICMP p50 <= 1.5x UDP's", "ratio", "dockroute-tcp", "dockroute", ("icmp_rtt", "p50_us"), 1.5, False),
    ("share TCP >= 1.5x wg-go<->wg-go", "ratio", "teammate-dockroute", "teammate-wireguard-go", ("tcp_1", "gbit_s"),
     1.5, True),
    ("share ICMP p50 <= 1.2x wg-go<->wg-go", "ratio", "teammate-dockroute", "teammate-wireguard-go",
     ("icmp_rtt", "p50_us"), 1.2, False),
]


def targets(results):
    """Issue 20's targets, each a ratio or a difference within this one run, or an absolute bound."""
    def t(name, value, goal, at_least):
        met = None if value is None else (value >= goal if at_least else value <= goal)
        return {"target": name, "value": value, "goal": goal, "met": met}

    out = []
    for name, how, a, b, keys, goal, at_least in COMPARED:
        va, vb = get(results, a, *keys), get(results, b, *keys)
        if how == "ratio":
            value = va / vb if va is not None and vb else None
        else:
            value = va - vb if va is not None and vb is not None else None
        out.append(t(name, value, goal, at_least))
    idle = get(results, "dockroute", "idle", "helper_cpu_pct")
    if idle is None:
        idle = get(results, "dockroute", "idle", "helper_cpu_pct_ticks")
    out.append(t("helper idle CPU ~0 (<= 0.1 %)", idle, 0.1, False))
    out.append(t("helper RSS <= 20 MB", get(results, "dockroute", "idle", "helper_rss_mb"), 20.0, False))
    out.append(t("guest RSS <= 20 MB", get(results, "dockroute", "idle", "guest_rss_mb"), 20.0, False))
    out.append(t("guest idle CPU in Docker <= 0.05 %", get(results, "docker_idle", "cpu_pct"), 0.05, False))
    return out


def fmt(f, v):
    return "-" if v is None else f.format(v)


def table(meta, results):
    lines = []
    lines.append("Dockroute data-path benchmark ({} mode, {} s per iperf3 test, {} pings, {} TCP exchanges)".format(
        meta.get("mode", "?"), meta.get("iperf_seconds", "?"), meta.get("pings", "?"), meta.get("rr_count", "?")))
    lines.append("machine: {} | nproc {} | kernel {} | load avg {} -> {}".format(
        meta.get("cpu_model", "?"), meta.get("nproc", "?"), meta.get("kernel", "?"),
        meta.get("loadavg_start", "?"), meta.get("loadavg_end", "?")))
    lines.append("versions: dockroute {} | {} | {} | tunnel MTU: dockroute {} wireguard-go {}".format(
        meta.get("dockroute_commit", "?"), meta.get("wireguard_go", "?"), meta.get("iperf3", "?"),
        meta.get("dockroute_mtu", "?"), meta.get("wg_mtu", "?")))
    offl = [f"{k[8:]}: {v}" for k, v in meta.items() if k.startswith("offload ")]
    if offl:
        how = "turned off (--no-offload)" if meta.get("veth_offload") == "off" else "defaults, untouched"
        lines.append(f"veth offloads ({how}): " + offl[0])
    hdr = ("metric", "unit", "raw", "wireguard-go", "dockroute", "dr over tcp", "dr/raw", "dr/wg", "tcp/dr")
    rows = [hdr]
    for label, keys, unit, f, _ in ROWS:
        vals = []
        for path in PATHS:
            k = row_keys(label, keys, path)
            vals.append(get(results, path, *k) if k else None)
        raw, wg, dr, tcp = vals
        ratio = lambda a, b: a / b if a is not None and b else None
        shown = lambda v: fmt(f, v if unit != "kpps" or v is None else v / 1e3)
        rows.append((label, unit, shown(raw), shown(wg), shown(dr), shown(tcp),
                     fmt("{:.2f}x", ratio(dr, raw)), fmt("{:.2f}x", ratio(dr, wg)), fmt("{:.2f}x", ratio(tcp, dr))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(hdr))]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(widths[j]) if j < 2 else c.rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    di = results.get("docker_idle")
    if di and "cpu_pct" in di:
        lines.append("guest idle CPU in real Docker (container cgroup, children included): {:.4f} % {}".format(
            di["cpu_pct"], di.get("detail", "")))
    errs = []
    if di and "error" in di:
        errs.append("docker idle: " + di["error"])
    for path in PATHS:
        res = results.get(path, {})
        if "error" in res:
            errs.append(f"{path}: {res['error']}")
            continue
        for k, v in res.items():
            if isinstance(v, dict) and "error" in v:
                errs.append(f"{path} {k}: {v['error']}")
    if errs:
        lines.append("errors:")
        lines.extend("  " + e for e in errs)
    lines.append("mac end = dockroute-helper / wireguard-go in drb-mac; vm end = dockroute-guest / wireguard-go in drb-vm;"
                 " CPU/GB = utime+stime during the TCP 1-stream test / GB received;"
                 " dr over tcp = Dockroute with `transport tcp` (the fallback path)")
    lines.append("targets (printed, not asserted):")
    for t in targets(results):
        mark = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        lines.append("  {:<42} value {:>10}  goal {:>6}  {}".format(
            t["target"], fmt("{:.3f}", t["value"]), t["goal"], mark))
    lines.extend(share_table(results))
    lines.append("runtime: {} s".format(meta.get("runtime_s", "?")))
    return "\n".join(lines)


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    resdir, out = sys.argv[1], sys.argv[2]
    meta, results = collect(resdir)
    ratios = {}
    for label, keys, unit, f, _ in ROWS:
        k = row_keys(label, keys, "dockroute")
        k_raw = row_keys(label, keys, "raw")
        k_wg = row_keys(label, keys, "wireguard-go")
        dr = get(results, "dockroute", *k) if k else None
        raw = get(results, "raw", *k_raw) if k_raw else None
        wg = get(results, "wireguard-go", *k_wg) if k_wg else None
        tcp = get(results, "dockroute-tcp", *k) if k else None
        ratios[label] = {
            "unit": unit,
            "raw": raw, "wireguard-go": wg, "dockroute": dr, "dockroute-tcp": tcp,
            "dockroute_tcp_over_udp": tcp / dr if tcp is not None and dr else None,
            "dockroute_over_raw": dr / raw if dr is not None and raw else None,
            "dockroute_over_wireguard_go": dr / wg if dr is not None and wg else None,
        }
    doc = {
        "machine": {k: meta.get(k) for k in ("cpu_model", "nproc", "kernel", "loadavg_start", "loadavg_end")},
        "meta": meta,
        "results": results,
        "summary": ratios,
        "share_summary": share_summary(results),
        "targets": targets(results),
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(table(meta, results))
    print(f"json: {out}")


if __name__ == "__main__":
    main()
