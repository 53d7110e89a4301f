#!/usr/bin/python3
"""Bad and odd TLS clients for a ringlink TLS listener, one connection each.

usage: tls_peer.py HOST PORT CA MODE [IDLE]

Exits 0 when the server answered as expected; 1 with the reason on stderr.

Modes:
  split      the ClientHello one byte per write, then the handshake, an
             upgrade and one echoed message: the server must reassemble
  plaintext  plain HTTP to the TLS port: a plain-text 400 that says TLS
  garbage    a TLS record header followed by random bytes: an alert or a
             close, never a hang
  truncated  half a ClientHello, then our FIN: the server must close
  reset      half a ClientHello, then an RST (SO_LINGER 0)
  stall      half a ClientHello, then nothing: the server's handshake
             timeout must close the connection
  record_reset      the TLS handshake, the upgrade and one echo, then half
             of the record that carries the next frame, then an RST
  record_truncated  the same half record, then our FIN: the server must
             close (no answer to the half frame, no hang)
  flood_pause [IDLE]  IDLE (200) idle wss:// links, then one more that
             sends frames as fast as it can and reads nothing; against a
             lossless echo (pause on backpressure) its writes must stall,
             and once it reads, every echo comes back in order and it
             closes 1000. While the flood runs the idle links echo in
             turn (one round trip per 32 frames sent); after it each one
             echoes, then closes 1000.
  flood_close [IDLE]  the same against close_slow: the flooder's link must
             end (reset, or our reads reach its end); prints the close
             code it saw, if any, as "flooder close=CODE"
"""
import base64
import os
import select
import socket
import ssl
import struct
import sys
import time

TIMEOUT = 15


def fail(text):
    print(f"tls_peer.py: {text}", file=sys.stderr, flush=True)
    sys.exit(1)


def client_hello(ca, host):
    """The first flight of a real client, without sending it anywhere."""
    ctx = ssl.create_default_context(cafile=ca)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, incoming, outgoing


def recv_some(sock):
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def read_until_closed(sock):
    """Everything until the server closes (or the timeout fails the test)."""
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = recv_some(sock)
        except socket.timeout:
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


def pump(sock, obj, incoming, outgoing):
    """Drives the handshake over the socket after the ClientHello went out."""
    while True:
        out = outgoing.read()
        if out:
            sock.sendall(out)
        try:
            obj.do_handshake()
            out = outgoing.read()
            if out:
                sock.sendall(out)
            return
        except ssl.SSLWantReadError:
            data = recv_some(sock)
            if not data:
                fail("server closed during the handshake")
            incoming.write(data)


def tls_send(sock, obj, outgoing, data):
    obj.write(data)
    sock.sendall(outgoing.read())


def tls_recv(sock, obj, incoming, n):
    buf = b""
    while len(buf) < n:
        try:
            buf += obj.read(65536)
            continue
        except ssl.SSLWantReadError:
            pass
        data = recv_some(sock)
        if not data:
            fail(f"server closed after {len(buf)} of {n} bytes")
        incoming.write(data)
    return buf


def client_frame(payload, opcode=0x2):
    """One masked frame, as a client must send it."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
    mask = os.urandom(4)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")
    return head + mask + masked


def parse_frame(buf):
    """(opcode, payload, rest) of the first server frame in buf, or None."""
    if len(buf) < 2:
        return None
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = struct.unpack("!Q", buf[2:10])[0], 10
    if len(buf) < at + n:
        return None
    return buf[0] & 0x0F, bytes(buf[at:at + n]), buf[at + n:]


class Wss:
    """A wss:// client link over a plain socket and memory BIOs, so that
    the test decides which ciphertext bytes leave, and when."""

    def __init__(self, host, port, ca, split_hello=False, rcvbuf=0):
        self.obj, self.incoming, self.outgoing = client_hello(ca, "localhost")
        hello = self.outgoing.read()
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if split_hello:
            for i in range(len(hello)):
                self.sock.sendall(hello[i:i + 1])
        else:
            self.sock.sendall(hello)
        pump(self.sock, self.obj, self.incoming, self.outgoing)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
        self.send(req)
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.recv(1)
        if not head.startswith(b"HTTP/1.1 101"):
            fail(f"upgrade answered {head[:40]!r}")
        self.plain = head[head.index(b"\r\n\r\n") + 4:]  # read past the head or the last frame

    def send(self, data):
        tls_send(self.sock, self.obj, self.outgoing, data)

    def recv(self, n):
        return tls_recv(self.sock, self.obj, self.incoming, n)

    def frame(self):
        """The next server frame: (opcode, payload)."""
        while True:
            got = parse_frame(self.plain)
            if got is not None:
                opcode, payload, self.plain = got
                return opcode, payload
            self.plain += self.recv(1)

    def take(self, data):
        """Feeds ciphertext in; the complete server frames it finished."""
        self.incoming.write(data)
        try:
            while True:
                self.plain += self.obj.read(65536)
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        frames = []
        while (got := parse_frame(self.plain)) is not None:
            opcode, payload, self.plain = got
            frames.append((opcode, payload))
        return frames

    def echo(self, payload):
        self.send(client_frame(payload))
        opcode, got = self.frame()
        if (opcode, got) != (0x2, payload):
            fail(f"echo of {payload[:20]!r} was {opcode} {got[:20]!r}")

    def close(self, code=1000):
        """The closing handshake: our close, the server's echo of it."""
        self.send(client_frame(struct.pack("!H", code), opcode=0x8))
        opcode, got = self.frame()
        if opcode != 0x8 or got[:2] != struct.pack("!H", code):
            fail(f"close {code} answered {opcode} {got[:20]!r}")
        self.sock.close()


def mode_split(host, port, ca):
    link = Wss(host, port, ca, split_hello=True)
    link.echo(b"split hello")
    link.sock.close()


def half_record(host, port, ca):
    """An upgraded link, and the first half of a record carrying a frame."""
    link = Wss(host, port, ca)
    link.echo(b"before the cut")
    link.obj.write(client_frame(b"x" * 1000))
    record = link.outgoing.read()
    link.sock.sendall(record[: len(record) // 2])
    return link


def mode_record_reset(host, port, ca):
    link = half_record(host, port, ca)
    link.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    link.sock.close()


def mode_record_truncated(host, port, ca):
    link = half_record(host, port, ca)
    link.sock.shutdown(socket.SHUT_WR)
    data, closed = read_until_closed(link.sock)
    if not closed:
        fail("the server did not close after a truncated record and FIN")
    link.incoming.write(data)
    try:
        plain = link.obj.read(65536)
    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLError):
        plain = b""
    if plain:
        fail(f"the half frame was answered: {plain[:40]!r}")


FLOOD_FRAME = 4096
STALL = 1.0          # seconds without progress that count as the writes stalled
FLOOD_LIMIT = 30.0   # a flood that neither stalls nor ends by then fails


def flood_payload(seq):
    return struct.pack("!Q", seq) + bytes([seq & 0xFF]) * (FLOOD_FRAME - 8)


def mode_flood(host, port, ca, expect, idle_count):
    idle = [Wss(host, port, ca) for _ in range(idle_count)]
    for i, link in enumerate(idle):
        link.echo(b"idle %d before" % i)
    # A small receive buffer: the replies the flooder never reads fill it
    # soon, and the server's queue behind it.
    flooder = Wss(host, port, ca, rcvbuf=4096)
    sock = flooder.sock
    sock.setblocking(False)
    made = 0        # frames sealed into records
    pending = b""   # ciphertext not yet taken by the kernel
    ended = None    # how the flooder's connection ended while flooding
    checked = 0     # idle links that echoed during the flood
    last_progress = start = time.monotonic()
    while True:
        now = time.monotonic()
        if now - start > FLOOD_LIMIT:
            fail(f"{made} frames flooded for {FLOOD_LIMIT} s: no backpressure, no close")
        if not pending:
            flooder.obj.write(client_frame(flood_payload(made)))
            pending = flooder.outgoing.read()
            made += 1
            if made % 32 == 0 and checked < idle_count:
                idle[checked].echo(b"idle %d during" % checked)
                checked += 1
        try:
            n = sock.send(pending)
            pending = pending[n:]
            last_progress = now
        except BlockingIOError:
            if now - last_progress > STALL:
                break
            select.select([], [sock], [], 0.05)
        except (ConnectionResetError, BrokenPipeError) as e:
            ended = type(e).__name__
            break
    sent = made - (1 if pending else 0)  # frames whose every byte left
    for i, link in enumerate(idle):
        link.echo(b"idle %d after" % i)
    print(f"flooder frames={sent} stalled={ended is None} checked_during={checked}", flush=True)
    if expect == "pause":
        if ended is not None:
            fail(f"the lossless echo's flooder was cut off ({ended}) after {sent} frames")
        flood_drain(flooder, pending, made)
    else:
        code = flood_end(flooder, ended)
        print(f"flooder close={code}", flush=True)
    for link in idle:
        link.close()


def flood_drain(flooder, pending, made):
    """Sends the rest, reads every echo back in order, closes 1000."""
    sock = flooder.sock
    deadline = time.monotonic() + FLOOD_LIMIT
    seq = 0
    while seq < made:
        if time.monotonic() > deadline:
            fail(f"{seq} of {made} echoes back before the deadline")
        r, w, _ = select.select([sock], [sock] if pending else [], [], 0.1)
        if w:
            try:
                pending = pending[sock.send(pending):]
            except BlockingIOError:
                pass
        if not r:
            continue
        try:
            data = recv_some(sock)
        except BlockingIOError:
            continue
        if not data:
            fail(f"the server closed after {seq} of {made} echoes")
        for opcode, payload in flooder.take(data):
            if (opcode, payload) != (0x2, flood_payload(seq)):
                fail(f"echo {seq} was {opcode} {payload[:12]!r}")
            seq += 1
    sock.setblocking(True)
    sock.settimeout(TIMEOUT)
    flooder.close()


def flood_end(flooder, ended):
    """Reads the flooder's link to its end; the close code seen, or None."""
    if ended is not None:
        return None
    sock = flooder.sock
    deadline = time.monotonic() + FLOOD_LIMIT
    code = None
    while time.monotonic() < deadline:
        select.select([sock], [], [], 0.1)
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            return code
        if not data:
            return code
        for opcode, payload in flooder.take(data):
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
    fail("the flooder's link did not end")


def half_hello(ca):
    _, _, outgoing = client_hello(ca, "localhost")
    hello = outgoing.read()
    return hello[: len(hello) // 2]


def mode_plaintext(host, port):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data, closed = read_until_closed(sock)
    if not data.startswith(b"HTTP/1.1 400") or b"TLS" not in data:
        fail(f"plain HTTP got {data[:80]!r}")
    if not closed:
        fail("the server did not close after its 400")


def mode_garbage(host, port):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    body = os.urandom(64)
    sock.sendall(struct.pack("!BHH", 0x16, 0x0301, len(body)) + body)
    data, closed = read_until_closed(sock)
    if not closed:
        fail("the server kept a connection that sent garbage")
    if data and data[0] != 0x15:  # anything sent must be an alert record
        fail(f"garbage got {data[:16]!r}")


def mode_truncated(host, port, ca):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.sendall(half_hello(ca))
    sock.shutdown(socket.SHUT_WR)
    _, closed = read_until_closed(sock)
    if not closed:
        fail("the server did not close after a truncated ClientHello and FIN")


def mode_reset(host, port, ca):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.sendall(half_hello(ca))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def mode_stall(host, port, ca):
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.sendall(half_hello(ca))
    _, closed = read_until_closed(sock)
    if not closed:
        fail("the handshake timeout did not close a stalled connection")


def main(argv):
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, ca, mode = argv[1], int(argv[2]), argv[3], argv[4]
    idle = int(argv[5]) if len(argv) == 6 else 200
    if mode == "split":
        mode_split(host, port, ca)
    elif mode == "plaintext":
        mode_plaintext(host, port)
    elif mode == "garbage":
        mode_garbage(host, port)
    elif mode == "truncated":
        mode_truncated(host, port, ca)
    elif mode == "reset":
        mode_reset(host, port, ca)
    elif mode == "stall":
        mode_stall(host, port, ca)
    elif mode == "record_reset":
        mode_record_reset(host, port, ca)
    elif mode == "record_truncated":
        mode_record_truncated(host, port, ca)
    elif mode in ("flood_pause", "flood_close"):
        mode_flood(host, port, ca, mode[len("flood_"):], idle)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SystemExit:
        raise
    except Exception as e:  # refused connections, timeouts, TLS errors
        fail(f"{type(e).__name__}: {e}")
