"""A WebSocket echo server (RFC 6455, text and binary frames, no extensions) for the HTTPS
end-to-end test: it runs in a container's network namespace (nsenter), so the front reaches
it at the container's address like any web server in the container. Standard library only.

    python3 ws_echo.py PORT

It ends itself after 10 minutes whatever happens to the test that started it (SIGALRM).
"""
import asyncio
import base64
import hashlib
import signal
import sys

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def read_frame(reader):
    head = await reader.readexactly(2)
    opcode, masked, length = head[0] & 0x0F, head[1] & 0x80, head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    if length > 1 << 20:
        raise ValueError("frame too large")
    mask = await reader.readexactly(4) if masked else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
    return opcode, data


def frame(opcode, data):
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + data


async def serve(reader, writer):
    try:
        request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        headers = {}
        for line in request.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        key = headers.get("sec-websocket-key", "").encode()
        if headers.get("upgrade", "").lower() != "websocket" or not key:
            writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            return
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        while True:
            opcode, data = await asyncio.wait_for(read_frame(reader), 30)
            if opcode == 8:
                writer.write(frame(8, data))
                break
            if opcode in (1, 2):
                writer.write(frame(opcode, data))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", int(sys.argv[1]))
    async with server:
        await server.serve_forever()


signal.alarm(600)
asyncio.run(main())
