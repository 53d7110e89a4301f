#!/usr/bin/env python3
"""Redis's own PUB/SUB round trip, measured as ringlink-load --pubsub measures
a cross-node delivery: each publication carries its send time (CLOCK_MONOTONIC,
ns), one subscriber connection takes every channel (as a ringlink node's
broker bridge does), and the latency is receive time - send time. RESP spoken
directly over two sockets; publications paced at --rate over --channels.

  redis_pubsub_rtt.py --port 6379 --rate 1000 --channels 100 --duration 10

Prints one line: sent, received, lost, p50/p90/p99/p99.9/max in us. The
client is Python: its own parsing adds to every figure (it favours ringlink).
"""
import argparse
import math
import select
import socket
import time


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    """Incremental RESP reader: feed bytes, take complete replies."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data

    def _line(self, at):
        end = self.buf.find(b"\r\n", at)
        return (None, at) if end < 0 else (self.buf[at:end], end + 2)

    def _one(self, at):
        line, nxt = self._line(at)
        if line is None:
            return None, at
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-", b":"):
            return rest, nxt
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return b"", nxt
            if len(self.buf) < nxt + n + 2:
                return None, at
            return self.buf[nxt:nxt + n], nxt + n + 2
        if kind == b"*":
            items = []
            for _ in range(int(rest)):
                item, nxt2 = self._one(nxt)
                if item is None:
                    return None, at
                items.append(item)
                nxt = nxt2
            return items, nxt
        raise ValueError("unexpected RESP %r" % line)

    def replies(self):
        at = 0
        while True:
            r, nxt = self._one(at)
            if r is None:
                break
            yield r
            at = nxt
        self.buf = self.buf[at:]


def percentile(sorted_values, p):
    if not sorted_values:
        return 0
    rank = max(1, min(len(sorted_values), math.ceil(p / 100.0 * len(sorted_values))))
    return sorted_values[rank - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--channels", type=int, default=100)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--drain", type=float, default=2)
    a = ap.parse_args()

    sub = socket.create_connection(("127.0.0.1", a.port))
    pub = socket.create_connection(("127.0.0.1", a.port))
    for s in (sub, pub):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    names = ["rtt:%d" % i for i in range(a.channels)]
    sub.sendall(command("SUBSCRIBE", *names))
    reader, confirmed = Resp(), 0
    while confirmed < a.channels:
        reader.feed(sub.recv(65536))
        confirmed += sum(1 for r in reader.replies() if r[0] == b"subscribe")

    pub_reader = Resp()
    latencies, sent = [], 0
    period = 1e9 / a.rate
    start = time.monotonic_ns()
    end = start + int(a.duration * 1e9)
    stop = end + int(a.drain * 1e9)
    next_send = start
    while True:
        now = time.monotonic_ns()
        if now >= stop or (now >= end and len(latencies) >= sent):
            break
        while now < end and next_send <= now:
            pub.sendall(command("PUBLISH", names[sent % a.channels], time.monotonic_ns()))
            sent += 1
            next_send += period
        wait = max(0.0, (min(next_send if now < end else stop, stop) - time.monotonic_ns()) / 1e9)
        ready, _, _ = select.select([sub, pub], [], [], wait)
        for s in ready:
            data = s.recv(1 << 20)
            got = time.monotonic_ns()
            if s is pub:
                pub_reader.feed(data)
                for _ in pub_reader.replies():
                    pass
                continue
            reader.feed(data)
            for r in reader.replies():
                if isinstance(r, list) and r[0] == b"message":
                    latencies.append(got - int(r[2]))
    latencies.sort()
    us = [percentile(latencies, p) / 1e3 for p in (50, 90, 99, 99.9, 100)]
    print("redis PUB/SUB round trip: sent %d received %d lost %d  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f us"
          % (sent, len(latencies), sent - len(latencies), *us))


if __name__ == "__main__":
    main()
