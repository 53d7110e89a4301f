#!/usr/bin/python3
"""python3-websockets with permessage-deflate against a ringlink server.

usage: deflate_client.py URL MODE     (MODE: takeover | no_takeover | window)

takeover: websockets' default offer (compression on, context takeover);
no_takeover: both no_context_takeover parameters, windows 10 and 11;
window: server_max_window_bits=9, client_max_window_bits=9.
Each checks that permessage-deflate was agreed, echoes text and binary of
16 B to 1 MiB and a fragmented message, closes with 1000, and prints
nothing on success (one line per problem otherwise).
"""
import asyncio
import json
import random
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory


def factory(mode):
    if mode == "takeover":
        return None  # websockets' default: compression="deflate"
    if mode == "no_takeover":
        return ClientPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True,
                                              server_max_window_bits=11, client_max_window_bits=10)
    return ClientPerMessageDeflateFactory(server_max_window_bits=9, client_max_window_bits=9)


def json_text(n):
    rows, size = [], 0
    while size < n:
        rows.append(json.dumps({"id": len(rows), "name": "ringlink", "tags": ["a", "b"], "ok": True}))
        size += len(rows[-1]) + 1
    return ("[" + ",".join(rows) + "]")[:n]


async def main(url, mode):
    f = factory(mode)
    kw = {"max_size": None, "compression": "deflate"} if f is None else {"max_size": None, "compression": None,
                                                                         "extensions": [f]}
    problems = []
    async with websockets.connect(url, **kw) as ws:
        agreed = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        if not agreed.startswith("permessage-deflate"):
            problems.append(f"not agreed: {agreed!r}")
        rnd = random.Random(5)
        for n in [16, 100, 1024, 65536, 1 << 20]:
            t = json_text(n)
            await ws.send(t)
            if await ws.recv() != t:
                problems.append(f"text {n} differs")
            b = bytes(rnd.getrandbits(8) for _ in range(min(n, 4096))) * (n // 4096 + 1)
            b = b[:n]
            await ws.send(b)
            if await ws.recv() != b:
                problems.append(f"binary {n} differs")
        parts = [json_text(300), "ž", json_text(700)]
        await ws.send(iter(parts))  # one message in three frames
        if await ws.recv() != "".join(parts):
            problems.append("fragmented differs")
        await ws.close(1000)
    for p in problems:
        print(p)


asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 40))
