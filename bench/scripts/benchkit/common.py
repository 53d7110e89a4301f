"""Constants, the command log and formatting shared by the harness and the report."""
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
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
IDLE_LINKS = os.path.join(REPO, "bench", "scripts", "idle_links.py")
SERVER_CORE, LOAD_CORE = "0", "1"
SOURCES = "127.0.0.1-127.0.0.20"   # spreads ephemeral ports over many source addresses

# Echo shapes: (key, payload bytes, connections, in flight per connection).
SHAPES = [
    ("64B_x1", 64, 1, 1),
    ("64B_x100", 64, 100, 1),
    ("64B_x1000", 64, 1000, 1),
    ("64B_x10000", 64, 10000, 1),
    ("64B_x100_if16", 64, 100, 16),
    ("16KiB_x100", 16384, 100, 1),
]
# One link, one message in flight is a latency figure (corking must add none): ringlink against the
# ceiling and the fastest C peer is enough there.
SHAPE_SERVERS = {"64B_x1": ("ringlink", "raw_echo", "lws_echo")}
QUICK_SHAPES = ["64B_x1000", "64B_x100_if16"]
CONFIG_SHAPES = ["64B_x1", "64B_x1000", "64B_x100_if16", "16KiB_x100"]
QUICK_CONFIG_SHAPES = ["64B_x1000", "64B_x100_if16"]

# The seed's closing table (shared/seed/link-goroutine-analysis.zh.md, "性能对比总结"), in English:
# CPU cost, memory stability, message reliability, code complexity, goroutines per link, where to use it.
# ringlink's row is its own claim, measured by the same columns.
SEED_ROWS = [
    ("go_dual", "dual goroutine (today)", "medium", "good", "high", "low", "2", "simple, reliable services"),
    ("go_v2", "v2 non-blocking read", "very high", "good", "medium (drops on purpose)", "high", "1",
     "write-latency sensitive"),
    ("go_v3", "v3 batch send", "medium-low", "poor (may OOM)", "high", "medium", "1", "zero loss required"),
    ("go_v4", "v4 combined", "low", "good", "medium (protective drops)", "medium", "1",
     "general production; 10K-100K links"),
    ("go_v5", "v5 aggregation", "medium-high", "good", "medium (protective drops)", "high", "0.5",
     "above 100K links"),
    ("ringlink", "ringlink", "no polling; budgets per turn", "every queue bounded", "pause: lossless, per link",
     "-", "~0 (a thread per core)", "-"),
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
    """(utime, stime) clock ticks of a process, all its threads, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])
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


