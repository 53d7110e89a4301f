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
from . import scale


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
          f"median of {m['runs']} run(s) [min–max], the runs of every server of a shape alternated round by round; "
          f"{m['duration_s']} s measured after {m['warmup_s']} s warm-up (+2 s and a 5000/s connect ramp at 10,000 "
          "links). Server and load CPU from /proc/PID/stat, user (utime) and kernel (stime) apart, over the "
          "measured window; messages per core-second = msgs/s ÷ server CPU fraction; syscalls from `perf stat -e "
          "raw_syscalls:sys_enter -p PID` over the window. Raw data: `results.json`; plots: `*.png` (gnuplot "
          "scripts `*.gp` beside them).\n")
        if self.h.skipped:
            w("**Skipped:**\n")
            for line in self.h.skipped:
                w(f"- {line}")
            w("")
        self.summary(w)
        self.targets(w)
        self.before_after(w)
        self.seed_table(w)
        self.echo_tables(w)
        self.idle_table(w)
        self.slow_table(w)
        self.mix_table(w)
        if self.r.get("scale"):
            scale.write(w, self.r["scale"]["figures"], self.r["scale"]["source"])
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

    # ---- noise-aware comparisons
    def mr(self, server, shape, metric):
        """The median_range of a figure: an echo server, or a configuration as "config:NAME"."""
        if server.startswith("config:"):
            try:
                return self.r["configs"][server[7:]][shape]["summary"][metric]
            except (KeyError, TypeError):
                return None
        return self.s(server, shape, metric)

    @staticmethod
    def within_noise(a, b):
        """Two figures whose [min, max] over their runs overlap cannot be told apart by this run."""
        return (a and b and a["n"] >= 2 and b["n"] >= 2 and a["min"] <= b["max"] and b["min"] <= a["max"])

    def nratio(self, a, b):
        """a ÷ b as a cell: the ratio of medians, or "within noise" when the runs' spreads overlap."""
        if not a or not b or not b["median"]:
            return "-"
        r = rcell(a["median"] / b["median"])
        return f"within noise ({r})" if self.within_noise(a, b) else r

    def backend_rows(self):
        """ringlink's builds by the backend they ran on: {"io_uring": server, "epoll": server}; the --build
        first, then the native mimalloc configurations (server as for mr())."""
        out = {}
        cands = ["ringlink"] + ["config:" + n for n in self.r["configs"]
                                if n.startswith("native-") and n.endswith("-mimalloc")]
        for srv in cands:
            shapes = (self.r["echo"].get("ringlink") if srv == "ringlink" else self.r["configs"].get(srv[7:])) or {}
            for v in shapes.values():
                b = v.get("summary", {}).get("backend") if isinstance(v, dict) else None
                if b in ("epoll", "io_uring") and b not in out:
                    out[b] = srv
                    break
        return out

    def backend_of(self, server):
        """The backend a ringlink server ran on in this run (its log says), or None."""
        shapes = (self.r["echo"].get(server) if not server.startswith("config:")
                  else self.r["configs"].get(server[7:])) or {}
        for v in shapes.values():
            if isinstance(v, dict) and v.get("summary", {}).get("backend"):
                return v["summary"]["backend"]
        return None

    # ---- the summary, generated
    def summary(self, w):
        w("## Summary\n")
        w("Generated from this run's data like every figure below (`results.json`); a ratio whose two figures' "
          "ranges overlap is called within noise.\n")
        rl = "ringlink"
        for key, what in (("64B_x1000", "64 B x 1000 links, 1 in flight"), ("64B_x100_if16", "64 B x 100 links, 16 in flight")):
            a, raw, dual = self.mr(rl, key, "per_core_s"), self.mr("raw_echo", key, "per_core_s"), self.mr("go_dual", key, "per_core_s")
            if a:
                w(f"- **{what}:** ringlink echoes {cell(a)} messages per server core-second; "
                  f"÷ raw TCP {self.nratio(a, raw)}, ÷ go_dual {self.nratio(a, dual)}.")
        for backend, server in sorted(self.backend_rows().items()):
            u = self.mr(server, "64B_x100_if16", "server_user_us_per_msg")
            k = self.mr(server, "64B_x100_if16", "server_kernel_us_per_msg")
            sc = self.mr(server, "64B_x100_if16", "syscalls_per_msg")
            if u and k:
                w(f"- **Where the server's time goes, {backend}, 16 in flight:** {u['median']:.3f} µs user + "
                  f"{k['median']:.3f} µs kernel per message"
                  + (f", {sc['median']:.3f} system calls per message." if sc else "."))
        bpl = self.idle(rl, 10000, "bytes_per_link")
        dual = self.idle("go_dual", 10000, "bytes_per_link")
        if bpl is not None:
            w(f"- **Idle links:** {bpl:.0f} B of server RSS per idle link at 10,000 links"
              + (f", against {dual:.0f} B for go_dual." if dual else "."))
        r, d = self.r["slow"].get(rl), self.r["slow"].get("go_dual")
        if r and "error" not in r:
            w(f"- **Slow consumer:** ringlink lost {r['lost']} messages; the other links' p99 in the slow phase was "
              f"{us(r['others_p99_slow_us'])}"
              + (f" against go_dual's {us(d['others_p99_slow_us'])}." if d and "error" not in d else "."))
        missed = [t for t in self.target_rows() if t[3] == "**missed**"]
        w(f"- **Targets:** {sum(1 for t in self.target_rows() if t[3] == '**met**')} met, {len(missed)} missed"
          + (": " + "; ".join(t[0] for t in missed) + "." if missed else "."))
        w("")

    # ---- the seed's table
    def seed_table(self, w):
        w("## The seed's designs, measured\n")
        w("Words from the seed's closing table (shared/seed/, \"性能对比总结\", in English) beside this run's "
          "measurements. Per core-second: 64 B echo at 1000 links, 1 in flight. Per idle link: RSS growth "
          "over 10,000 idle links (a design that could not hold 10,000 gets its figure at the largest count it "
          "held, named). Idle CPU: server CPU over 10 s of that hold. Lost and the other links' p99: the "
          "slow-consumer test. Goroutines (`/stats`, 1000 echo links) or threads per link. Lines and "
          "cyclomatic complexity (McCabe, pmccabe's rule; `bench/scripts/complexity.py`): each Go design's own file, "
          "and with the shared frame reader `go_peer` it builds on; ringlink's row is all of engine/ and protocol/, "
          "TLS, compression, topics and brokers included, so it is the upper bound of what runs a link.\n")
        cx = self.r.get("complexity") or {}
        rows = []
        seed_rows = list(SEED_ROWS)
        epoll = self.backend_rows().get("epoll")
        if epoll and epoll != "ringlink":   # ringlink on its other backend, same words
            rl = seed_rows[-1]
            seed_rows[-1] = (rl[0], f"ringlink ({self.backend_of('ringlink') or 'the --build'})") + rl[2:]
            seed_rows.append((epoll, "ringlink (epoll)") + rl[2:])
        for key, variant, cpu, mem, rel, cplx, gor, use in seed_rows:
            pc = self.mr(key, "64B_x1000", "per_core_s")
            pc_txt = cell(pc)
            if pc is None:
                rough = self.mr(key, "64B_x1000", "per_core_s_rough")
                mps = self.mr(key, "64B_x1000", "msgs_per_s")
                cpu_pct = self.mr(key, "64B_x1000", "server_cpu_pct")
                if rough:
                    pc_txt = (f"≈{si(rough['median'])} (rough: {si(mps['median'])} msgs/s at "
                              f"{cpu_pct['median']:.1f} % CPU, under 20 clock ticks)")
                elif mps:
                    pc_txt = f"- ({si(mps['median'])} msgs/s, no CPU measured)"
                elif key not in self.r["echo"]:
                    pc_txt = "- (not run)"
            sizes = sorted((int(k) for k, v in self.r["idle"].get(key, {}).items() if "error" not in v), reverse=True)
            n = 10000 if 10000 in sizes else (sizes[0] if sizes else None)
            bpl = self.idle(key, n, "bytes_per_link") if n else None
            icpu, hold = (self.idle(key, n, "idle_cpu_s"), self.idle(key, n, "hold_s")) if n else (None, None)
            failed = "error" in self.r["idle"].get(key, {}).get("10000", {})
            at = "" if n == 10000 else f" (at {n} links{': 10,000 failed' if failed else ''})"
            if bpl is None:
                errs = [v.get("error") for v in self.r["idle"].get(key, {}).values() if "error" in v]
                bpl_txt = f"- ({cell_text(errs[0], 60)})" if errs else "- (not run)"
            else:
                bpl_txt = f"{bpl:.0f} B{at}"
            icpu_txt = (f"{icpu * 10.0 / hold:.4f} s{at}" if icpu is not None and hold else
                        ("- (not held)" if bpl is not None else bpl_txt))
            sl = self.r["slow"].get(key)
            lost = "- (not measured in this run)" if not sl else ("- (" + cell_text(sl["error"], 40) + ")" if "error" in sl else str(sl["lost"]))
            p99 = ("- (not measured in this run)" if not sl else "-" if "error" in sl
                   else us(sl.get("others_p99_slow_us")))
            g, t = self.mr(key, "64B_x1000", "goroutines"), self.mr(key, "64B_x1000", "threads")
            g, t = (g or {}).get("median"), (t or {}).get("median")
            per_link = (f"{g / 1000:.2f} goroutines" if g is not None else
                        (f"{t / 1000:.4f} threads ({t:.0f} in all)" if t is not None else "-"))
            c = cx.get("ringlink" if key.startswith("config:") else key) or {}
            wp = c.get("with_go_peer") or {}
            loc = (str(c["loc"]) + (f" ({wp['loc']} with go_peer)" if wp else "")) if "loc" in c else "- (not measured)"
            ccn = (f"{c['ccn_total']}" + (f" ({wp['ccn_total']} with go_peer)" if wp else "")
                   + f" / {c['ccn_max']}") if "ccn_total" in c else "- (not measured)"
            rows.append([variant, cpu, mem, rel, cplx, gor, pc_txt, bpl_txt, icpu_txt, lost, p99, per_link, loc, ccn])
        w(md_table(["design", "CPU cost (seed)", "memory stability (seed)", "reliability (seed)",
                    "complexity (seed)", "goroutines/link (seed)", "msgs per core-s @1000", "RSS per idle link",
                    "idle CPU /10 s", "lost (slow consumer)", "others' p99, slow phase", "measured per link",
                    "lines", "complexity total / largest function"], rows))
        w("")

    # ---- targets
    def derived_rss_bound_kib(self, r):
        """What the slow test may hold, from the links' own limits: each of its links pins at most its
        hand-off quota of received chunks, one chunk being read and one of output; the reactor's receive
        ring follows the load up to `uring_buffers` chunks; on top of the RSS the server started with.
        A leak of one chunk per message (20,000 messages) breaks it; the pool's 256 MiB cap is no longer
        the bound."""
        cfg = self.r.get("machine", {}).get("ringlink_config") or {}
        chunk = cfg.get("chunk_size", 16384)
        ring = cfg.get("uring_buffers", 1024)
        links = r["params"]["links"] + r["params"]["others"]
        quota = 8                                       # ServerConfig::handoff_quota default
        return (r.get("rss_start_kib") or 0) + (links * (quota + 2) * chunk + ring * chunk) / 1024

    def target_rows(self):
        rows = []

        def row(name, value, goal, ok, by):
            rows.append([name, value, goal, "-" if ok is None else ("**met**" if ok else "**missed**"), by])

        def cmp_row(name, a, b, goal_ratio, at_most, what=si):
            """a ÷ b against a goal; within noise counts as equal."""
            if not a or not b:
                row(name, "-", f"{'≤' if at_most else '≥'} {goal_ratio:g}×", None, "not measured")
                return
            x = a["median"] / b["median"]
            noisy = self.within_noise(a, b)
            ok = (x <= goal_ratio if at_most else x >= goal_ratio) or (noisy and goal_ratio == 1.0)
            row(name, f"{what(a['median'])} vs {what(b['median'])} ({rcell(x)}{', within noise' if noisy else ''})",
                f"{'≤' if at_most else '≥'} {goal_ratio:g}×", ok, f"{x / goal_ratio:.2f} of the goal")

        rl = "ringlink"
        cmp_row("msgs per core-second @1000 links vs go_dual", self.mr(rl, "64B_x1000", "per_core_s"),
                self.mr("go_dual", "64B_x1000", "per_core_s"), 5.0, False)
        bpl, dual = self.idle(rl, 10000, "bytes_per_link"), self.idle("go_dual", 10000, "bytes_per_link")
        x = ratio(bpl, dual)
        row("bytes per idle link vs go_dual", "-" if x is None else f"{bpl:.0f} vs {dual:.0f} B (1/{1 / x:.1f})"
            if x > 0 else f"{bpl:.0f} vs {dual:.0f} B", "≤ 1/10", None if x is None else x <= 0.1,
            "-" if x is None else f"{x * 10:.2f} of the budget")
        c, hold = self.idle(rl, 10000, "idle_cpu_s"), self.idle(rl, 10000, "hold_s")
        c10 = c * 10.0 / hold if (c is not None and hold) else None
        row("idle CPU, 10,000 links, per 10 s", "-" if c10 is None else f"{c10:.4f} s", "< 0.05 s",
            None if c10 is None else c10 < 0.05, "-" if c10 is None else f"{c10 / 0.05:.2f} of the limit")
        r = self.r["slow"].get(rl)
        if r and "error" not in r:
            bound = self.derived_rss_bound_kib(r)
            lost, dropped = r.get("lost"), r.get("server_dropped")
            ok = lost == 0 and not dropped and r["peak_rss_kib"] is not None and r["peak_rss_kib"] <= bound
            row("slow consumer: loss and peak RSS (pause policy)",
                f"lost {lost}, server dropped {dropped}, peak RSS {r['peak_rss_kib'] / 1024:.1f} MiB",
                f"0 lost, RSS ≤ {bound / 1024:.1f} MiB (the links' own limits)", ok,
                f"{r['peak_rss_kib'] / bound:.2f} of the bound")
            d = self.r["slow"].get("go_dual")
            if d and "error" not in d and r.get("others_p99_slow_us") and d.get("others_p99_slow_us"):
                x = r["others_p99_slow_us"] / d["others_p99_slow_us"]
                row("slow consumer: the other links' p99 vs go_dual's", f"{us(r['others_p99_slow_us'])} vs "
                    f"{us(d['others_p99_slow_us'])} ({rcell(x)})", "≤ 1×", x <= 1.0, f"{x:.2f} of the goal")
        else:
            row("slow consumer", "-", "0 lost", None, "not measured")
        # Corked output (issue 14): judged by server CPU per message against the raw ceiling in this run.
        backends = self.backend_rows()
        for backend, goal in (("epoll", 1.05), ("io_uring", 0.85)):
            srv = backends.get(backend)
            cmp_row(f"server CPU per message, 64 B x 100 x 16, {backend} vs raw",
                    self.mr(srv, "64B_x100_if16", "server_cpu_us_per_msg") if srv else None,
                    self.mr("raw_echo", "64B_x100_if16", "server_cpu_us_per_msg"), goal, True,
                    lambda v: f"{v:.3f} µs")
        srv = backends.get("io_uring")
        for shape, ref in (("64B_x100_if16", "raw_echo"), ("64B_x1000", "raw_echo"), ("64B_x1000", "lws_echo")):
            a = self.mr(srv, shape, "msgs_per_s") if srv else None
            cmp_row(f"msgs/s, {shape}, io_uring vs {ref}", a, self.mr(ref, shape, "msgs_per_s"), 1.0, False)
            sat = self.mr(srv, shape, "load_cpu_pct") if srv else None
            if sat and sat["median"] >= 95:
                rows[-1][4] += " (the load core saturated: the load tool, not the server, set this figure)"
        for backend, goal in (("epoll", 0.25), ("io_uring", 0.1)):
            srv = backends.get(backend)
            sc = self.mr(srv, "64B_x100_if16", "syscalls_per_msg") if srv else None
            row(f"syscalls per message, 64 B x 100 x 16, {backend}", "-" if not sc else f"{sc['median']:.3f}",
                f"≤ {goal}", None if not sc else sc["median"] <= goal,
                "not measured (perf)" if not sc else f"{sc['median'] / goal:.2f} of the limit")
        base = (self.h.baseline or {}).get("echo", {}).get(rl, {}).get("64B_x1", {}).get("summary", {}).get("p50_us")
        now = self.mr(rl, "64B_x1", "p50_us")
        if now and base:
            cmp_row("1 link, 1 in flight: p50 vs the baseline run", now, base, 1.0, True, us)
        # Corking could only add latency by holding a reply past the turn that made it; one link with one
        # message in flight against the raw TCP echo (which writes at once) shows whether it does.
        for backend, srv in sorted(backends.items()):
            cmp_row(f"1 link, 1 in flight: p50, {backend} vs raw TCP (corking adds no latency)",
                    self.mr(srv, "64B_x1", "p50_us"), self.mr("raw_echo", "64B_x1", "p50_us"), 1.10, True, us)
        for backend, srv in sorted(backends.items()):
            name = "ringlink" if srv == "ringlink" else srv
            b = self.idle(name, 10000, "bytes_per_link")
            row(f"bytes per idle link at 10,000 links, {backend}", "-" if b is None else f"{b:.0f} B", "≤ 128 B",
                None if b is None else b <= 128, "-" if b is None else f"{b / 128:.2f} of the budget")
        return rows

    def targets(self, w):
        w("## Targets\n")
        w("Issue 8's targets against the seed's dual design, and issue 14's for corked output, judged from this "
          "run. Server CPU per message is the server's utime + stime over the measured window ÷ the messages "
          "echoed in it; syscalls per message come from `perf stat -e raw_syscalls:sys_enter` on the server over "
          "the same window. The io_uring and epoll rows are the builds named in the configuration table.\n")
        w(md_table(["target", "measured", "goal", "status", "by how much"], self.target_rows()))
        w("")

    def before_after(self, w):
        base = self.h.baseline
        if not base:
            return
        bm = base.get("machine", {})
        w("## Before and after\n")
        w(f"The baseline is the committed `make bench` of commit {bm.get('commit', '?')} ({bm.get('date', '?')}), "
          f"`{os.path.relpath(self.h.a.baseline, REPO)}`; after is this run, same harness and shapes. CPU per "
          "message is 1 ÷ messages per core-second. A change inside both runs' spread is within noise.\n")
        rows = []
        servers = [("ringlink", "ringlink")] + [(f"config:{n}", n) for n in self.r["configs"]]
        for srv, label in servers:
            for shape in [s[0] for s in SHAPES]:
                if srv == "ringlink":
                    b = base.get("echo", {}).get("ringlink", {}).get(shape, {}).get("summary")
                else:
                    b = base.get("configs", {}).get(label, {}).get(shape, {}).get("summary")
                a = {"msgs_per_s": self.mr(srv, shape, "msgs_per_s"), "per_core_s": self.mr(srv, shape, "per_core_s"),
                     "p99_us": self.mr(srv, shape, "p99_us")}
                if not b or not a["msgs_per_s"]:
                    continue

                def inv(mr):
                    return None if not mr else {"median": 1e6 / mr["median"], "min": 1e6 / mr["max"],
                                                "max": 1e6 / mr["min"], "n": mr["n"]}
                usf = (lambda v: f"{v:.2f} µs")
                rows.append([self.label(srv) if srv == "ringlink" else label, shape,
                             f"{cell(b.get('msgs_per_s'))} → {cell(a['msgs_per_s'])} ({self.nratio(a['msgs_per_s'], b.get('msgs_per_s'))})",
                             f"{cell(inv(b.get('per_core_s')), usf)} → {cell(inv(a['per_core_s']), usf)}"
                             f" ({self.nratio(inv(a['per_core_s']), inv(b.get('per_core_s')))})",
                             f"{cell(b.get('p99_us'), us)} → {cell(a['p99_us'], us)}"])
        w(md_table(["server", "shape", "msgs/s before → after (÷)", "server CPU per message before → after (÷)",
                    "p99 before → after"], rows))
        w("")

    def echo_tables(self, w):
        w("## Echo: every server\n")
        w("Messages/s with its ratio to the raw TCP ceiling (raw_echo + raw_load, same shape) and to go_dual; "
          "latency is the round trip at the load tool. Server time per message is split into user (utime) and "
          "kernel (stime) time; syscalls per message from `perf stat` on the server. Load CPU is the load "
          "tool's own: a run where it reached 95 % of its core, or where the tool reported itself saturated, "
          "is marked, since the load, not the server, set its msgs/s (judge such a server by its CPU per "
          "message). Core 0 / 1 busy: everything on the server's and the load's core; far above server / load "
          "CPU means other work competed.\n")
        for key, size, conns, inflight in SHAPES:
            names = [n for n in self.r["echo"] if key in self.r["echo"][n]]
            if not names:
                continue
            w(f"### {size if size < 1024 else str(size // 1024) + ' KiB'}{' B' if size < 1024 else ''} × {conns} "
              f"connection{'s' if conns > 1 else ''}, {inflight} in flight\n")
            raw, dual = self.s("raw_echo", key, "msgs_per_s"), self.s("go_dual", key, "msgs_per_s")
            rawc = self.s("raw_echo", key, "server_cpu_us_per_msg")
            rows = []
            for n in names:
                s = self.r["echo"][n][key]["summary"]
                errs = s.get("errors_in") or []
                note = (f"{len(errs)} failed run(s)" if errs else "") + (
                    f" {s['errors']['median']:.0f} load errors" if s.get("errors") and s["errors"]["median"] else "") + (
                    f" load saturated in {s['load_saturated_runs']} run(s)" if s.get("load_saturated_runs") else "")
                c0, c1 = s.get("core_server_busy_pct"), s.get("core_load_busy_pct")
                cores = f"{c0['median']:.0f} / {c1['median']:.0f} %" if c0 and c1 else "-"
                u, k = s.get("server_user_us_per_msg"), s.get("server_kernel_us_per_msg")
                usf = (lambda v: f"{v:.2f}")
                rows.append([self.label(n), cell(s["msgs_per_s"]), self.nratio(s["msgs_per_s"], raw),
                             self.nratio(s["msgs_per_s"], dual), cell(s["p50_us"], us), cell(s["p99_us"], us),
                             cell(s["p99.9_us"], us), cell(s["server_cpu_pct"], lambda x: f"{x:.0f} %"),
                             cell(s.get("server_cpu_us_per_msg"), usf),
                             self.nratio(s.get("server_cpu_us_per_msg"), rawc),
                             f"{cell(u, usf)} / {cell(k, usf)}" if u and k else "-",
                             cell(s.get("syscalls_per_msg"), lambda v: f"{v:.3f}"),
                             cell(s["load_cpu_pct"], lambda x: f"{x:.0f} %"), cores, note.strip() or "-"])
            w(md_table(["server", "msgs/s", "÷ raw", "÷ dual", "p50", "p99", "p99.9", "server CPU",
                        "server µs per msg", "÷ raw", "user / kernel µs per msg", "syscalls per msg",
                        "load CPU", "core 0 / 1 busy", "notes"], rows))
            w("")

    def mix_table(self, w):
        mix = self.r.get("mix")
        if not mix:
            return
        w("## The seed's recommendations, tested\n")
        w("The seed recommends dual goroutines below 10K links, v4 from 10K to 100K and v5 above 100K. Here each "
          "design holds N links of which 1 % echo 64 B at 10 messages/s each (ringlink-load rate mode) and the rest "
          "stay idle (`idle_links.py`). Per link: the server's RSS growth over N; per active message: the server's "
          "CPU (utime + stime) over the active window ÷ the messages echoed; p99 of the active links' round trips. "
          "The per-process descriptor limit here (20,000) caps N at 19,000: the seed's 100K boundary cannot be "
          "reached by one process on this machine.\n")
        sizes = sorted({int(n) for v in mix.values() for n in v})
        rows = []
        for name, by_n in mix.items():
            for n in sizes:
                r = by_n.get(str(n))
                if r is None:
                    continue
                if "error" in r:
                    rows.append([self.label(name), str(n), "-", "-", "-", "-", cell_text(r["error"], 90)])
                    continue
                rows.append([self.label(name), str(n),
                             "-" if r.get("rss_per_link_b") is None else f"{r['rss_per_link_b']:.0f} B",
                             "-" if r.get("cpu_us_per_msg") is None else f"{r['cpu_us_per_msg']:.1f} µs",
                             us(r.get("p99_us")), "-" if r.get("lost") is None else str(r["lost"]), "-"])
        w(md_table(["server", "links", "RSS per link", "server CPU per active message", "p99", "lost", "note"], rows))
        w("")
        seed = {1000: "go_dual", 10000: "go_v4", 19000: "go_v4"}
        for n in sizes:
            cands = {name: by_n[str(n)] for name, by_n in mix.items()
                     if str(n) in by_n and "error" not in by_n[str(n)] and by_n[str(n)].get("cpu_us_per_msg")}
            go = {k: v for k, v in cands.items() if k.startswith("go_")}
            if not go:
                continue
            best_cpu = min(go, key=lambda k: go[k]["cpu_us_per_msg"])
            best_mem = min(go, key=lambda k: go[k].get("rss_per_link_b") or float("inf"))
            rec = seed.get(n)
            holds = "holds" if rec in (best_cpu, best_mem) else "does not hold"
            line = (f"- **{n} links:** the seed recommends {rec}; of the Go designs {best_cpu} used the least CPU per "
                    f"active message ({go[best_cpu]['cpu_us_per_msg']:.1f} µs) and {best_mem} the least memory per link "
                    f"({go[best_mem]['rss_per_link_b']:.0f} B), so the recommendation {holds} here on "
                    f"{'CPU and memory' if rec == best_cpu == best_mem else 'CPU' if rec == best_cpu else 'memory' if rec == best_mem else 'either'}.")
            rl = cands.get("ringlink")
            if rl:
                line += (f" ringlink: {rl['cpu_us_per_msg']:.1f} µs per active message, "
                         f"{rl['rss_per_link_b']:.0f} B per link, p99 {us(rl.get('p99_us'))}.")
            w(line)
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
        usf = (lambda v: f"{v:.2f}")
        rows = []
        for k in keys:
            f0 = cfgs[first].get(k, {}).get("summary", {})
            for name, c in cfgs.items():
                s = c.get(k, {}).get("summary") if k in c else None
                if not s or not s.get("msgs_per_s"):
                    continue
                u, kk = s.get("server_user_us_per_msg"), s.get("server_kernel_us_per_msg")
                rows.append([k, name + (f" ({s['backend']})" if s.get("backend") else ""),
                             f"{cell(s['msgs_per_s'])} ({self.nratio(s['msgs_per_s'], f0.get('msgs_per_s'))})",
                             cell(s["p99_us"], us),
                             f"{cell(s.get('server_cpu_us_per_msg'), usf)} "
                             f"({self.nratio(s.get('server_cpu_us_per_msg'), f0.get('server_cpu_us_per_msg'))})",
                             f"{cell(u, usf)} / {cell(kk, usf)}" if u and kk else "-",
                             cell(s.get("syscalls_per_msg"), lambda v: f"{v:.3f}"),
                             f"{s['load_saturated_runs']} of {s['msgs_per_s']['n']}" if s.get("load_saturated_runs") else "-"])
        w(md_table(["shape", "config (backend it ran on)", "msgs/s (÷ first)", "p99", "server µs per msg (÷ first)",
                    "user / kernel µs per msg", "syscalls per msg", "load saturated"], rows))
        w("")

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


