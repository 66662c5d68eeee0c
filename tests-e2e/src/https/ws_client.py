"""A WebSocket client over TLS for the HTTPS end-to-end test: verifies the server with the
system's trust store (Python's default context: /etc/ssl/certs), upgrades, sends one masked
text frame and prints the text of the frame that comes back. Exits non-zero on any failure.

    python3 ws_client.py HOST MESSAGE
"""
import base64
import hashlib
import os
import socket
import ssl
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
host, message = sys.argv[1], sys.argv[2].encode()
context = ssl.create_default_context()
with socket.create_connection((host, 443), timeout=5) as raw:
    with context.wrap_socket(raw, server_hostname=host) as tls:
        key = base64.b64encode(os.urandom(16))
        tls.sendall(b"GET /echo HTTP/1.1\r\nHost: " + host.encode() + b"\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = tls.recv(4096)
            if not chunk:
                sys.exit(f"closed during the upgrade: {response!r}")
            response += chunk
        head, rest = response.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            sys.exit(f"no upgrade: {head!r}")
        expected = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if b"Sec-WebSocket-Accept: " + expected not in head:
            sys.exit(f"wrong accept key: {head!r}")
        mask = os.urandom(4)
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(message))
        tls.sendall(bytes([0x81, 0x80 | len(message)]) + mask + payload)
        while len(rest) < 2 + len(message):
            chunk = tls.recv(4096)
            if not chunk:
                sys.exit(f"closed before the echo: {rest!r}")
            rest += chunk
        if rest[0] != 0x81 or rest[1] != len(message):
            sys.exit(f"unexpected frame header {rest[:2]!r}")
        print(rest[2:2 + len(message)].decode())
