#!/usr/bin/env python3
"""Full TLS handshakes per second against one address, one client, for a bounded time: a new
TCP connection and a new handshake each time (no session resumption: a fresh context per
connection), SNI set and the certificate verified against a CA file; then closed. With
--tcp-only, the same loop without TLS (the baseline: what connecting alone costs on the path).
Prints one JSON object: handshakes, seconds, per second, p50/p99 milliseconds, failures.
OpenSSL 3.0's `s_time` (Debian 12's) cannot send SNI, which the front needs to pick a leaf.

    tls_handshakes.py HOST PORT SECONDS [--tls SNI CAFILE | --tcp-only]
"""
import json
import socket
import ssl
import sys
import time


def main():
    host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    tls = sys.argv[4] == "--tls"
    sni, cafile = (sys.argv[5], sys.argv[6]) if tls else (None, None)
    times, failures, last_error = [], 0, None
    end = time.monotonic() + seconds
    # Bounded by time, and by count in case the clock misbehaves.
    for _ in range(1_000_000):
        if time.monotonic() >= end:
            break
        start = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=5) as raw:
                if tls:
                    ctx = ssl.create_default_context(cafile=cafile)
                    with ctx.wrap_socket(raw, server_hostname=sni) as s:
                        s.do_handshake()
            times.append(time.perf_counter() - start)
        except OSError as e:
            failures += 1
            last_error = str(e)
    times.sort()

    def pct(p):
        return round(times[min(len(times) - 1, int(p * len(times)))] * 1000, 3) if times else None

    out = {"handshakes": len(times), "seconds": seconds, "per_s": round(len(times) / seconds, 1),
           "p50_ms": pct(0.50), "p99_ms": pct(0.99), "failures": failures}
    if last_error:
        out["last_error"] = last_error
    print(json.dumps(out))


if __name__ == "__main__":
    main()
