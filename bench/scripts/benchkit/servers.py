"""The servers under test: how each starts, stops and is sampled."""
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


from .common import *  # noqa: F401,F403
from .common import COMMANDS, record


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
    """Samples a server's CPU ticks (user and kernel apart), RSS and threads every 0.2 s, and the
    load tool's CPU ticks once its pid is set (load_pid); with go, /stats every second."""

    def __init__(self, running, stats_every=None):
        super().__init__(daemon=True)
        self.running, self.stats_every = running, stats_every
        self.samples, self.stats = [], []
        self.load_pid = None
        self.halt = threading.Event()

    def run(self):
        last_stats = time.monotonic()
        pid = self.running.pid
        while not self.halt.is_set():
            t = time.monotonic()
            self.samples.append((t, cpu_ticks(pid), status_kib(pid, "VmRSS"), status_kib(pid, "Threads"),
                                 core_ticks(), cpu_ticks(self.load_pid) if self.load_pid else None))
            if self.stats_every and t - last_stats >= self.stats_every:
                last_stats = t
                s = self.running.stats()
                if s:
                    self.stats.append((t, s))
            self.halt.wait(0.2)

    def cpu(self, start, end, index=1):
        """{pct, s, user_s, sys_s, window_s} of the server (index 1) or the load tool (index 5) over the
        window, from the first and last samples inside it; None when the window is too short."""
        inside = [s for s in self.samples if start <= s[0] <= end and s[index] is not None]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.5:
            return None
        (t0, c0), (t1, c1) = (inside[0][0], inside[0][index]), (inside[-1][0], inside[-1][index])
        user, sys_ = (c1[0] - c0[0]) / TCK, (c1[1] - c0[1]) / TCK
        return {"pct": 100.0 * (user + sys_) / (t1 - t0), "s": user + sys_, "user_s": user, "sys_s": sys_,
                "window_s": t1 - t0}

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


