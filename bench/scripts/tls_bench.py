#!/usr/bin/python3
"""TLS against plain, and ringlink against a TLS peer, in one run.

usage: tls_bench.py --build BUILD [--runs 3] [--duration 5] [--backend-note TEXT]

Echo: ringlink-echo over ws:// and over wss:// (TLS 1.3, ECDSA P-256), and
Node `ws` over wss:// (bench/peers/node/ws_echo.js), each loaded by
ringlink-load on core 1 with the server on core 0, at 64 B x 100 links x 16
in flight and 16 KiB x 100 x 1; the runs of the three servers alternate,
each figure is the median of --runs [min-max]. Server CPU per message is the
server's utime + stime over the measured window / the messages echoed in it.

Handshakes: `openssl s_time -new` (a full TLS handshake per connection, no
resumption) against ringlink-echo and Node ws with an RSA-2048 and an ECDSA
P-256 certificate: handshakes per second and the server's CPU per handshake.
s_time is one client doing one handshake at a time, so handshakes per second
is bounded by the round trip too; the server's CPU per handshake is the
figure to compare.

Certificates are made here with `openssl req` and deleted afterwards.
Prints one line per figure, then the ratios the TLS issue asks for.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit.common import REPO, SERVER_CORE, LOAD_CORE, TCK, cpu_ticks, median_range  # noqa: E402

NODE_ECHO = os.path.join(REPO, "bench", "peers", "node", "ws_echo.js")


def make_cert(work, kind):
    key, cert = os.path.join(work, f"{kind}.key"), os.path.join(work, f"{kind}.pem")
    newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", "2", "-keyout", key, "-out", cert,
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class Server:
    """A server on the server core, its port read from a port file."""

    def __init__(self, cmd, work):
        port_file = os.path.join(work, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CORE] + [c.replace("PORT_FILE", port_file) for c in cmd],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"{cmd[0]} did not start")
            time.sleep(0.05)
        time.sleep(0.3)
        self.port = int(open(port_file).read().strip())

    def cpu_s(self):
        t = cpu_ticks(self.proc.pid)
        return (t[0] + t[1]) / TCK if t else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def echo_run(server, load, url, ca, size, inflight, duration, warmup):
    js = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
    cmd = ["taskset", "-c", LOAD_CORE, load, url, "--conns", "100", "--size", str(size), "--inflight",
           str(inflight), "--duration", f"{duration}s", "--warmup", f"{warmup}s", "--json", js,
           "--max-errors", "1000000000"]
    if ca:
        cmd += ["--ca", ca]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(warmup + 0.8)               # connected and warm (100 handshakes take well under 0.5 s)
    c0, t0 = server.cpu_s(), time.monotonic()
    time.sleep(duration - 1.0)
    c1, t1 = server.cpu_s(), time.monotonic()
    p.wait(timeout=duration + warmup + 60)
    try:
        with open(js) as f:
            j = json.load(f)
    finally:
        os.unlink(js)
    mps = (j.get("throughput") or {}).get("msgs_per_s")
    cpu_frac = (c1 - c0) / (t1 - t0) if c0 is not None and c1 is not None else None
    return {"msgs_per_s": mps, "p99_us": (j.get("latency") or {}).get("p99_us"),
            "server_cpu_pct": 100 * cpu_frac if cpu_frac is not None else None,
            "server_us_per_msg": 1e6 * cpu_frac / mps if cpu_frac and mps else None,
            "errors": j.get("errors")}


def handshake_run(server, ca, seconds):
    c0 = server.cpu_s()
    p = subprocess.run(["taskset", "-c", LOAD_CORE, "openssl", "s_time", "-connect", f"127.0.0.1:{server.port}",
                        "-new", "-time", str(seconds), "-CAfile", ca],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=seconds + 60)
    c1 = server.cpu_s()
    m = re.search(r"(\d+) connections in ([\d.]+) real seconds", p.stdout)
    if not m:
        return {"error": p.stdout.strip().splitlines()[-1] if p.stdout.strip() else f"exit {p.returncode}"}
    n, real = int(m.group(1)), float(m.group(2))
    return {"handshakes": n, "per_s": n / real if real else None,
            "server_us_per_handshake": 1e6 * (c1 - c0) / n if n and c0 is not None and c1 is not None else None}


def fmt(mr, f="{:.0f}"):
    if not mr:
        return "-"
    if mr["n"] == 1:
        return f.format(mr["median"])
    return f"{f.format(mr['median'])} [{f.format(mr['min'])}-{f.format(mr['max'])}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    a = ap.parse_args()
    echo = os.path.join(a.build, "tools", "ringlink-echo")
    load = os.path.join(a.build, "tools", "ringlink-load")
    print(f"# bench/scripts/tls_bench.py --build {a.build} --runs {a.runs} --duration {a.duration}")
    print(f"# {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; kernel {os.uname().release}; "
          f"{subprocess.run(['openssl', 'version'], stdout=subprocess.PIPE, text=True).stdout.strip()}; "
          f"node {subprocess.run(['node', '--version'], stdout=subprocess.PIPE, text=True).stdout.strip()}")
    print(f"# server on core {SERVER_CORE}, load on core {LOAD_CORE}; echo: ringlink-load, 100 links, "
          f"{a.duration} s after 2 s warm-up; median of {a.runs} alternated runs [min-max]")
    with tempfile.TemporaryDirectory() as work:
        certs = {k: make_cert(work, k) for k in ("ecdsa", "rsa")}
        ec_cert, ec_key = certs["ecdsa"]
        servers = {
            "ringlink ws://": ([echo, "--port", "0", "--port-file", "PORT_FILE", "--reactors", "1"], "ws", None),
            "ringlink wss://": ([echo, "--port", "0", "--port-file", "PORT_FILE", "--reactors", "1",
                                 "--tls-cert", ec_cert, "--tls-key", ec_key], "wss", ec_cert),
            "node ws wss://": (["node", NODE_ECHO, "PORT_FILE", ec_cert, ec_key], "wss", ec_cert),
        }
        results = {}
        for size, inflight in ((64, 16), (16384, 1)):
            shape = f"{size}B x 100 x {inflight}"
            runs = {name: [] for name in servers}
            for _ in range(a.runs):
                for name, (cmd, scheme, ca) in servers.items():
                    srv = Server(cmd, work)
                    try:
                        runs[name].append(echo_run(srv, load, f"{scheme}://127.0.0.1:{srv.port}/", ca, size, inflight,
                                                   a.duration, 2))
                    finally:
                        srv.stop()
            for name in servers:
                r = {k: median_range([x.get(k) for x in runs[name]])
                     for k in ("msgs_per_s", "p99_us", "server_cpu_pct", "server_us_per_msg")}
                results[(shape, name)] = r
                print(f"echo {shape:17} {name:16} msgs/s {fmt(r['msgs_per_s'])}  server CPU "
                      f"{fmt(r['server_cpu_pct'])} %  server us/msg {fmt(r['server_us_per_msg'], '{:.3f}')}  "
                      f"p99 us {fmt(r['p99_us'])}")
        hs = {}
        for kind, (cert, key) in certs.items():
            for name, cmd in (("ringlink", [echo, "--port", "0", "--port-file", "PORT_FILE", "--reactors", "1",
                                            "--tls-cert", cert, "--tls-key", key]),
                              ("node ws", ["node", NODE_ECHO, "PORT_FILE", cert, key])):
                rs = []
                for _ in range(a.runs):
                    srv = Server(cmd, work)
                    try:
                        rs.append(handshake_run(srv, cert, a.duration))
                    finally:
                        srv.stop()
                r = {k: median_range([x.get(k) for x in rs]) for k in ("per_s", "server_us_per_handshake")}
                hs[(kind, name)] = r
                errs = [x["error"] for x in rs if "error" in x]
                print(f"handshakes {kind:5} {name:9} per s {fmt(r['per_s'])}  server us per handshake "
                      f"{fmt(r['server_us_per_handshake'])}" + (f"  errors: {errs[0]}" if errs else ""))

    print("# ratios (medians)")
    for shape in ("64B x 100 x 16", "16384B x 100 x 1"):
        plain, tls, node = (results.get((shape, n)) for n in ("ringlink ws://", "ringlink wss://", "node ws wss://"))
        if plain and tls and plain["msgs_per_s"] and tls["msgs_per_s"]:
            print(f"tls_vs_plain_msgs {shape}: {tls['msgs_per_s']['median'] / plain['msgs_per_s']['median']:.2f}")
        if tls and node and tls["server_us_per_msg"] and node["server_us_per_msg"]:
            print(f"ringlink_vs_node_tls_cpu_per_msg {shape}: "
                  f"{tls['server_us_per_msg']['median'] / node['server_us_per_msg']['median']:.2f}")
    for kind in ("ecdsa", "rsa"):
        r, n = hs.get((kind, "ringlink")), hs.get((kind, "node ws"))
        if r and n and r["server_us_per_handshake"] and n["server_us_per_handshake"]:
            print(f"ringlink_vs_node_cpu_per_handshake {kind}: "
                  f"{r['server_us_per_handshake']['median'] / n['server_us_per_handshake']['median']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
