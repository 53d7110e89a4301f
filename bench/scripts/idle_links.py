#!/usr/bin/python3
"""Opens N idle WebSocket links to a server and reports the server's RSS
growth per link (VmRSS from /proc/PID/status before and after).

usage: idle_links.py --port P --pid SERVER_PID [--links N] [--hold SECONDS]
                     [--warmup W] [--source-ips 127.0.0.1-127.0.0.40]
Prints one line: links=N rss_before_kib=.. rss_after_kib=.. bytes_per_link=..

--warmup W opens W links before the "before" reading, so that one-time costs
of the server's first connections (allocator arenas, first pool chunk) are
not charged to the N links measured; the report says which was used.
"""
import argparse, ipaddress, resource, selectors, socket, sys, time

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / __import__("os").sysconf("SC_CLK_TCK")

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
    a = ap.parse_args()
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
            s.sendall(REQ)
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
                        sel.unregister(key.fileobj)
                        pending -= 1

    if a.warmup > 0:
        open_links(a.warmup, 0)
    time.sleep(0.3)
    before = rss_kib(a.pid)
    open_links(a.links, a.warmup)
    time.sleep(0.5)
    after = rss_kib(a.pid)
    cpu0 = cpu_seconds(a.pid)
    if a.hold > 0:
        time.sleep(a.hold)
    cpu1 = cpu_seconds(a.pid)
    per = (after - before) * 1024 / a.links
    print(f"links={a.links} warmup={a.warmup} rss_before_kib={before} rss_after_kib={after} bytes_per_link={per:.0f} "
          f"idle_cpu_s={cpu1 - cpu0:.3f} over_s={a.hold}")
    for s in socks:
        s.close()
    return 0

if __name__ == "__main__":
    sys.exit(main())
