#!/usr/bin/python3
"""A python3-websockets echo server for testing ringlink's client.

usage: ws_server.py MODE      (MODE: echo | refuse)

Listens on 127.0.0.1 with a port the kernel picks and prints "port N" on
stdout. In echo mode it echoes every message, pings every 0.2 s (websockets'
keepalive: a client that does not answer is closed with 1011), and:
  "ping-me"       -> pings with payload "srv-ping", waits for the matching
                     pong, then sends "pong-ok"
  "close-please"  -> closes with 4002 "py-bye"
When a connection ends it prints "closed CODE REASON" (the code and reason of
the close frame it received). In refuse mode every upgrade gets 403.
Exits on SIGTERM, when stdin reaches EOF (the test went away), or after 60 s.
"""
import asyncio
import http
import signal
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            if msg == "close-please":
                await ws.close(4002, "py-bye")
                break
            if msg == "ping-me":
                waiter = await ws.ping(b"srv-ping")
                await asyncio.wait_for(waiter, 10)
                await ws.send("pong-ok")
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    await ws.wait_closed()
    print(f"closed {ws.close_code} {ws.close_reason}", flush=True)


async def refuse(path, headers):
    return http.HTTPStatus.FORBIDDEN, [], b"refused by ws_server.py\n"


async def main(mode):
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish():
        if not done.done():
            done.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, finish)
    loop.add_signal_handler(signal.SIGINT, finish)

    def on_stdin():
        if not sys.stdin.buffer.raw.read(4096):
            loop.remove_reader(sys.stdin.fileno())
            finish()

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    kwargs = dict(max_size=None, ping_interval=0.2, ping_timeout=5, close_timeout=5)
    if mode == "refuse":
        kwargs["process_request"] = refuse
    elif mode != "echo":
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    async with websockets.serve(echo, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        try:
            await asyncio.wait_for(done, 60)
        except asyncio.TimeoutError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "echo")))
