#!/usr/bin/python3
"""Runs one example server (examples/) and drives it with python3-websockets.

    drive_example.py echo BIN
    drive_example.py worker-pool BIN
    drive_example.py chat BIN          (without a browser: rooms, page, refusals, /metrics)
    drive_example.py chat-tls BIN      (the same rooms and page over https:// and wss://,
                                        with a certificate made by `openssl req`)

Starts BIN on port 0, reads the URL it prints, checks what the example
promises, stops it with SIGTERM and checks that it exits 0. Exits non-zero with
a message naming what differed.
"""
import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

import websockets


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    sys.exit(1)


class Example:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.proc.kill()
            fail(f"{argv[0]} printed no URL: {line!r}; stderr: {self.proc.stderr.read()!r}")
        self.port = int(m.group(1))

    def stop(self, timeout=15):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("did not stop within %d s of SIGTERM" % timeout)
        if self.proc.returncode != 0:
            fail(f"exit status {self.proc.returncode}; stderr: {err!r}")
        return out


def http_get(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def metric_sum(text, name):
    total = 0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


async def echo_checks(port):
    url = f"ws://127.0.0.1:{port}/"
    async with websockets.connect(url, max_size=None) as ws:
        for size in (0, 1, 125, 126, 65535, 65536, 1 << 20):
            data = bytes((i * 7) & 0xFF for i in range(size))
            await ws.send(data)
            got = await ws.recv()
            if got != data:
                fail(f"binary echo of {size} bytes differs")
        await ws.send("héllo ✓")
        if await ws.recv() != "héllo ✓":
            fail("text echo differs")
    # A client that writes much more than it reads: nothing may be lost.
    count, size = 2000, 16384  # 32 MiB: far past socket buffers and the 1 MiB queue cap
    async with websockets.connect(url, max_size=None, write_limit=1 << 22) as ws:
        async def writer():
            for i in range(count):
                await ws.send(i.to_bytes(4, "big") * (size // 4))
        task = asyncio.create_task(writer())
        await asyncio.sleep(1.0)  # let the server's queue fill while we do not read
        for i in range(count):
            got = await asyncio.wait_for(ws.recv(), 30)
            if got != i.to_bytes(4, "big") * (size // 4):
                fail(f"echo {i} of {count} differs or is out of order")
        await task


async def worker_pool_checks(port, conns, per_conn):
    async def one(c):
        async with websockets.connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
            async def writer():
                for i in range(per_conn):
                    await ws.send(f"c{c}-m{i}-" + "x" * (i % 50))
            task = asyncio.create_task(writer())
            for i in range(per_conn):
                want = (f"c{c}-m{i}-" + "x" * (i % 50))[::-1]
                got = await asyncio.wait_for(ws.recv(), 60)
                if got != want:
                    fail(f"connection {c}: reply {i} is {got!r}, expected {want!r}")
            await task
    await asyncio.gather(*(one(c) for c in range(conns)))


async def chat_checks(port, scheme="ws", ctx=None):
    base = f"{scheme}://127.0.0.1:{port}/ws?room="
    ssl_arg = {"ssl": ctx} if ctx is not None else {}
    async with websockets.connect(base + "lobby", **ssl_arg) as a:
        if await a.recv() != "* 1 in lobby":
            fail("join notice for the first member")
        async with websockets.connect(base + "lobby", **ssl_arg) as b, \
                websockets.connect(base + "other", **ssl_arg) as c:
            await b.recv()
            await a.recv()
            await c.recv()
            await a.send("alice: hi")
            if await a.recv() != "alice: hi" or await b.recv() != "alice: hi":
                fail("room members did not both get the message")
            try:
                got = await asyncio.wait_for(c.recv(), 0.5)
                fail(f"another room got {got!r}")
            except asyncio.TimeoutError:
                pass
        if await a.recv() != "* 1 in lobby":
            fail("leave notice")
    for path, status in (("bad%20room", 400), ("", 400), ("x" * 33, 400)):
        try:
            await websockets.connect(base + path, **ssl_arg)
            fail(f"room {path!r} accepted")
        except websockets.exceptions.InvalidStatusCode as e:
            if e.status_code != status:
                fail(f"room {path!r}: status {e.status_code}, expected {status}")
    try:
        await websockets.connect(f"{scheme}://127.0.0.1:{port}/elsewhere", **ssl_arg)
        fail("upgrade outside /ws accepted")
    except websockets.exceptions.InvalidStatusCode as e:
        if e.status_code != 404:
            fail(f"/elsewhere: status {e.status_code}, expected 404")


def main():
    if len(sys.argv) != 3:
        fail(__doc__)
    which, binary = sys.argv[1], sys.argv[2]
    if which == "echo":
        ex = Example([binary, "0"])
        asyncio.run(echo_checks(ex.port))
        ex.stop()
    elif which == "worker-pool":
        conns, per_conn = 4, 5000
        # 2 workers at 250 us a message handle 8000/s, well below what the client
        # sends: the worker rings fill and the pause policy must act.
        ex = Example([binary, "0", "2", "250"])
        asyncio.run(worker_pool_checks(ex.port, conns, per_conn))
        status, _, metrics = http_get(ex.port, "/metrics")
        if status != 200:
            fail(f"/metrics answered {status}")
        out = ex.stop()
        stats = dict(re.findall(r"(\w+) (\d+)", out.splitlines()[-1]))
        total = conns * per_conn
        if int(stats.get("handled", -1)) != total:
            fail(f"workers handled {stats.get('handled')} of {total}: {out!r}")
        for zero in ("inbound_dropped", "send_backpressured", "slow_closes"):
            if int(stats.get(zero, -1)) != 0:
                fail(f"{zero} = {stats.get(zero)}: {out!r}")
        if int(stats.get("read_pauses", 0)) == 0:
            fail(f"the workers never fell behind, so the pause policy was not exercised: {out!r}")
        if metric_sum(metrics, "ringlink_messages_in_total") != total:
            fail("/metrics: ringlink_messages_in_total is not %d" % total)
        print(out.strip())
    elif which == "chat":
        ex = Example([binary, "0"])
        status, ctype, body = http_get(ex.port, "/")
        if status != 200 or not ctype.startswith("text/html") or "<title>ringlink chat</title>" not in body:
            fail(f"GET / answered {status} {ctype}")
        status, _, _ = http_get(ex.port, "/favicon.ico")
        if status != 404:
            fail(f"GET /favicon.ico answered {status}, expected 404")
        asyncio.run(chat_checks(ex.port))
        status, _, metrics = http_get(ex.port, "/metrics")
        if status != 200 or metric_sum(metrics, "ringlink_messages_in_total") != 1:
            fail(f"/metrics: {status}, messages_in {metric_sum(metrics, 'ringlink_messages_in_total')} (expected 1)")
        ex.stop()
    elif which == "chat-tls":
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "2", "-keyout", key, "-out", cert, "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           check=True, capture_output=True, timeout=30)
            ex = Example([binary, "0", cert, key, "0"])
            line = ex.proc.stdout.readline()
            m = re.search(r"https://127\.0\.0\.1:(\d+)/", line)
            if not m:
                ex.proc.kill()
                fail(f"no https URL printed: {line!r}")
            tls_port = int(m.group(1))
            ctx = ssl.create_default_context(cafile=cert)
            with urllib.request.urlopen(f"https://127.0.0.1:{tls_port}/", timeout=10, context=ctx) as r:
                if r.status != 200 or "<title>ringlink chat</title>" not in r.read().decode():
                    fail(f"GET / over https answered {r.status}")
            asyncio.run(chat_checks(tls_port, "wss", ctx))
            ex.stop()
    else:
        fail(__doc__)
    print(f"{which}: ok")


if __name__ == "__main__":
    main()
