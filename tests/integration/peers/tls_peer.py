#!/usr/bin/python3
"""Bad and odd TLS clients for a ringlink TLS listener, one connection each.

usage: tls_peer.py HOST PORT CA MODE

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
"""
import base64
import os
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


def mode_split(host, port, ca):
    obj, incoming, outgoing = client_hello(ca, "localhost")
    hello = outgoing.read()
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(hello)):
        sock.sendall(hello[i:i + 1])
    pump(sock, obj, incoming, outgoing)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    tls_send(sock, obj, outgoing, req)
    head = b""
    while b"\r\n\r\n" not in head:
        head += tls_recv(sock, obj, incoming, 1)
    if not head.startswith(b"HTTP/1.1 101"):
        fail(f"upgrade answered {head[:40]!r}")
    payload = b"split hello"
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    tls_send(sock, obj, outgoing, bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    frame = tls_recv(sock, obj, incoming, 2 + len(payload))
    if frame != bytes([0x81, len(payload)]) + payload:
        fail(f"echo was {frame!r}")
    sock.close()


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
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, ca, mode = argv[1], int(argv[2]), argv[3], argv[4]
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
