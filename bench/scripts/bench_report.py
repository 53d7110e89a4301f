#!/usr/bin/python3
"""Measures ringlink against its peers and writes OUT/REPORT.md, OUT/results.json
and gnuplot figures (OUT/*.png). See bench/README.md for what each part means.

usage: bench_report.py --build BUILD [--config NAME=BUILD ...] [--peers DIR]
                       [--out bench/results] [--quick] [--only SECTIONS]

BUILD is a release build of ringlink (tools/ringlink-echo, tools/ringlink-load,
bench/bench_protocol); its bench/peers/ holds the peers unless --peers says
otherwise. Each --config adds a ringlink build to the configuration table.
Every server runs pinned to core 0 and every load tool to core 1 (taskset).
A binary that does not exist is skipped, with a line in the report.
--only takes a comma list of: echo, idle, slow, configs, micro; --servers limits
the servers (names as in the report); --from-json FILE rewrites the report and
plots from an earlier results.json without measuring.
"""
import argparse
import datetime
import json
import os
import re
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TCK = os.sysconf("SC_CLK_TCK")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IDLE_LINKS = os.path.join(REPO, "bench", "scripts", "idle_links.py")
SERVER_CORE, LOAD_CORE = "0", "1"
SOURCES = "127.0.0.1-127.0.0.20"   # spreads ephemeral ports over many source addresses

# Echo shapes: (key, payload bytes, connections, in flight per connection).
SHAPES = [
    ("64B_x100", 64, 100, 1),
    ("64B_x1000", 64, 1000, 1),
    ("64B_x10000", 64, 10000, 1),
    ("64B_x100_if16", 64, 100, 16),
    ("16KiB_x100", 16384, 100, 1),
]
QUICK_SHAPES = ["64B_x100", "64B_x1000", "16KiB_x100"]
CONFIG_SHAPES = ["64B_x100", "64B_x1000", "16KiB_x100"]
QUICK_CONFIG_SHAPES = ["64B_x100", "16KiB_x100"]

# What the seed says of each design (SEED.md), next to what we measure.
SEED_ROWS = [
    ("go_dual", "dual goroutine (today)", "sendLoop + receiveLoop per link",
     "2 goroutines/link; context switches", "channel of 256 each way, then blocks", "lossless (blocks)", "2 (+1 business here)"),
    ("go_v2", "v2 non-blocking read", "select: writes first; read with 1 ms deadline",
     "SetReadDeadline syscall every 1 ms per link", "GC churn", "drops when receive channel full", "1"),
    ("go_v3", "v3 batch send", "send up to 16, then one read (1 s timeout)",
     "moderate", "no backpressure: can grow", "blocks whole loop when business slow", "1"),
    (None, "v4 combined", "1 goroutine/link, balanced", "-", "-", "-", "1"),
    ("go_v5", "v5 aggregation", "one goroutine polls 2 links, 1 ms polling",
     "1 ms polling", "fixed groups", "single write try; panic kills group", "0.5"),
    ("ringlink", "ringlink", "one reactor thread per core; bounded rings; pause policy",
     "no polling; budgets per wakeup", "every queue bounded, pooled buffers with caps", "pause: lossless, per link", "~0 (threads)"),
]


# ---------------------------------------------------------------- helpers

COMMANDS = []   # every command line run, in order (results.json; REPORT lists the distinct forms)


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def record(cmd):
    COMMANDS.append(" ".join(shlex.quote(c) for c in cmd))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def core_ticks():
    """{cpu index: (busy, total)} ticks from /proc/stat."""
    out = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                m = re.match(r"cpu(\d+) (.*)", line)
                if m:
                    v = [int(x) for x in m.group(2).split()]
                    idle = v[3] + (v[4] if len(v) > 4 else 0)
                    out[int(m.group(1))] = (sum(v[:8]) - idle, sum(v[:8]))
    except OSError:
        pass
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def cell_text(text, limit=80):
    """One line of `text` fit for a Markdown table cell: its last line, no pipes."""
    lines = str(text).strip().splitlines()
    return (lines[-1] if lines else "").replace("|", "/")[:limit]


def peer_binary(peers_dir, name):
    """build_peers.sh writes BUILD/bench/peers/NAME; meson builds BUILD/bench/peers/{raw,cpp}/NAME."""
    for sub in ("", "raw", "cpp"):
        path = os.path.join(peers_dir, sub, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return os.path.join(peers_dir, name)


def median_range(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def si(x, digits=1):
    if x is None:
        return "-"
    a = abs(x)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{x / div:.{digits}f}{suf}"
    if a >= 100 or x == int(x):
        return f"{x:.0f}"
    return f"{x:.{digits}f}"


def us(x):
    if x is None:
        return "-"
    if x >= 10000:
        return f"{x / 1000:.0f} ms"
    if x >= 1000:
        return f"{x / 1000:.2f} ms"
    return f"{x:.0f} µs"


def cell(mr, fmt=si):
    """median [min–max] of a median_range dict."""
    if mr is None:
        return "-"
    if mr["n"] == 1 or mr["min"] == mr["max"]:
        return fmt(mr["median"])
    return f"{fmt(mr['median'])} [{fmt(mr['min'])}–{fmt(mr['max'])}]"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rcell(r):
    return "-" if r is None else (f"{r:.2f}×" if r < 10 else f"{r:.1f}×")


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- servers

class Peer:
    """A server binary: how to start it, and what it offers."""

    def __init__(self, name, path, kind, label=None):
        self.name, self.path, self.kind = name, path, kind
        self.label = label or name

    def exists(self):
        return os.path.isfile(self.path) and os.access(self.path, os.X_OK)

    def args(self, port, slow=None):
        if self.kind == "ringlink":
            a = [self.path, "--port", str(port), "--reactors", "1"]
            if slow:
                a += ["--workers", "1", "--business-delay-us", str(slow["us"]), "--slow-for", f"{slow['for']:g}"]
                if slow.get("path"):
                    a += ["--slow-path", slow["path"]]
            return a
        if self.kind == "go":
            a = [self.path, "-port", str(port)]
            if slow:
                a += ["-slow-us", str(slow["us"]), "-slow-for", slow.get("for_text", f"{slow['for']:g}")]
            return a
        return [self.path, "--port", str(port)]


class Running:
    """A server started pinned to the server core; stop() returns its stderr."""

    def __init__(self, peer, slow=None):
        self.peer = peer
        self.port = free_port()
        self.err = tempfile.TemporaryFile(mode="w+")
        cmd = ["taskset", "-c", SERVER_CORE] + peer.args(self.port, slow)
        record(cmd)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        deadline = time.time() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{peer.name} exited with {self.proc.returncode}: {self.stderr_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"{peer.name} did not listen on {self.port}")
                time.sleep(0.05)
        time.sleep(0.2)

    def stderr_tail(self):
        self.err.seek(0)
        return self.err.read()[-400:].strip().replace("\n", " / ")

    def stats(self):
        """Go peers' GET /stats: {"goroutines": N, "dropped": D}; None elsewhere."""
        if self.peer.kind != "go":
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=3) as r:
                return json.loads(r.read().decode())
        except (OSError, ValueError):
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        return text


def ringlink_metrics(text):
    """The counters ringlink-echo prints at exit."""
    out = {}
    for key, pat in (("messages_in", r"messages in (\d+)"), ("messages_out", r"out (\d+);"),
                     ("backpressured", r"backpressured (\d+)"), ("dropped", r"backpressured \d+, dropped (\d+)"),
                     ("inbound_dropped", r"inbound dropped (\d+)"), ("read_pauses", r"read pauses (\d+)"),
                     ("queued_high_water", r"high-water (\d+)"), ("handler_exceptions", r"handler exceptions (\d+)")):
        m = re.search(pat, text)
        if m:
            out[key] = int(m.group(1))
    return out


class Sampler(threading.Thread):
    """Samples a server's CPU ticks, RSS and threads every 0.2 s; with go, /stats every second."""

    def __init__(self, running, stats_every=None):
        super().__init__(daemon=True)
        self.running, self.stats_every = running, stats_every
        self.samples, self.stats = [], []
        self.halt = threading.Event()

    def run(self):
        last_stats = time.monotonic()
        pid = self.running.pid
        while not self.halt.is_set():
            t = time.monotonic()
            self.samples.append((t, cpu_ticks(pid), status_kib(pid, "VmRSS"), status_kib(pid, "Threads"),
                                 core_ticks()))
            if self.stats_every and t - last_stats >= self.stats_every:
                last_stats = t
                s = self.running.stats()
                if s:
                    self.stats.append((t, s))
            self.halt.wait(0.2)

    def cpu_percent(self, start, end):
        inside = [s for s in self.samples if start <= s[0] <= end and s[1] is not None]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.5:
            return None
        (t0, c0), (t1, c1) = inside[0][:2], inside[-1][:2]
        return 100.0 * (c1 - c0) / TCK / (t1 - t0), (c1 - c0) / TCK

    def core_busy(self, start, end, core):
        """Busy % of one core (every process and interrupt) over the window."""
        inside = [s for s in self.samples if start <= s[0] <= end and core in s[4]]
        if len(inside) < 2:
            return None
        (b0, t0), (b1, t1) = inside[0][4][core], inside[-1][4][core]
        return 100.0 * (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def max_of(self, index, start=0, end=float("inf")):
        vals = [s[index] for s in self.samples if start <= s[0] <= end and s[index] is not None]
        return max(vals) if vals else None


# ---------------------------------------------------------------- the harness

class Harness:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.build = os.path.abspath(a.build)
        self.peers_dir = os.path.abspath(a.peers or os.path.join(self.build, "bench", "peers"))
        self.load = os.path.join(self.build, "tools", "ringlink-load")
        self.raw_load = peer_binary(self.peers_dir, "raw_load")
        self.out = os.path.abspath(a.out)
        os.makedirs(self.out, exist_ok=True)
        self.skipped = []     # lines for the report
        self.notes = []
        self.results = {"echo": {}, "idle": {}, "slow": {}, "configs": {}, "micro": None}
        best = os.path.basename(self.build.rstrip("/"))
        self.peers = [Peer("ringlink", os.path.join(self.build, "tools", "ringlink-echo"), "ringlink",
                           f"ringlink ({best})")]
        for g in ("go_dual", "go_v2", "go_v3", "go_v5"):
            self.peers.append(Peer(g, peer_binary(self.peers_dir, g), "go"))
        for c in ("beast_echo", "lws_echo"):
            self.peers.append(Peer(c, peer_binary(self.peers_dir, c), "cpp"))
        self.peers.append(Peer("raw_echo", peer_binary(self.peers_dir, "raw_echo"), "raw", "raw_echo (TCP ceiling)"))
        if a.servers:
            self.peers = [p for p in self.peers if p.name in a.servers.split(",")]
        self.runs = 1 if self.quick else max(3, a.runs)
        self.duration = 2 if self.quick else 5
        self.warmup = 1 if self.quick else 2
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # children inherit it
        self.fd_limit = hard

    def skip(self, what, why):
        line = f"{what}: skipped ({why})"
        if line not in self.skipped:
            self.skipped.append(line)
            log(line)

    def available(self, peer):
        if not peer.exists():
            self.skip(peer.label, f"no binary at {os.path.relpath(peer.path, REPO)}")
            return False
        if peer.kind == "raw" and not os.access(self.raw_load, os.X_OK):
            self.skip(peer.label, f"no load tool at {os.path.relpath(self.raw_load, REPO)}")
            return False
        return True

    # ---- one echo run
    def echo_run(self, peer, shape):
        key, size, conns, inflight = shape
        ramp_rate = 5000 if conns > 1000 else 0
        warmup = self.warmup + (2 if conns > 1000 else 0)
        srv = Running(peer)
        js = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
        js.close()
        if peer.kind == "raw":
            cmd = [self.raw_load, "--port", str(srv.port)]
        else:
            cmd = [self.load, f"ws://127.0.0.1:{srv.port}/"]
        cmd += ["--conns", str(conns), "--size", str(size), "--inflight", str(inflight),
                "--duration", f"{self.duration}s", "--warmup", f"{warmup}s", "--json", js.name]
        if peer.kind != "raw":
            if ramp_rate:
                cmd += ["--connect-rate", str(ramp_rate), "--source-ips", SOURCES]
            cmd += ["--max-errors", "1000000000"]
        cmd = ["taskset", "-c", LOAD_CORE] + cmd
        record(cmd)
        sampler = Sampler(srv, stats_every=1.0 if (peer.kind == "go" and conns == 1000) else None)
        sampler.start()
        t0 = time.monotonic()
        timeout = 60 + warmup + self.duration + conns / 1000
        try:
            lp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)
            load_rc, load_out = lp.returncode, lp.stdout
        except subprocess.TimeoutExpired:
            load_rc, load_out = -1, "timeout"
        sampler.halt.set()
        sampler.join()
        hwm = status_kib(srv.pid, "VmHWM")
        srv.stop()
        try:
            with open(js.name) as f:
                j = json.load(f)
        except (OSError, ValueError):
            j = None
        os.unlink(js.name)
        if j is None:
            return {"error": f"load exit {load_rc}: {load_out[-300:]}"}
        lat = j.get("latency", {})
        thr = j.get("throughput", {})
        ramp = j.get("ramp_s", 0) or 0
        measured = j.get("measured_s", self.duration) or self.duration
        start = t0 + ramp + warmup + 0.3
        end = start + measured - 0.4
        cpu, cpu_s = sampler.cpu_percent(start, end) or (None, None)
        mps = thr.get("msgs_per_s")
        jcpu = j.get("cpu") or {}
        run = {
            "msgs_per_s": mps,
            "p50_us": lat.get("p50_us"), "p99_us": lat.get("p99_us"),
            "p99.9_us": lat.get("p99.9_us"), "p99.99_us": lat.get("p99.99_us"),
            "server_cpu_pct": cpu,
            # Fewer than 20 clock ticks of server CPU make the ratio noise.
            "per_core_s": (mps / (cpu / 100.0)) if (mps and cpu and cpu_s >= 20.0 / TCK) else None,
            "load_cpu_pct": jcpu.get("process_percent", j.get("process_cpu_percent")),
            "load_saturated": j.get("self_saturated"),
            "core_server_busy_pct": sampler.core_busy(start, end, int(SERVER_CORE)),
            "core_load_busy_pct": sampler.core_busy(start, end, int(LOAD_CORE)),
            "errors": j.get("errors"), "load_exit": load_rc,
            "conns_opened": (j.get("connections") or {}).get("opened"),
            "rss_kib": sampler.max_of(2), "hwm_kib": hwm,
            "threads": sampler.max_of(3),
            "distribution": lat.get("distribution"),
        }
        if sampler.stats:
            run["goroutines"] = max(s.get("goroutines", 0) for _, s in sampler.stats)
        if j.get("errors"):
            log(f"  {peer.name} {key}: {j.get('errors')} load errors")
        return run

    def echo_series(self, peer, shape):
        runs = []
        for i in range(self.runs):
            try:
                r = self.echo_run(peer, shape)
            except RuntimeError as e:
                r = {"error": str(e)}
            runs.append(r)
            if "error" in r:
                log(f"  {peer.name} {shape[0]} run {i + 1}: {r['error']}")
            else:
                log(f"  {peer.name} {shape[0]} run {i + 1}: {si(r['msgs_per_s'])} msgs/s, p99 {us(r['p99_us'])}, "
                    f"server cpu {r['server_cpu_pct'] or 0:.0f}%")
        ok = [r for r in runs if "error" not in r and r.get("msgs_per_s")]
        summary = {k: median_range([r.get(k) for r in ok]) for k in
                   ("msgs_per_s", "p50_us", "p99_us", "p99.9_us", "p99.99_us", "server_cpu_pct", "per_core_s",
                    "load_cpu_pct", "errors", "rss_kib", "threads", "goroutines", "core_server_busy_pct",
                    "core_load_busy_pct")}
        summary["load_saturated_runs"] = sum(1 for r in ok if r.get("load_saturated"))
        if ok:   # the run whose throughput is the median: its latency distribution for the plot
            mid = sorted(ok, key=lambda r: r["msgs_per_s"])[(len(ok) - 1) // 2]
            summary["distribution"] = mid.get("distribution")
        for r in runs:
            r.pop("distribution", None)
        summary["errors_in"] = [r["error"] for r in runs if "error" in r]
        return {"runs": runs, "summary": summary}

    def shapes(self, keys=None):
        keys = keys or ([s[0] for s in SHAPES] if not self.quick else QUICK_SHAPES)
        out = []
        for s in SHAPES:
            if s[0] not in keys:
                continue
            if s[2] + 100 > self.fd_limit:
                self.skip(f"shape {s[0]}", f"open-file limit {self.fd_limit}")
                continue
            out.append(s)
        return out

    def section_echo(self):
        log("echo: peers")
        for peer in self.peers:
            if not self.available(peer):
                continue
            for shape in self.shapes():
                self.results["echo"].setdefault(peer.name, {})[shape[0]] = self.echo_series(peer, shape)

    def section_configs(self):
        log("echo: ringlink configurations")
        keys = QUICK_CONFIG_SHAPES if self.quick else CONFIG_SHAPES
        for name, path in self.a.config:
            peer = Peer("ringlink", os.path.join(os.path.abspath(path), "tools", "ringlink-echo"), "ringlink",
                        f"config {name}")
            if not peer.exists():
                self.skip(f"config {name}", f"no binary at {os.path.relpath(peer.path, REPO)}")
                continue
            res = {"build": path}
            for shape in self.shapes(keys):
                res[shape[0]] = self.echo_series(peer, shape)
            self.results["configs"][name] = res

    # ---- idle links
    def idle_run(self, peer, links, hold, sources):
        srv = Running(peer)
        # idle_links.py holds a little longer than we measure: the window below starts
        # once the server holds every link and must end before the links close.
        cmd = [sys.executable, IDLE_LINKS, "--port", str(srv.port), "--pid", str(srv.pid),
               "--links", str(links), "--warmup", "100", "--hold", str(hold + 3 if hold else 0),
               "--source-ips", sources]
        cmd = ["taskset", "-c", LOAD_CORE] + cmd
        record(cmd)
        seen = {}
        watcher = threading.Thread(target=self.idle_window, args=(srv, links + 100, hold, seen), daemon=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watcher.start()
        try:
            out, err = proc.communicate(timeout=240 + hold)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            rc, err = -1, "timeout"
        watcher.join(timeout=5)
        srv.stop()
        m = dict(re.findall(r"(\w+)=([0-9.]+)", out))
        if rc != 0 or "bytes_per_link" not in m:
            lines = (err or out).strip().splitlines()
            return {"error": lines[-1] if lines else f"exit {rc}"}
        r = {"links": links, "rss_before_kib": int(m["rss_before_kib"]), "rss_after_kib": int(m["rss_after_kib"]),
             "bytes_per_link": float(m["bytes_per_link"]), "idle_cpu_ticks_s": float(m["idle_cpu_s"])}
        r.update(seen)
        if hold and "idle_cpu_s" not in r:
            r["note"] = "the idle window was not measured"
        return r

    @staticmethod
    def idle_window(srv, fds, hold, seen):
        """Waits until the server holds `fds` descriptors (every link open), reads its threads and
        goroutines once, then the CPU time of all its threads over `hold` seconds, from schedstat
        (nanoseconds; the clock ticks of /proc/PID/stat cannot resolve 0.05 s in 10 s)."""
        def sched_ns():
            total = 0
            try:
                for t in os.listdir(f"/proc/{srv.pid}/task"):
                    try:
                        with open(f"/proc/{srv.pid}/task/{t}/schedstat") as f:
                            total += int(f.read().split()[0])
                    except (OSError, ValueError, IndexError):
                        pass
            except OSError:
                return None
            return total

        deadline = time.time() + 240
        while True:
            try:
                if len(os.listdir(f"/proc/{srv.pid}/fd")) >= fds:
                    break
            except OSError:
                return
            if time.time() > deadline:
                return
            time.sleep(0.2)
        seen["threads"] = status_kib(srv.pid, "Threads")
        st = srv.stats()
        if st and st.get("goroutines") is not None:
            seen["goroutines"] = st["goroutines"]
        if not hold:
            return
        time.sleep(1.0)
        c0, t0 = sched_ns(), time.monotonic()
        time.sleep(hold)
        c1, t1 = sched_ns(), time.monotonic()
        if c0 is not None and c1 is not None:
            seen["idle_cpu_s"] = (c1 - c0) / 1e9
            seen["hold_s"] = round(t1 - t0, 2)

    def section_idle(self):
        log("idle links: memory and CPU")
        hold = 3 if self.quick else 10
        for peer in self.peers:
            if not self.available(peer) or peer.kind == "raw":
                continue
            sizes = [10000, 19000]
            if self.quick:
                # Polling designs accept 10,000 links slowly (minutes): quick runs give the
                # targets' servers 10,000 and the others fewer.
                sizes = [10000] if peer.name in ("ringlink", "go_dual") else [3000]
            res = {}
            for n in sizes:
                if n + 200 > self.fd_limit:
                    self.skip(f"idle {n}", f"open-file limit {self.fd_limit}")
                    continue
                try:
                    r = self.idle_run(peer, n, hold if n == min(sizes) else 0, SOURCES)
                except RuntimeError as e:
                    r = {"error": str(e)}
                if "error" in r:
                    log(f"  {peer.name} idle {n}: {r['error']}")
                else:
                    log(f"  {peer.name} idle {n}: {r['bytes_per_link']:.0f} B/link"
                        + (f", idle cpu {r['idle_cpu_s']:.4f} s over {r['hold_s']} s" if "idle_cpu_s" in r else ""))
                res[str(n)] = r
            self.results["idle"][peer.name] = res

    # ---- slow consumer
    def slow_params(self):
        if self.quick:
            return {"rate": 2000, "links": 10, "duration": 4.0, "slow_for": 1.5, "grace": 4.0, "others": 4,
                    "baseline": 1.0}
        return {"rate": 2000, "links": 10, "duration": 10.0, "slow_for": 4.0, "grace": 10.0, "others": 4,
                "baseline": 2.0}

    def slow_run(self, peer, variant):
        p = self.slow_params()
        business_rate = p["rate"] / 10.0        # 1/10 of what the senders send
        if peer.kind == "ringlink":
            # One worker is the whole business side: it must run at rate/10 in total.
            slow = {"us": int(round(1e6 / business_rate)), "for": p["slow_for"]}
            if variant == "slow_path":
                slow["path"] = "/slow"
        else:
            # A business goroutine per link: each at 1/10 of its own link's send rate.
            slow = {"us": int(round(1e6 / (business_rate / p["links"]))), "for": p["slow_for"]}
        try:
            srv = Running(peer, slow)
        except RuntimeError as e:
            if peer.kind != "go":
                raise
            slow["for_text"] = f"{p['slow_for']:g}s"   # a flag.Duration wants a unit
            log(f"  {peer.name}: retrying -slow-for with a unit ({e})")
            srv = Running(peer, slow)
        rss0 = status_kib(srv.pid, "VmRSS")
        rj = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        oj = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        bj = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        path = "/slow" if variant == "slow_path" else "/"
        rate_cmd = ["taskset", "-c", LOAD_CORE, self.load, f"ws://127.0.0.1:{srv.port}{path}", "--mode", "rate",
                    "--rate", str(p["rate"]), "--conns", str(p["links"]), "--size", "64",
                    "--duration", f"{p['duration']:g}s", "--grace", f"{p['grace']:g}s", "--max-errors", "1000000000",
                    "--json", rj]
        other_cmd = ["taskset", "-c", LOAD_CORE, self.load, f"ws://127.0.0.1:{srv.port}/", "--conns",
                     str(p["others"]), "--size", "64", "--duration", f"{p['slow_for']:g}s", "--grace", "30s",
                     "--max-errors", "1000000000", "--json", oj]
        base_cmd = other_cmd[:-1] + [bj]
        base_cmd[base_cmd.index("--duration") + 1] = f"{p['baseline']:g}s"
        record(rate_cmd)
        record(other_cmd)
        sampler = Sampler(srv)
        sampler.start()
        rp = subprocess.Popen(rate_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        op = subprocess.Popen(other_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        limit = p["duration"] + p["grace"] + 60
        for proc in (rp, op):
            try:
                proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        record(base_cmd)
        subprocess.run(base_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=limit)
        sampler.halt.set()
        sampler.join()
        hwm = status_kib(srv.pid, "VmHWM")
        stats = srv.stats()
        text = srv.stop()

        def load_json(path_):
            try:
                with open(path_) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
            finally:
                os.unlink(path_)

        rjs, ojs, bjs = load_json(rj), load_json(oj), load_json(bj)
        if rjs is None:
            return {"error": "the rate load wrote no JSON"}
        thr = rjs.get("throughput", {})
        sent, got = thr.get("total_sent"), thr.get("total_received")
        r = {"server_args": peer.args(0, slow)[1:], "params": p, "business_delay_us": slow["us"],
             "sent": sent, "echoed": got, "lost": (sent - got) if sent is not None and got is not None else None,
             "rss_start_kib": rss0, "peak_rss_kib": hwm, "load_errors": rjs.get("errors"),
             "stream_p99_us": rjs.get("latency", {}).get("p99_us"),
             "others_p99_slow_us": (ojs or {}).get("latency", {}).get("p99_us"),
             "others_p50_slow_us": (ojs or {}).get("latency", {}).get("p50_us"),
             "others_msgs_slow": ((ojs or {}).get("throughput") or {}).get("msgs_received"),
             "others_p99_base_us": (bjs or {}).get("latency", {}).get("p99_us"),
             "others_p50_base_us": (bjs or {}).get("latency", {}).get("p50_us")}
        if peer.kind == "go":
            r["server_dropped"] = stats.get("dropped") if stats else None
            r["goroutines_end"] = stats.get("goroutines") if stats else None
        elif peer.kind == "ringlink":
            m = ringlink_metrics(text)
            r["server_metrics"] = m
            # Worker replies refused by a full outbound queue are lost too (policy reject).
            r["server_dropped"] = (m.get("dropped", 0) + m.get("inbound_dropped", 0) + m.get("backpressured", 0)
                                   if m else None)
        return r

    def section_slow(self):
        log("slow consumer")
        for peer in self.peers:
            if not self.available(peer):
                continue
            if peer.kind not in ("ringlink", "go"):
                self.skip(f"slow consumer, {peer.label}", "no slow business mode")
                continue
            variants = ["all"] if (peer.kind != "ringlink" or self.quick) else ["all", "slow_path"]
            for v in variants:
                name = peer.name if v == "all" else f"{peer.name} (/slow only)"
                try:
                    r = self.slow_run(peer, v)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    r = {"error": str(e)}
                if "error" in r:
                    log(f"  {name}: {r['error']}")
                else:
                    log(f"  {name}: sent {r['sent']} echoed {r['echoed']} server dropped {r.get('server_dropped')} "
                        f"peak rss {r['peak_rss_kib']} KiB; others p99 {us(r['others_p99_slow_us'])} "
                        f"(baseline {us(r['others_p99_base_us'])})")
                self.results["slow"][name] = r

    # ---- microbenchmarks
    def section_micro(self):
        exe = os.path.join(self.build, "bench", "bench_protocol")
        if not os.access(exe, os.X_OK):
            self.skip("microbenchmarks", f"no binary at {os.path.relpath(exe, REPO)}")
            return
        log("microbenchmarks")
        cmd = ["taskset", "-c", SERVER_CORE, exe, "--benchmark_repetitions=3",
               "--benchmark_report_aggregates_only=true", "--benchmark_format=json"]
        if self.quick:
            cmd.append("--benchmark_min_time=0.02")
        record(cmd)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
        try:
            j = json.loads(p.stdout)
        except ValueError:
            self.skip("microbenchmarks", f"no JSON (exit {p.returncode}): {p.stderr[-200:]}")
            return
        rows = []
        for b in j.get("benchmarks", []):
            if b.get("aggregate_name") != "median":
                continue
            rows.append({k: b.get(k) for k in ("run_name", "real_time", "cpu_time", "time_unit",
                                               "bytes_per_second", "items_per_second")})
        self.results["micro"] = {"context": j.get("context"), "medians": rows}

    # ---- machine
    def machine(self):
        def sh(cmd):
            try:
                return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      cwd=REPO, timeout=20).stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                return ""
        lscpu = sh(["lscpu"])
        model = re.search(r"Model name:\s*(.+)", lscpu)
        dirty = bool(sh(["git", "status", "--porcelain", "--untracked-files=no"]))
        return {"cpu": model.group(1).strip() if model else "?", "cores": os.cpu_count(),
                "kernel": os.uname().release, "commit": sh(["git", "rev-parse", "--short", "HEAD"]),
                "dirty": dirty, "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "fd_limit": self.fd_limit, "quick": self.quick, "loadavg_start": loadavg(), "runs": self.runs,
                "duration_s": self.duration, "warmup_s": self.warmup,
                "command": " ".join(shlex.quote(x) for x in sys.argv)}

    def run(self):
        if self.a.from_json:   # only the report and plots again, from an earlier run's data
            with open(self.a.from_json) as f:
                self.results = json.load(f)
            self.skipped = self.results.get("skipped", [])
            COMMANDS[:] = self.results.get("commands", [])
            self.quick = self.results["machine"]["quick"]
            plots = Plots(self.results, self.peers, self.out).make()
            Report(self, plots).write()
            return
        t0 = time.monotonic()
        self.results["machine"] = self.machine()
        only = set(self.a.only.split(",")) if self.a.only else {"echo", "idle", "slow", "configs", "micro"}
        if not os.access(self.load, os.X_OK):
            self.skip("every WebSocket load", f"no ringlink-load at {self.load}")
        for name, fn in (("micro", self.section_micro), ("echo", self.section_echo), ("idle", self.section_idle),
                         ("slow", self.section_slow), ("configs", self.section_configs)):
            if name in only:
                fn()
        self.results["elapsed_s"] = time.monotonic() - t0
        self.results["machine"]["loadavg_end"] = loadavg()
        self.results["skipped"] = self.skipped
        self.results["commands"] = COMMANDS
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)
        plots = Plots(self.results, self.peers, self.out).make()
        Report(self, plots).write()
        log(f"done in {self.results['elapsed_s']:.0f} s: {os.path.join(self.out, 'REPORT.md')}")


# ---------------------------------------------------------------- plots

class Plots:
    def __init__(self, results, peers, out):
        self.r, self.peers, self.out = results, peers, out

    def label(self, name):
        for p in self.peers:
            if p.name == name:
                return p.label
        return name

    def gnuplot(self, name, script, blocks):
        """blocks: [(title, [rows])]; writes NAME.dat (one gnuplot index per block) and NAME.gp."""
        blocks = [(t, rows) for t, rows in blocks if rows]
        if not blocks:
            return None
        dat = os.path.join(self.out, name + ".dat")
        with open(dat, "w") as f:
            for title, rows in blocks:
                f.write(f"# {title}\n")
                for row in rows:
                    f.write(" ".join(f"{v:.6g}" for v in row) + "\n")
                f.write("\n\n")
        png = os.path.join(self.out, name + ".png")
        gp = os.path.join(self.out, name + ".gp")
        plots = ", ".join(script["plot"].format(i=i, title=t.replace('"', "'"), dat=name + ".dat")
                          for i, (t, _) in enumerate(blocks))
        with open(gp, "w") as f:
            f.write("# generated by bench/scripts/bench_report.py; run from this directory\n")
            f.write("set terminal pngcairo size 1000,640 font ',11' noenhanced\n")
            f.write(f"set output '{name}.png'\n")
            f.write(script["setup"] + "\n")
            f.write("set grid\nset key outside right top\n")
            f.write(f"plot {plots}\n")
        try:
            p = subprocess.run(["gnuplot", name + ".gp"], cwd=self.out, stderr=subprocess.PIPE, text=True, timeout=60)
            if p.returncode != 0:
                log(f"gnuplot {name}: {p.stderr[-300:]}")
                return None
        except (OSError, subprocess.TimeoutExpired) as e:
            log(f"gnuplot {name}: {e}")
            return None
        return os.path.basename(png)

    def make(self):
        made = {}
        echo = self.r["echo"]
        blocks = []
        for name, shapes in echo.items():
            rows = []
            for key, size, conns, inflight in SHAPES:
                if size == 64 and inflight == 1 and key in shapes:
                    s = shapes[key]["summary"]["msgs_per_s"]
                    if s:
                        rows.append((conns, s["median"], s["min"], s["max"]))
            blocks.append((self.label(name), rows))
        made["throughput"] = self.gnuplot("throughput_vs_conns", {
            "setup": "set title 'Echo throughput, 64 B, 1 in flight (median, min-max)'\n"
                     "set logscale x\nset xlabel 'connections'\nset ylabel 'messages/s'\nset yrange [0:*]\n"
                     "set format y '%.0s%c'",
            "plot": "'{dat}' index {i} using 1:2:3:4 with yerrorlines lw 2 title \"{title}\""}, blocks)

        blocks = []
        for name, shapes in echo.items():
            rows = []
            for key, size, conns, inflight in SHAPES:
                if size == 64 and inflight == 1 and key in shapes:
                    s = shapes[key]["summary"]["per_core_s"]
                    if s:
                        rows.append((conns, s["median"], s["min"], s["max"]))
            blocks.append((self.label(name), rows))
        made["per_core"] = self.gnuplot("per_core_vs_conns", {
            "setup": "set title 'Messages per server-core-second, 64 B, 1 in flight'\n"
                     "set logscale x\nset xlabel 'connections'\nset ylabel 'messages per core-second'\n"
                     "set yrange [0:*]\nset format y '%.0s%c'",
            "plot": "'{dat}' index {i} using 1:2:3:4 with yerrorlines lw 2 title \"{title}\""}, blocks)

        blocks = []
        for name, shapes in echo.items():
            d = (shapes.get("64B_x1000") or {}).get("summary", {}).get("distribution")
            if d:
                blocks.append((self.label(name), [(1.0 / (1.0 - p["percentile"] / 100.0), p["value_us"])
                                                  for p in d if p["percentile"] < 100 and p["value_us"]]))
        made["latency"] = self.gnuplot("latency_1000", {
            "setup": "set title 'Echo round-trip latency, 64 B x 1000 connections (median run)'\n"
                     "set logscale x\nset logscale y\nset xlabel 'percentile'\nset ylabel 'microseconds'\n"
                     "set xtics ('p0' 1, 'p50' 2, 'p90' 10, 'p99' 100, 'p99.9' 1000, 'p99.99' 10000, 'p99.999' 100000)",
            "plot": "'{dat}' index {i} using 1:2 with lines lw 2 title \"{title}\""}, blocks)

        blocks = []
        for name, sizes in self.r["idle"].items():
            rows = []
            for n, r in sorted(sizes.items(), key=lambda kv: int(kv[0])):
                if "error" in r:
                    continue
                if not rows:
                    rows.append((100, r["rss_before_kib"] / 1024))
                rows.append((int(n) + 100, r["rss_after_kib"] / 1024))
            blocks.append((self.label(name), rows))
        made["rss"] = self.gnuplot("rss_vs_conns", {
            "setup": "set title 'Server RSS with idle WebSocket links'\n"
                     "set xlabel 'open links'\nset ylabel 'RSS, MiB'\nset yrange [0:*]",
            "plot": "'{dat}' index {i} using 1:2 with linespoints lw 2 title \"{title}\""}, blocks)
        return made


# ---------------------------------------------------------------- report

class Report:
    def __init__(self, h, plots):
        self.h, self.r, self.plots = h, h.results, plots

    def label(self, name):
        for p in self.h.peers:
            if p.name == name:
                return p.label
        return name

    def s(self, server, shape, metric):
        try:
            return self.r["echo"][server][shape]["summary"][metric]
        except (KeyError, TypeError):
            return None

    def med(self, server, shape, metric):
        v = self.s(server, shape, metric)
        return v["median"] if v else None

    def idle(self, server, n, key):
        r = self.r["idle"].get(server, {}).get(str(n))
        return None if (not r or "error" in r) else r.get(key)

    def write(self):
        out = []
        m = self.r["machine"]
        w = out.append
        w("# ringlink benchmarks\n")
        if m["quick"]:
            w("> **QUICK run** (`make bench QUICK=1`): one run per figure, "
              f"{m['duration_s']} s measured, fewer shapes. Ranges need the full run (`make bench`).\n")
        w(f"- machine: {m['cpu']}, {m['cores']} cores; kernel {m['kernel']}; open-file limit {m['fd_limit']}")
        w(f"- commit: {m['commit']}{' (dirty: uncommitted changes)' if m['dirty'] else ''}; date {m['date']}")
        w(f"- harness: `{m['command']}` ({self.r['elapsed_s']:.0f} s)")
        la0, la1 = m.get("loadavg_start"), m.get("loadavg_end")
        if la0 and la1:
            w(f"- load average (1/5/15 min) at start {la0[0]:.2f}/{la0[1]:.2f}/{la0[2]:.2f}, at end "
              f"{la1[0]:.2f}/{la1[1]:.2f}/{la1[2]:.2f}"
              + (" — **other work shared the 2 cores; figures are noisy**" if max(la0[0], la1[0]) > 1.0 else ""))
        w(f"- method: server pinned to core {SERVER_CORE}, load to core {LOAD_CORE} (`taskset`); each figure is the "
          f"median of {m['runs']} run(s) [min–max]; {m['duration_s']} s measured after {m['warmup_s']} s warm-up "
          "(+2 s and a 5000/s connect ramp at 10,000 links). Server CPU from /proc/PID/stat (utime+stime) over "
          "the measured window; messages per core-second = msgs/s ÷ server CPU fraction. Raw data: "
          "`results.json`; plots: `*.png` (gnuplot scripts `*.gp` beside them).\n")
        if self.h.skipped:
            w("**Skipped:**\n")
            for line in self.h.skipped:
                w(f"- {line}")
            w("")
        self.seed_table(w)
        self.targets(w)
        self.echo_tables(w)
        self.idle_table(w)
        self.slow_table(w)
        self.config_table(w)
        self.micro_table(w)
        self.plot_list(w)
        self.commands(w)
        with open(os.path.join(self.h.out, "REPORT.md"), "w") as f:
            f.write("\n".join(out) + "\n")

    def lost(self, name):
        r = self.r["slow"].get(name)
        if not r or "error" in r:
            return None
        return r.get("lost")

    def seed_table(self, w):
        w("## The seed's designs, measured\n")
        w("Qualitative columns from the seed analysis (SEED.md); measured columns from this run. "
          "Per core-second at 1000 links: 64 B echo, 1 in flight. Per idle link: RSS growth over 10,000 idle links. "
          "Idle CPU: server CPU seconds over 10 s with 10,000 idle links. Lost: end-to-end, slow-consumer test. "
          "Goroutines (Go, `/stats` at 1000 echo links ÷ 1000) or threads per link (C++).\n")
        rows = []
        for key, variant, idea, cpu, mem, rel, gor in SEED_ROWS:
            if key is None:
                rows.append([variant, idea, cpu, mem, rel, gor, "not built", "-", "-", "-", "-"])
                continue
            pc = self.s(key, "64B_x1000", "per_core_s")
            n = 10000 if self.idle(key, 10000, "links") else min(
                (int(k) for k in self.r["idle"].get(key, {})), default=10000)
            bpl = self.idle(key, n, "bytes_per_link")
            icpu = self.idle(key, n, "idle_cpu_s")
            hold = self.idle(key, n, "hold_s")
            if icpu is not None and hold:
                icpu = icpu * 10.0 / hold
            at = "" if n == 10000 else f" ({n} links)"
            lost = self.lost(key)
            g = self.med(key, "64B_x1000", "goroutines")
            t = self.med(key, "64B_x1000", "threads")
            per_link = (f"{g / 1000:.2f} goroutines" if g is not None else
                        (f"{t / 1000:.4f} threads ({t:.0f} threads)" if t is not None else "-"))
            rows.append([variant, idea, cpu, mem, rel, gor, cell(pc), f"{bpl:.0f} B{at}" if bpl is not None else "-",
                         f"{icpu:.4f} s{at}" if icpu is not None else "-", "-" if lost is None else str(lost), per_link])
        w(md_table(["variant", "idea", "CPU cost (seed)", "memory stability (seed)", "message reliability (seed)",
                    "goroutines/link (seed)", "msgs per core-s @1000", "RSS per idle link", "idle CPU @10k /10 s",
                    "msgs lost (slow consumer)", "measured per link"], rows))
        w("")

    def targets(self, w):
        w("## Targets (issue 8)\n")
        rows = []

        def row(name, value, goal, ok, by):
            rows.append([name, value, goal, "-" if ok is None else ("**met**" if ok else "**missed**"), by])

        rl = "ringlink"
        pc, pcd = self.med(rl, "64B_x1000", "per_core_s"), self.med("go_dual", "64B_x1000", "per_core_s")
        x = ratio(pc, pcd)
        row("msgs per core-second @1000 links vs go_dual", f"{si(pc)} vs {si(pcd)} ({rcell(x)})", "≥ 5×",
            None if x is None else x >= 5, "-" if x is None else f"{x / 5:.2f} of the goal")
        a, b = self.med(rl, "64B_x100", "msgs_per_s"), self.med("raw_echo", "64B_x100", "msgs_per_s")
        x = ratio(a, b)
        row("msgs/s @100 links vs raw TCP ceiling", f"{si(a)} vs {si(b)} ({'-' if x is None else f'{100 * x:.0f} %'})",
            "≥ 90 %", None if x is None else x >= 0.9, "-" if x is None else f"{100 * x - 90:+.0f} points")
        a, b = self.idle(rl, 10000, "bytes_per_link"), self.idle("go_dual", 10000, "bytes_per_link")
        x = ratio(a, b)
        row("bytes per idle link vs go_dual", f"{'-' if a is None else f'{a:.0f}'} vs {'-' if b is None else f'{b:.0f}'}"
            f" ({'-' if x is None else f'1/{1 / x:.1f}' if x > 0 else '0'})", "≤ 1/10",
            None if x is None else x <= 0.1, "-" if x is None else f"{x * 10:.2f} of the budget")
        c, hold = self.idle(rl, 10000, "idle_cpu_s"), self.idle(rl, 10000, "hold_s")
        c10 = c * 10.0 / hold if (c is not None and hold) else None
        row("idle CPU, 10,000 links, per 10 s", "-" if c10 is None else f"{c10:.4f} s"
            + (f" (over {hold:g} s, scaled)" if hold and abs(hold - 10) > 0.2 else ""), "< 0.05 s",
            None if c10 is None else c10 < 0.05,
            "-" if c10 is None else f"{abs(0.05 - c10):.3f} s {'under' if c10 < 0.05 else 'over'} the limit")
        r = self.r["slow"].get(rl)
        if r and "error" not in r:
            cap = self.caps_kib(r)
            lost, dropped = r.get("lost"), r.get("server_dropped")
            ok = lost == 0 and not dropped and r["peak_rss_kib"] is not None and r["peak_rss_kib"] <= cap
            row("slow consumer: loss and peak RSS (default policy pause)",
                f"lost {lost}, server dropped {dropped}, peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB",
                f"0 lost, RSS ≤ {cap / 1024:.0f} MiB (caps)", ok,
                f"{r['peak_rss_kib'] / cap * 100:.1f} % of the cap")
        else:
            row("slow consumer: loss and peak RSS", "-", "0 lost, RSS within caps", None, "not measured")
        w(md_table(["target", "measured (ringlink vs reference)", "goal", "status", "by how much"], rows))
        w("\nringlink here is the `--build` configuration; the configuration table below shows the others.\n")

    def caps_kib(self, r):
        """The engine's memory caps for the slow test's links: the receive pool cap of one reactor, each
        link's outbound cap, the hand-off ring, plus the RSS the server started with."""
        cfg = {}
        try:
            with open(os.path.join(self.h.build, "ringlink_config.hpp")) as f:
                for name, val in re.findall(r"(\w+)\s*=\s*(\d+)", f.read()):
                    cfg[name] = int(val)
        except OSError:
            pass
        chunk = cfg.get("chunk_size", 16384)
        links = r["params"]["links"] + r["params"]["others"]
        pool = 16384 * chunk                        # ServerConfig::pool_max_chunks default
        outbound = links * (1 << 20)                # ServerConfig::max_queued_bytes default
        ring = cfg.get("recv_ring_slots", 1024) * (64 + 64)
        return (r.get("rss_start_kib") or 0) + (pool + outbound + ring) / 1024

    def echo_tables(self, w):
        w("## Echo: every server\n")
        w("Messages/s with its ratio to the raw TCP ceiling (raw_echo + raw_load, same shape) and to go_dual; "
          "latency is the round trip at the load tool. Load CPU is the load tool's own (near 100 %: the load core, "
          "not the server, is the limit). Core 0 / 1 busy: everything on the server's and the load's core "
          "(other processes and softirq included); far above server / load CPU means others competed.\n")
        for key, size, conns, inflight in SHAPES:
            names = [n for n in self.r["echo"] if key in self.r["echo"][n]]
            if not names:
                continue
            w(f"### {size if size < 1024 else str(size // 1024) + ' KiB'}{' B' if size < 1024 else ''} × {conns} "
              f"connections, {inflight} in flight\n")
            raw, dual = self.med("raw_echo", key, "msgs_per_s"), self.med("go_dual", key, "msgs_per_s")
            rawpc, dualpc = self.med("raw_echo", key, "per_core_s"), self.med("go_dual", key, "per_core_s")
            rawp99, dualp99 = self.med("raw_echo", key, "p99_us"), self.med("go_dual", key, "p99_us")
            rows = []
            for n in names:
                s = self.r["echo"][n][key]["summary"]
                mps = self.med(n, key, "msgs_per_s")
                pc = self.med(n, key, "per_core_s")
                p99 = self.med(n, key, "p99_us")
                errs = s.get("errors_in") or []
                note = (f"{len(errs)} failed run(s)" if errs else "") + (
                    f" {s['errors']['median']:.0f} load errors" if s.get("errors") and s["errors"]["median"] else "") + (
                    f" load saturated in {s['load_saturated_runs']} run(s)" if s.get("load_saturated_runs") else "")
                c0, c1 = s.get("core_server_busy_pct"), s.get("core_load_busy_pct")
                cores = f"{c0['median']:.0f} / {c1['median']:.0f} %" if c0 and c1 else "-"
                rows.append([self.label(n), cell(s["msgs_per_s"]), rcell(ratio(mps, raw)), rcell(ratio(mps, dual)),
                             cell(s["p50_us"], us), cell(s["p99_us"], us), rcell(ratio(p99, rawp99)),
                             rcell(ratio(p99, dualp99)), cell(s["p99.9_us"], us),
                             cell(s["server_cpu_pct"], lambda x: f"{x:.0f} %"), cell(s["per_core_s"]),
                             rcell(ratio(pc, rawpc)), rcell(ratio(pc, dualpc)),
                             cell(s["load_cpu_pct"], lambda x: f"{x:.0f} %"), cores, note.strip() or "-"])
            w(md_table(["server", "msgs/s", "÷ raw", "÷ dual", "p50", "p99", "p99 ÷ raw", "p99 ÷ dual", "p99.9",
                        "server CPU", "msgs per core-s", "÷ raw", "÷ dual", "load CPU", "core 0 / 1 busy",
                        "notes"], rows))
            w("")

    def idle_table(self, w):
        if not self.r["idle"]:
            return
        w("## Idle links: memory and CPU\n")
        w("A fresh server per row; `idle_links.py` opens 100 warm-up links, reads VmRSS, opens N more (source "
          f"addresses {SOURCES}), reads VmRSS again, then holds them. Idle CPU: the CPU time of all the "
          "server's threads (`/proc/PID/task/*/schedstat`, nanoseconds) over the hold, which starts 1 s after "
          "the server holds every link. Goroutines / threads: read once all links are open.\n")
        rows = []
        dual = self.idle("go_dual", 10000, "bytes_per_link")
        for n, sizes in self.r["idle"].items():
            for k, r in sorted(sizes.items(), key=lambda kv: int(kv[0])):
                if "error" in r:
                    rows.append([self.label(n), k, "-", "-", "-", "-", "-", cell_text(r["error"])])
                    continue
                rows.append([self.label(n), k, f"{r['rss_before_kib'] / 1024:.1f} MiB",
                             f"{r['rss_after_kib'] / 1024:.1f} MiB", f"{r['bytes_per_link']:.0f}",
                             rcell(ratio(r["bytes_per_link"], dual)) if k == "10000" else "-",
                             f"{r['idle_cpu_s']:.4f} s over {r['hold_s']:g} s" if r.get("idle_cpu_s") is not None else "-",
                             (f"{r['goroutines']} goroutines" if r.get("goroutines") is not None
                              else f"{r.get('threads')} threads")])
        w(md_table(["server", "idle links", "RSS before", "RSS after", "bytes per link", "÷ dual", "idle CPU",
                    "most goroutines / threads"], rows))
        w("")

    def slow_table(self, w):
        if not self.r["slow"]:
            return
        p = self.h.slow_params()
        w("## Slow consumer\n")
        w(f"A stream of {p['rate']} msgs/s (64 B) for {p['duration']:g} s over {p['links']} links (ringlink-load "
          f"rate mode) to a server whose business side runs at 1/10 of that rate for the first {p['slow_for']:g} s "
          f"after its first message, then at full speed; up to {p['grace']:g} s grace for the catch-up. Meanwhile "
          f"{p['others']} other links echo (1 in flight) through the slow phase; their baseline is the same "
          f"{p['baseline']:g} s echo after the stream ended. ringlink-echo: `--workers 1 --business-delay-us U "
          f"--slow-for S` (one worker is the whole business side: U = 10 / rate); Go peers: `-slow-us U -slow-for S` "
          f"with U chosen so each link's business goroutine runs at 1/10 of its link's send rate. Lost = sent − "
          f"echoed back; server-dropped = what the server itself counts (Go `/stats` dropped; ringlink dropped + "
          f"inbound dropped + cross-thread replies refused). `(/slow only)`: only the stream's links are slow.\n")
        rows = []
        for n, r in self.r["slow"].items():
            base = n.split(" ")[0]
            if "error" in r:
                rows.append([self.label(base) + n[len(base):], "-", "-", "-", "-", "-", "-", "-", "-", cell_text(r["error"])])
                continue
            rows.append([self.label(base) + n[len(base):], f"{r['business_delay_us']} µs", str(r["sent"]),
                         str(r["echoed"]), str(r["lost"]), "-" if r.get("server_dropped") is None else
                         str(r["server_dropped"]),
                         f"{(r['rss_start_kib'] or 0) / 1024:.1f} → {(r['peak_rss_kib'] or 0) / 1024:.1f} MiB",
                         us(r["stream_p99_us"]), f"{us(r['others_p99_slow_us'])} vs {us(r['others_p99_base_us'])}",
                         f"{r['others_msgs_slow']} msgs in the slow phase" if r.get("others_msgs_slow") is not None
                         else "-"])
        w(md_table(["server", "U", "sent", "echoed", "lost", "server-dropped", "RSS start → peak (VmHWM)",
                    "stream p99 (corrected)", "other links p99: slow phase vs baseline", "other links"], rows))
        w("")

    def config_table(self, w):
        if not self.r["configs"]:
            return
        cfgs = {}
        main = self.r["echo"].get("ringlink")
        if main:   # the --build configuration, from the peers' section of this run
            cfgs[os.path.basename(self.h.build.rstrip("/")) + " (--build)"] = main
        cfgs.update(self.r["configs"])
        w("## ringlink configurations\n")
        w("The same echo shapes for each `--config` build (epoll vs io_uring, native vs wslay framing, mimalloc vs "
          "system allocator). The first row is the `--build` configuration's figures from the peers' section. "
          "÷ first: ratio to the first row.\n")
        keys = [s[0] for s in SHAPES if any(s[0] in c for c in cfgs.values())]
        first = next(iter(cfgs))
        rows = []
        for name, c in cfgs.items():
            row = [name]
            for k in keys:
                s = c.get(k, {}).get("summary") if k in c else None
                if not s or not s.get("msgs_per_s"):
                    row += ["-", "-", "-"]
                    continue
                f0 = cfgs[first].get(k, {}).get("summary", {}).get("msgs_per_s")
                row += [cell(s["msgs_per_s"]) + f" ({rcell(ratio(s['msgs_per_s']['median'], f0['median'] if f0 else None))})",
                        cell(s["p99_us"], us), cell(s["per_core_s"])]
            rows.append(row)
        header = ["config"]
        for k in keys:
            header += [f"{k} msgs/s (÷ first)", f"{k} p99", f"{k} per core-s"]
        w(md_table(header, rows))
        best = None
        shape = "64B_x1000" if all("64B_x1000" in c for c in cfgs.values()) else "64B_x100"
        for name, c in cfgs.items():
            v = (c.get(shape) or {}).get("summary", {}).get("per_core_s")
            if v and (best is None or v["median"] > best[1]):
                best = (name, v["median"])
        if best:
            w(f"\nHighest messages per core-second at {shape}: **{best[0]}** ({si(best[1])}).\n")

    def micro_table(self, w):
        mi = self.r.get("micro")
        if not mi:
            return
        w("## Microbenchmarks (bench_protocol, median of 3 repetitions)\n")
        rows = []
        for b in mi["medians"]:
            rate = ""
            if b.get("bytes_per_second"):
                rate = f"{b['bytes_per_second'] / 1e9:.2f} GB/s"
            if b.get("items_per_second"):
                rate += (", " if rate else "") + f"{si(b['items_per_second'])} items/s"
            rows.append([b["run_name"], f"{b['real_time']:.1f} {b['time_unit']}", f"{b['cpu_time']:.1f} {b['time_unit']}",
                         rate or "-"])
        w(md_table(["benchmark", "real time", "CPU time", "rate"], rows))
        w("")

    def plot_list(self, w):
        w("## Plots\n")
        desc = {"throughput": "echo messages/s vs connections, per server",
                "per_core": "messages per server-core-second vs connections, per server",
                "latency": "latency percentile curves at 1000 connections, per server",
                "rss": "server RSS vs idle links, per server"}
        for k, png in self.plots.items():
            if png:
                w(f"### {desc[k]}\n\n![{desc[k]}]({png})\n")
            else:
                w(f"- {desc[k]}: no data\n")

    def commands(self, w):
        w("## Commands\n")
        w("Every command the harness ran is in `results.json` (`commands`); one of each kind:\n")
        seen, lines = set(), []
        for c in COMMANDS:
            t = re.sub(r"(--?port|--pid) \d+", r"\1 N", c.replace(REPO + "/", ""))
            t = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:N", t)
            t = re.sub(r"--json \S+", "--json FILE", t)
            if t not in seen:
                seen.add(t)
                lines.append(t)
        w("```")
        for c in lines:
            w(c)
        w("```")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="ringlink release build dir (the headline configuration)")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=BUILD",
                    help="another ringlink build for the configuration table (repeatable)")
    ap.add_argument("--peers", help="directory of the peer binaries (default BUILD/bench/peers)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--quick", action="store_true", help="one short run per figure, fewer shapes (< 5 min)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure in a full run (at least 3)")
    ap.add_argument("--only", help="comma list of sections: echo,idle,slow,configs,micro")
    ap.add_argument("--servers", help="comma list: only these servers (ringlink, go_dual, ..., raw_echo)")
    ap.add_argument("--from-json", metavar="RESULTS", help="write REPORT.md and plots from a results.json, measure nothing")
    a = ap.parse_args()
    configs = []
    for c in a.config:
        name, sep, path = c.partition("=")
        if not sep:
            ap.error(f"--config wants NAME=BUILD, not {c}")
        configs.append((name, path))
    a.config = configs
    Harness(a).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
