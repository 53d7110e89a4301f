#!/usr/bin/python3
"""WebSocket servers for the ringlink-load tests, on python3-websockets.

usage: ws_echo.py PORT_FILE MODE
  echo     echo every message unchanged
  corrupt  echo, but on every connection: message 3 with its last byte
           changed, message 5 with a header byte changed, message 7 twice,
           message 9 not at all (messages counted from 0)
  close    echo 10 messages on each connection, then close it with 4001
  refuse   answer every upgrade with 403
Listens on 127.0.0.1, port chosen by the kernel, written to PORT_FILE.
Exits on SIGTERM/SIGINT, when stdin reaches EOF, or after 120 s.
"""
import asyncio
import http
import os
import signal
import sys

import websockets


def flip(msg, index):
    if isinstance(msg, str):
        b = bytearray(msg.encode())
        b[index] = ord("A") if b[index] != ord("A") else ord("B")  # stays ASCII
        return b.decode()
    b = bytearray(msg)
    b[index] ^= 0x01
    return bytes(b)


def make_handler(mode):
    async def handler(ws, path=None):
        n = 0
        try:
            async for msg in ws:
                if mode == "corrupt":
                    if n == 3:
                        await ws.send(flip(msg, -1))
                    elif n == 5:
                        await ws.send(flip(msg, 0))
                    elif n == 7:
                        await ws.send(msg)
                        await ws.send(msg)
                    elif n != 9:
                        await ws.send(msg)
                elif mode == "close" and n == 10:
                    await ws.close(4001, "test close")
                    break
                else:
                    await ws.send(msg)
                n += 1
        except websockets.ConnectionClosed:
            pass
    return handler


async def refuse(path, headers):
    return http.HTTPStatus.FORBIDDEN, [], b"refused by ws_echo.py\n"


async def main(port_file, mode):
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish():
        if not done.done():
            done.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, finish)
    loop.add_signal_handler(signal.SIGINT, finish)

    def on_stdin():
        if not os.read(sys.stdin.fileno(), 4096):
            loop.remove_reader(sys.stdin.fileno())
            finish()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    kwargs = {"ping_interval": None, "max_size": None, "compression": None}
    if mode == "refuse":
        kwargs["process_request"] = refuse
    async with websockets.serve(make_handler(mode), "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, port_file)
        try:
            await asyncio.wait_for(done, 120)
        except asyncio.TimeoutError:
            pass


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in ("echo", "corrupt", "close", "refuse"):
        sys.exit(__doc__)
    asyncio.run(main(sys.argv[1], sys.argv[2]))
