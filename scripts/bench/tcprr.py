#!/usr/bin/env python3
"""TCP request/response latency: sequential 1-byte exchanges over one connection.

  tcprr.py server HOST PORT            serve until killed (one connection at a time)
  tcprr.py client HOST PORT COUNT      print JSON: count, p50/p90/p99/mean/min/max in microseconds

Every socket operation has a timeout, so a broken path ends the client instead of hanging it.
"""
import json
import socket
import sys
import time


def serve(host: str, port: int) -> None:
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(4)
    while True:
        conn, _ = ls.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(30)
        try:
            while True:
                b = conn.recv(1)
                if not b:
                    break
                conn.sendall(b)
        except OSError:
            pass
        finally:
            conn.close()


def pct(sorted_vals, p):
    # nearest-rank percentile
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def client(host: str, port: int, count: int) -> None:
    s = socket.create_connection((host, port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(5)
    # warm-up: a few exchanges that are not counted
    for _ in range(20):
        s.sendall(b"x")
        if not s.recv(1):
            raise SystemExit("server closed")
    rtts = []
    clock = time.perf_counter_ns
    for _ in range(count):
        t0 = clock()
        s.sendall(b"x")
        if not s.recv(1):
            raise SystemExit("server closed")
        rtts.append((clock() - t0) / 1000.0)
    s.close()
    v = sorted(rtts)
    print(json.dumps({
        "count": len(v),
        "p50_us": pct(v, 50), "p90_us": pct(v, 90), "p99_us": pct(v, 99),
        "mean_us": sum(v) / len(v), "min_us": v[0], "max_us": v[-1],
    }))


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "server":
        serve(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
