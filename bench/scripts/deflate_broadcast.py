#!/usr/bin/python3
"""Compress once for many: ringlink-echo --deflate (--broadcast, or --pubsub
with every link subscribed to one topic) holds LINKS links that offered
permessage-deflate; one of them sends a 1 KiB JSON-like text message (PUB
in --pubsub), which reaches every link. Reports how many links received it
compressed (RSV1) and how many times the server ran deflate for it (the
ringlink_deflate_calls_total counter of GET /metrics, before and after).

usage: deflate_broadcast.py BUILD_DIR [--links N] [--reactors R]
                            [--mode broadcast|topic] [--takeover]
Without --takeover the links offer server_no_context_takeover (the shared
frame); with it they keep their contexts (one deflate each).
"""
import argparse, os, resource, selectors, socket, subprocess, sys, tempfile, time, urllib.request

def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines()
               if l.startswith(name + "{") or l.startswith(name + " "))

def json_text(n):
    rows, size = [], 0
    while size < n:
        rows.append('{"id":%d,"name":"ringlink","tags":["a","b"],"ok":true}' % len(rows))
        size += len(rows[-1]) + 1
    return ("[" + ",".join(rows) + "]")[:n].encode()

def masked_text(payload):
    mask = os.urandom(4)
    k = len(payload)
    head = bytes([0x81]) + (bytes([0x80 | k]) if k < 126 else bytes([0x80 | 126]) + k.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--links", type=int, default=1000)
    ap.add_argument("--reactors", type=int, default=2)
    ap.add_argument("--mode", choices=["broadcast", "topic"], default="broadcast")
    ap.add_argument("--takeover", action="store_true")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = tempfile.mkdtemp()
    portfile = os.path.join(work, "port")
    cmd = ["taskset", "-c", "0", os.path.join(a.build, "tools/ringlink-echo"), "--port", "0", "--port-file", portfile,
           "--reactors", str(a.reactors), "--deflate", "--metrics", "--deflate-budget", str(8 << 30),
           "--broadcast" if a.mode == "broadcast" else "--pubsub"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(portfile) and os.path.getsize(portfile) > 0:
                break
            time.sleep(0.05)
        port = int(open(portfile).read())
        offer = "permessage-deflate" if a.takeover else "permessage-deflate; server_no_context_takeover"
        path = "/" if a.mode == "broadcast" else "/?sub=news"
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Extensions: {offer}\r\n\r\n").encode()
        socks, agreed = [], 0
        for _ in range(a.links):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = s.recv(4096)
                if not data:
                    raise RuntimeError("server closed a link")
                buf += data
            if not buf.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"upgrade refused: {buf[:40]!r}")
            agreed += b"permessage-deflate" in buf.lower()
            socks.append(s)
        time.sleep(0.5)   # the subscriptions made at the upgrade are in place
        calls0 = metric(port, "ringlink_deflate_calls_total")
        text = json_text(1024)
        socks[0].sendall(masked_text(text if a.mode == "broadcast" else b"PUB news " + text))
        sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
        waiting, compressed, deadline = len(socks), 0, time.time() + 60
        while waiting > 0:
            if time.time() > deadline:
                raise RuntimeError(f"{waiting} links never received it")
            for key, _ in sel.select(timeout=1.0):
                buf = key.data
                buf += key.fileobj.recv(65536)
                if len(buf) < 4:
                    continue
                k = buf[1] & 0x7F
                hl = 4 if k == 126 else 2
                if k == 126:
                    k = int.from_bytes(buf[2:4], "big")
                if len(buf) >= hl + k:
                    compressed += (buf[0] & 0x40) != 0
                    sel.unregister(key.fileobj)
                    waiting -= 1
        calls1 = metric(port, "ringlink_deflate_calls_total")
        print(f"mode={a.mode} reactors={a.reactors} links={a.links} offer=\"{offer}\" agreed={agreed} "
              f"received={len(socks)} received_compressed={compressed} deflate_calls={calls1 - calls0:.0f}")
        for s in socks:
            s.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return 0

if __name__ == "__main__":
    sys.exit(main())
