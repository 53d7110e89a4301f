#!/usr/bin/python3
"""Opens N idle WebSocket links to a server and reports the server's RSS
growth per link (VmRSS from /proc/PID/status before and after).

usage: idle_links.py --port P --pid SERVER_PID [--links N] [--hold SECONDS]
                     [--warmup W] [--settle S] [--source-ips 127.0.0.1-127.0.0.40]
Prints one line: links=N rss_before_kib=.. rss_after_kib=.. bytes_per_link=..
burst_bytes_per_link=..

Both readings are taken at rest: --settle S seconds (default 2.5) after the
last upgrade, so that a server which gives a burst's memory back a second
after the input stops (ringlink does) is measured as it idles, not in the
middle of the burst. burst_bytes_per_link is the same growth read 0.3 s
after the last upgrade, before any such giving back.

--warmup W opens W links before the "before" reading, so that one-time costs
of the server's first connections (allocator arenas, first pool chunk) are
not charged to the N links measured; the report says which was used.

--answer-pings keeps the links alive as a browser would: during the hold
every ping the server sends is answered with a pong (masked, as a client
must), so a hold longer than the server's keepalive interval measures what
keepalive costs at rest. Prints pings= (how many were answered) and
closed= (links the server ended during the hold).

--tls-ca FILE speaks wss:// (trusting FILE): each link does its TLS
handshake before the upgrade, one at a time. Not with --answer-pings.

--offer VALUE sends it as Sec-WebSocket-Extensions (permessage-deflate) and
prints agreed= (links whose 101 answered with permessage-deflate).
--message-bytes N then has each measured link send one message of N bytes
of JSON-like text, compressed (RSV1, raw deflate) when agreed, and read its
echo before the "after" reading: what a link holds at rest once it has
used its compression contexts. Not with --tls-ca.
"""
import argparse, ipaddress, os, resource, selectors, socket, ssl, sys, time, zlib

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")

def cpu_seconds(pid):
    """CPU time of every thread of `pid`, from the scheduler's own
    nanosecond count (/proc/PID/task/*/schedstat); /proc/PID/stat counts
    clock ticks (10 ms), too coarse for an idle server."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended meanwhile
    return total / 1e9

REQ = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--links", type=int, default=10000)
    ap.add_argument("--hold", type=float, default=0.0, help="seconds to hold; idle CPU is measured over it")
    ap.add_argument("--source-ips", default="127.0.0.1")
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--settle", type=float, default=2.5, help="seconds at rest before each reading")
    ap.add_argument("--answer-pings", action="store_true")
    ap.add_argument("--tls-ca", default="")
    ap.add_argument("--offer", default="")
    ap.add_argument("--message-bytes", type=int, default=0)
    a = ap.parse_args()
    if a.tls_ca and a.answer_pings:
        ap.error("--tls-ca does not go with --answer-pings")
    if a.tls_ca and a.message_bytes:
        ap.error("--tls-ca does not go with --message-bytes")
    req = REQ if not a.offer else REQ[:-2] + f"Sec-WebSocket-Extensions: {a.offer}\r\n\r\n".encode()
    agreed = set()
    tls = ssl.create_default_context(cafile=a.tls_ca) if a.tls_ca else None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    lo, _, hi = a.source_ips.partition("-")
    first = ipaddress.IPv4Address(lo)
    last = ipaddress.IPv4Address(hi) if hi else first
    sources = [str(ipaddress.IPv4Address(i)) for i in range(int(first), int(last) + 1)]

    sel = selectors.DefaultSelector()
    socks = []
    deadline = time.time() + 120

    def open_links(count, offset):
        pending = 0
        for i in range(count):
            s = socket.socket()
            s.setsockopt(socket.SOL_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT
            s.bind((sources[(offset + i) % len(sources)], 0))
            s.connect(("127.0.0.1", a.port))
            if tls is not None:
                # One handshake at a time (blocking), then the upgrade; the
                # reply is read below like a plain link's. An SSLSocket
                # reads through its own buffer, which selectors cannot see:
                # wait for the whole 101 here.
                s = tls.wrap_socket(s, server_hostname="localhost")
                s.sendall(req)
                buf = bytearray()
                while b"\r\n\r\n" not in buf:
                    data = s.recv(4096)
                    if not data:
                        raise RuntimeError("server closed a link")
                    buf += data
                if not buf.startswith(b"HTTP/1.1 101"):
                    raise RuntimeError(f"upgrade refused: {bytes(buf[:40])}")
                socks.append(s)
                continue
            s.sendall(req)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
            socks.append(s)
            pending += 1
            while pending > 500 or (i == count - 1 and pending > 0):
                if time.time() > deadline:
                    raise RuntimeError("timeout waiting for upgrades")
                for key, _ in sel.select(timeout=1.0):
                    buf = key.data
                    data = key.fileobj.recv(4096)
                    if not data:
                        raise RuntimeError("server closed a link")
                    buf += data
                    if b"\r\n\r\n" in buf:
                        if not buf.startswith(b"HTTP/1.1 101"):
                            raise RuntimeError(f"upgrade refused: {bytes(buf[:40])}")
                        if b"permessage-deflate" in buf.lower():
                            agreed.add(key.fileobj)
                        sel.unregister(key.fileobj)
                        pending -= 1

    if a.warmup > 0:
        open_links(a.warmup, 0)
    time.sleep(a.settle)
    before = rss_kib(a.pid)
    open_links(a.links, a.warmup)
    if a.message_bytes > 0:
        exchange(socks[a.warmup:], agreed, a.message_bytes)
    time.sleep(0.3)
    burst = rss_kib(a.pid)
    time.sleep(max(0.0, a.settle - 0.3))
    after = rss_kib(a.pid)
    cpu0 = cpu_seconds(a.pid)
    pings = closed = 0
    if a.hold > 0 and a.answer_pings:
        pings, closed = answer_pings(socks, a.hold)
    elif a.hold > 0:
        time.sleep(a.hold)
    cpu1 = cpu_seconds(a.pid)
    per = (after - before) * 1024 / a.links
    per_burst = (burst - before) * 1024 / a.links
    print(f"links={a.links} warmup={a.warmup} rss_before_kib={before} rss_after_kib={after} bytes_per_link={per:.0f} "
          f"burst_bytes_per_link={per_burst:.0f} settle_s={a.settle} "
          f"idle_cpu_s={cpu1 - cpu0:.3f} over_s={a.hold}"
          + (f" pings={pings} closed={closed}" if a.answer_pings else "")
          + (f" agreed={len(agreed)}" if a.offer else "")
          + (f" message_bytes={a.message_bytes}" if a.message_bytes else ""))
    for s in socks:
        s.close()
    return 0

def json_text(n):
    rows, size = [], 0
    while size < n:
        rows.append('{"id":%d,"name":"ringlink","tags":["a","b"],"ok":true}' % len(rows))
        size += len(rows[-1]) + 1
    return ("[" + ",".join(rows) + "]")[:n].encode()

def exchange(socks, agreed, n):
    """Each link sends one masked text message of n bytes (compressed when
    it agreed on permessage-deflate) and reads its whole echo."""
    text = json_text(n)
    c = zlib.compressobj(wbits=-15)
    z = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
    assert z.endswith(b"\x00\x00\xff\xff")
    z = z[:-4]
    def frame(payload, rsv1):
        mask = os.urandom(4)
        head = bytes([0x81 | (0x40 if rsv1 else 0)])
        k = len(payload)
        head += bytes([0x80 | k]) if k < 126 else bytes([0x80 | 126]) + k.to_bytes(2, "big")
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    plain_frame, deflate_frame = frame(text, False), frame(z, True)
    sel = selectors.DefaultSelector()
    for s in socks:
        s.sendall(deflate_frame if s in agreed else plain_frame)
        sel.register(s, selectors.EVENT_READ, bytearray())
    waiting, deadline = len(socks), time.time() + 120
    while waiting > 0:
        if time.time() > deadline:
            raise RuntimeError(f"timeout waiting for echoes ({waiting} left)")
        for key, _ in sel.select(timeout=1.0):
            buf = key.data
            data = key.fileobj.recv(65536)
            if not data:
                raise RuntimeError("server closed a link")
            buf += data
            if len(buf) >= 2:
                k = buf[1] & 0x7F
                hl = 2 if k < 126 else 4
                if len(buf) >= hl and k == 126:
                    k = int.from_bytes(buf[2:4], "big")
                if len(buf) >= hl + k:
                    sel.unregister(key.fileobj)
                    waiting -= 1
    sel.close()

def answer_pings(socks, hold):
    """Until `hold` seconds pass: answer each server ping (unmasked, payload
    under 126 bytes) with a masked pong carrying the same payload."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ, bytearray())
    pings = closed = 0
    end = time.time() + hold
    while (left := end - time.time()) > 0:
        for key, _ in sel.select(timeout=min(left, 1.0)):
            s, buf = key.fileobj, key.data
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                closed += 1
                continue
            buf += data
            while len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7F):
                op, n = buf[0] & 0x0F, buf[1] & 0x7F
                payload = bytes(buf[2:2 + n])
                del buf[:2 + n]
                if op == 0x9:
                    mask = os.urandom(4)
                    s.sendall(bytes([0x8A, 0x80 | n]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                    pings += 1
    return pings, closed

if __name__ == "__main__":
    sys.exit(main())
