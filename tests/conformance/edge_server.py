#!/usr/bin/python3
"""A python3-websockets server that sends edge cases to a client.

usage: edge_server.py

Listens on 127.0.0.1 (port chosen by the kernel) and prints "port N". The
request path picks what it sends; frames the library cannot produce (a code
point split across fragments, invalid UTF-8) are written raw on the
transport:
  /split     "caf\\xc3" + "\\xa9 " (fragments), then U+1F600 in 3 fragments
  /ping125   a ping with a 125-byte payload; waits for the pong; sends "pong-ok"
  /empty     an empty text message, then an empty binary message
  /big       a 1 MiB text message, then a 1 MiB binary message
  /close4000 close with code 4000 and reason "edge reason"
  /badutf8   a text frame with the bytes C0 AF (invalid UTF-8)
Every scenario but the last two ends with a close 1000. When a connection
ends it prints "closed PATH CODE REASON" (the client's close frame).
Exits on SIGTERM, at EOF on stdin (the test went away), or after 60 s.
"""
import asyncio
import signal
import struct
import sys

import websockets


def raw_frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


async def scenario(ws, path):
    if path == "/split":
        ws.transport.write(raw_frame(0x1, b"caf\xc3", fin=False))
        ws.transport.write(raw_frame(0x0, b"\xa9 ", fin=True))
        smiley = "\U0001F600".encode()
        ws.transport.write(raw_frame(0x1, smiley[:1], fin=False))
        ws.transport.write(raw_frame(0x0, smiley[1:3], fin=False))
        ws.transport.write(raw_frame(0x0, smiley[3:], fin=True))
        await ws.send("after")
        await ws.close(1000)
    elif path == "/ping125":
        waiter = await ws.ping(bytes(range(125)))
        await asyncio.wait_for(waiter, 10)
        await ws.send("pong-ok")
        await ws.close(1000)
    elif path == "/empty":
        await ws.send("")
        await ws.send(b"")
        await ws.close(1000)
    elif path == "/big":
        await ws.send("\u00e9" * (512 * 1024))
        await ws.send(bytes(i & 0xFF for i in range(1 << 20)))
        await ws.close(1000)
    elif path == "/close4000":
        await ws.close(4000, "edge reason")
    elif path == "/badutf8":
        ws.transport.write(raw_frame(0x1, b"\xc0\xaf"))
    await ws.wait_closed()


async def handler(ws, path):
    try:
        await scenario(ws, path)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    print(f"closed {path} {ws.close_code} {ws.close_reason}", flush=True)


async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish():
        if not done.done():
            done.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, finish)

    def on_stdin():
        if not sys.stdin.buffer.raw.read(4096):
            loop.remove_reader(sys.stdin.fileno())
            finish()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None,
                                close_timeout=5) as server:
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        try:
            await asyncio.wait_for(done, 60)
        except asyncio.TimeoutError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
