"""REPORT.md (and bench/RESULTS.md) from results.json: every figure generated."""
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
from .common import COMMANDS


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


