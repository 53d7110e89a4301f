#!/usr/bin/python3
"""A python3-websockets client that drives a WebSocket echo server.

usage: ws_client.py URL MODE [ARGS...]

A wss:// URL trusts the CA file in $RINGLINK_CA (modes that use the
websockets library only; the raw-socket modes speak ws://).

Exits 0 when every echo, pong and close code is what RFC 6455 and the echo
server's contract say; 1 with a description on stderr at the first mismatch.
The server must echo every message and close with 4001 "bye" when it gets the
text message "close-me".

Modes:
  sizes                  text and binary messages of every size in SIZES
  fragments              fragmented messages (websockets fragments and raw frames)
  ping                   pings with payloads of 0, 5 and 125 bytes
  close CODE [REASON]    the client closes; the server must echo CODE
  server_close           "close-me" -> close 4001 "bye" from the server
  bad_utf8               invalid UTF-8 in text messages -> close 1007, one
                         connection per case
  protocol_errors [CASE...]  RFC 6455 violations -> the close code the RFC names,
                         one connection per case
  concurrent N M         N clients at once, each pipelining M messages
  flood N SIZE           pipelines N binary messages of SIZE bytes while
                         reading the echoes: the server's send queue fills,
                         and no echo may be lost or reordered
  eof_cases              raw sockets: the handshake, then a message, a close
                         or half a frame, then our FIN, all sent at once;
                         the server must answer and close its side within 3 s
  hold                   connects, prints "open", then expects the server to
                         close with 1001 (graceful shutdown)
"""
import asyncio
import base64
import hashlib
import os
import random
import ssl
import struct
import sys

import websockets

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 16 << 20]
STEP_TIMEOUT = 30  # seconds for any one step
TOTAL_TIMEOUT = 55


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def text_of(n):
    """Exactly n bytes of UTF-8 with 1- to 4-byte characters throughout."""
    unit = "a\u00e9\u20ac\U0001F600"  # 1 + 2 + 3 + 4 bytes
    s = unit * (n // 10) + "x" * (n % 10)
    assert len(s.encode()) == n
    return s


def binary_of(n, seed):
    return random.Random(seed).randbytes(n)


def tls_context(url):
    """wss:// trusts the CA file named by $RINGLINK_CA (test certificates)."""
    if not url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=os.environ["RINGLINK_CA"])


async def connect(url):
    # Default compression offer kept on purpose: the server must decline it.
    return await websockets.connect(url, max_size=None, ping_interval=None,
                                    open_timeout=10, close_timeout=10, ssl=tls_context(url))


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)


def describe(m):
    kind = "text" if isinstance(m, str) else "binary"
    return f"{kind} of {len(m)} chars/bytes"


async def mode_sizes(url):
    ws = await connect(url)
    for size in SIZES:
        for msg in (text_of(size), binary_of(size, size)):
            await ws.send(msg)
            got = await recv(ws)
            expect(type(got) is type(msg), f"sent {describe(msg)}, got {describe(got)}")
            expect(got == msg, f"echo of {describe(msg)} differs")
    await ws.close(1000)
    expect(ws.close_code == 1000, f"close echo {ws.close_code}")


def mask_frame(fin, opcode, payload):
    """A masked client frame, built by hand."""
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


async def mode_fragments(url):
    ws = await connect(url)
    # websockets sends an iterable as one fragmented message.
    cases = [
        ["hel", "lo ", "w\u00f6rld"],
        ["", "a", ""],
        ["\U0001F600" * 1000, "\u20ac" * 30000],
        [b"\x00" * 70000, b"\x01" * 3, b"\xff" * 131072],
        [b"", b"", b"z"],
    ]
    for parts in cases:
        await ws.send(parts)
        got = await recv(ws)
        whole = "".join(parts) if isinstance(parts[0], str) else b"".join(parts)
        expect(type(got) is type(whole) and got == whole,
               f"fragmented {describe(whole)} in {len(parts)} parts: echo differs")
    # By hand: a 4-byte character split across fragments, with a ping between.
    smile = "\U0001F600".encode()
    raw = (mask_frame(False, 0x1, b"ab" + smile[:2]) + mask_frame(True, 0x9, b"between") +
           mask_frame(False, 0x0, smile[2:]) + mask_frame(True, 0x0, b"cd"))
    ws.transport.write(raw)
    got = await recv(ws)
    expect(got == "ab\U0001F600cd", f"split character: got {got!r}")
    await ws.close(1000)
    expect(ws.close_code == 1000, f"close echo {ws.close_code}")


async def mode_ping(url):
    ws = await connect(url)
    for payload in (b"", b"hello", bytes(range(125))):
        # websockets resolves the waiter only for a pong with this payload.
        waiter = await ws.ping(payload)
        await asyncio.wait_for(waiter, STEP_TIMEOUT)
    await ws.send("after pings")
    expect(await recv(ws) == "after pings", "echo after pings differs")
    await ws.close(1000)


async def mode_close(url, code, reason):
    ws = await connect(url)
    await ws.send("before close")
    expect(await recv(ws) == "before close", "echo before close differs")
    await ws.close(code, reason)
    expect(ws.close_code == code, f"closed with {code}, server answered {ws.close_code}")
    print(f"echoed {ws.close_code} {ws.close_reason!r}", flush=True)


async def mode_server_close(url):
    ws = await connect(url)
    await ws.send("close-me")
    try:
        got = await recv(ws)
        raise Mismatch(f"expected a close, got a message {got!r}")
    except websockets.ConnectionClosed as e:
        expect(e.rcvd is not None, "connection dropped without a close frame")
        expect(e.rcvd.code == 4001 and e.rcvd.reason == "bye",
               f"expected close 4001 'bye', got {e.rcvd.code} {e.rcvd.reason!r}")
    await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)


BAD_UTF8 = {
    "invalid_byte": [(True, 0x1, b"ok\xff")],
    "overlong": [(True, 0x1, b"\xc0\x80")],
    "surrogate": [(True, 0x1, b"\xed\xa0\x80")],
    "above_max": [(True, 0x1, b"\xf4\x90\x80\x80")],
    "truncated_at_end": [(True, 0x1, b"abc\xe2\x82")],
    "bad_continuation_in_next_fragment": [(False, 0x1, b"ok\xf0\x9f"), (True, 0x0, b"A")],
}


async def one_bad_utf8(url, name, frames):
    ws = await connect(url)
    ws.transport.write(b"".join(mask_frame(*f) for f in frames))
    try:
        got = await recv(ws)
        raise Mismatch(f"{name}: expected close 1007, got a message {got!r}")
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else None
        expect(code == 1007, f"{name}: expected close 1007, got {code}")


async def mode_bad_utf8(url):
    for name, frames in BAD_UTF8.items():
        await one_bad_utf8(url, name, frames)
    print(f"cases {len(BAD_UTF8)}", flush=True)


def raw_frame(fin, opcode, payload, rsv=0, masked=True):
    if masked:
        f = bytearray(mask_frame(fin, opcode, payload))
    else:
        n = len(payload)
        f = bytearray([(0x80 if fin else 0) | opcode, n]) + payload
    f[0] |= rsv << 4
    return bytes(f)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


# name -> (raw bytes written after the handshake, close code expected)
PROTOCOL_ERRORS = {
    "unmasked_frame": (raw_frame(True, 0x1, b"hi", masked=False), 1002),
    "reserved_opcode_3": (raw_frame(True, 0x3, b"x"), 1002),
    "reserved_opcode_b": (raw_frame(True, 0xB, b""), 1002),
    "rsv1_without_extension": (raw_frame(True, 0x2, b"x", rsv=4), 1002),
    "fragmented_ping": (raw_frame(False, 0x9, b"p"), 1002),
    "control_payload_126": (raw_frame(True, 0x9, b"p" * 126), 1002),
    "continuation_first": (raw_frame(True, 0x0, b"x"), 1002),
    "new_message_inside_fragmented": (raw_frame(False, 0x1, b"a") + raw_frame(True, 0x1, b"b"), 1002),
    "close_one_byte": (raw_frame(True, 0x8, b"\x03"), 1002),
    "close_code_999": (raw_frame(True, 0x8, close_payload(999)), 1002),
    "close_code_1005": (raw_frame(True, 0x8, close_payload(1005)), 1002),
    "close_code_1006": (raw_frame(True, 0x8, close_payload(1006)), 1002),
    "close_code_1015": (raw_frame(True, 0x8, close_payload(1015)), 1002),
    "close_code_5000": (raw_frame(True, 0x8, close_payload(5000)), 1002),
    "close_reason_bad_utf8": (raw_frame(True, 0x8, close_payload(1000, b"\xff")), 1007),
}


async def mode_protocol_errors(url, only):
    failures = []
    for name, (raw, want) in PROTOCOL_ERRORS.items():
        if only and name not in only:
            continue
        ws = await connect(url)
        ws.transport.write(raw)
        try:
            got = await recv(ws)
            failures.append(f"{name}: expected close {want}, got a message {got!r}")
            continue
        except websockets.ConnectionClosed as e:
            code = e.rcvd.code if e.rcvd is not None else None
            if code != want:
                failures.append(f"{name}: expected close {want}, got {code}")
    if only and "too_big" not in only:
        expect(not failures, "; ".join(failures))
        return
    # One message over the limit (16 MiB + 1), sent the ordinary way.
    ws = await connect(url)
    await ws.send(bytes((16 << 20) + 1))
    try:
        await recv(ws)
        failures.append("too_big: expected close 1009, got a message")
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else None
        if code != 1009:
            failures.append(f"too_big: expected close 1009, got {code}")
    except asyncio.TimeoutError:
        failures.append("too_big: no close within the step timeout")
    print(f"cases {len(PROTOCOL_ERRORS) + 1}", flush=True)
    expect(not failures, "; ".join(failures))


async def mode_concurrent(url, n, m):
    async def client(i):
        ws = await connect(url)
        msgs = [f"client {i} message {j} " + "p" * (j * 7 % 300) for j in range(m)]
        msgs = [s if j % 2 == 0 else s.encode() for j, s in enumerate(msgs)]

        async def writer():
            for s in msgs:
                await ws.send(s)

        sending = asyncio.create_task(writer())
        for j, want in enumerate(msgs):
            got = await recv(ws)
            expect(got == want, f"client {i}: message {j} differs or out of order")
        await sending
        await ws.close(1000)
        expect(ws.close_code == 1000, f"client {i}: close echo {ws.close_code}")

    await asyncio.gather(*(client(i) for i in range(n)))


async def mode_flood(url, n, size):
    ws = await connect(url)
    msgs = [bytes([j & 0xFF]) * size for j in range(n)]

    async def writer():
        for m in msgs:
            await ws.send(m)

    sending = asyncio.create_task(writer())
    for j, want in enumerate(msgs):
        try:
            got = await recv(ws)
        except asyncio.TimeoutError:
            raise Mismatch(f"echo {j} of {n} never came")
        if got != want:
            first = got[0] if got else None
            raise Mismatch(f"echo {j} of {n}: got {len(got)} bytes of value {first}, "
                           f"want {len(want)} bytes of value {j & 0xFF}: an echo was lost or reordered")
    await asyncio.wait_for(sending, STEP_TIMEOUT)
    await ws.close(1000)
    expect(ws.close_code == 1000, f"close echo {ws.close_code}")


def parse_frames(data):
    """Unmasked server frames -> [(opcode, payload)], and leftover bytes."""
    frames = []
    while len(data) >= 2:
        n = data[1] & 0x7F
        off = 2
        if n == 126:
            if len(data) < 4:
                break
            n, off = struct.unpack("!H", data[2:4])[0], 4
        elif n == 127:
            if len(data) < 10:
                break
            n, off = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < off + n:
            break
        frames.append((data[0] & 0x0F, data[off:off + n]))
        data = data[off + n:]
    return frames, data


EOF_CASES = {
    # name -> (bytes after the upgrade request, frames expected back)
    "message_then_fin": (mask_frame(True, 0x1, b"x"), [(0x1, b"x")]),
    "close_then_fin": (mask_frame(True, 0x8, close_payload(1000)), [(0x8, close_payload(1000))]),
    "partial_frame_then_fin": (mask_frame(True, 0x1, b"hello")[:4], []),
}


def one_eof_case(host, port, name, tail, want):
    import socket
    key = base64.b64encode(os.urandom(16)).decode()
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    request = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    s = socket.create_connection((host, port), timeout=5)
    # Everything, FIN included, is in the server's socket before it reads.
    s.sendall(request + tail)
    s.shutdown(socket.SHUT_WR)
    data = b""
    s.settimeout(3)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return f"{name}: the server did not close within 3 s of our FIN (got {len(data)} bytes)"
    finally:
        s.close()
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1.1 101") or accept.encode() not in head:
        return f"{name}: bad upgrade response {head[:80]!r}"
    frames, left = parse_frames(rest)
    if frames != want or left:
        return f"{name}: got frames {frames!r} (+{len(left)} bytes), want {want!r}"
    return None


async def mode_eof_cases(url):
    host, port = url.split("//")[1].rstrip("/").split(":")
    failures = [f for f in (one_eof_case(host, int(port), name, tail, want)
                            for name, (tail, want) in EOF_CASES.items()) if f]
    print(f"cases {len(EOF_CASES)}", flush=True)
    expect(not failures, "; ".join(failures))


async def mode_hold(url):
    ws = await connect(url)
    print("open", flush=True)
    try:
        got = await asyncio.wait_for(ws.recv(), 20)
        raise Mismatch(f"expected a close, got a message {got!r}")
    except websockets.ConnectionClosed as e:
        code = e.rcvd.code if e.rcvd is not None else None
        expect(code == 1001, f"expected close 1001 on shutdown, got {code}")


async def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url, mode, args = argv[1], argv[2], argv[3:]
    if mode == "sizes":
        await mode_sizes(url)
    elif mode == "fragments":
        await mode_fragments(url)
    elif mode == "ping":
        await mode_ping(url)
    elif mode == "close":
        await mode_close(url, int(args[0]), args[1] if len(args) > 1 else "")
    elif mode == "server_close":
        await mode_server_close(url)
    elif mode == "bad_utf8":
        await mode_bad_utf8(url)
    elif mode == "protocol_errors":
        await mode_protocol_errors(url, set(args))
    elif mode == "concurrent":
        await mode_concurrent(url, int(args[0]), int(args[1]))
    elif mode == "flood":
        await mode_flood(url, int(args[0]), int(args[1]))
    elif mode == "eof_cases":
        await mode_eof_cases(url)
    elif mode == "hold":
        await mode_hold(url)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    return 0


def fail(text):
    # Exits at once: a clean shutdown would wait out close timeouts on
    # connections left in any state.
    print(f"ws_client.py: {text}", file=sys.stderr, flush=True)
    os._exit(1)


async def run(argv):
    try:
        return await asyncio.wait_for(main(argv), TOTAL_TIMEOUT)
    except Mismatch as e:
        fail(f"mismatch: {e}")
    except Exception as e:  # timeouts, refused connections, protocol errors
        fail(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv)))
