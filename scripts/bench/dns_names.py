#!/usr/bin/env python3
"""Give a running helper DNS names through its API (the benchmark has no controller).

  dns_names.py SOCKET COUNT SUBNET_PREFIX

Sends hello, then set_names with COUNT names b1..bCOUNT (relative to the helper's suffix), each
with the address SUBNET_PREFIX.(i % 250 + 1), and prints the names, one per line.
"""
import json
import socket
import struct
import sys


def call(sock, request):
    body = json.dumps(request).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)
    header = sock.recv(4, socket.MSG_WAITALL)
    (length,) = struct.unpack(">I", header)
    reply = json.loads(sock.recv(length, socket.MSG_WAITALL))
    if "error" in reply:
        raise SystemExit(f"helper refused {request['op']}: {reply['error']}")
    return reply


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    path, count, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    names = {f"b{i}": [f"{prefix}.{i % 250 + 1}"] for i in range(1, count + 1)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        call(s, {"id": 1, "op": "hello", "version": 1, "client": "bench.sh"})
        call(s, {"id": 2, "op": "set_names", "names": names, "domains": {}})
    print("\n".join(names))


if __name__ == "__main__":
    main()
