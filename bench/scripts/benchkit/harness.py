"""Runs every measurement and collects results.json."""
import argparse
import datetime
import json
import os
import re
import resource
import shlex
import shutil
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
from .servers import Peer, Running, Sampler, ringlink_metrics
from .plots import Plots
from .report import Report
from . import scale


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
        for g in ("go_dual", "go_v2", "go_v3", "go_v4", "go_v5"):
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
        self.only = set(a.only.split(",")) if a.only else {"echo", "idle", "slow", "configs", "micro", "mix", "complexity"}
        self.baseline = None
        if a.baseline:
            with open(a.baseline) as f:
                self.baseline = json.load(f)
        self.perf = shutil.which("perf")
        self.halted = threading.Event()
        if not self.perf:
            self.skip("syscalls per message", "perf not installed (make deps-bench installs linux-perf)")

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
    def syscall_count(self, pid, delay, seconds, out):
        """Counts the server's system calls (kernel tracepoint raw_syscalls:sys_enter, every thread) over
        `seconds`, starting `delay` seconds from now; far lighter than strace, so the load keeps its shape."""
        if self.halted.wait(delay):
            return
        cmd = ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", str(pid), "--", "sleep", f"{seconds:g}"]
        record(cmd)
        t = time.monotonic()
        try:
            p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               timeout=seconds + 20)
        except (OSError, subprocess.TimeoutExpired):
            return
        m = re.search(r"^(\d+),", p.stderr, re.M)
        if m:
            out["syscalls"], out["window_s"] = int(m.group(1)), time.monotonic() - t

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
        counted = {}
        counter = None
        if self.perf:
            ramp_guess = conns / ramp_rate if ramp_rate else 0.3
            self.halted.clear()
            counter = threading.Thread(target=self.syscall_count, daemon=True,
                                       args=(srv.pid, ramp_guess + warmup + 0.5, self.duration - 1.0, counted))
        try:
            lp = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            sampler.load_pid = lp.pid
            if counter:
                counter.start()
            try:
                load_out, _ = lp.communicate(timeout=timeout)
                load_rc = lp.returncode
            except subprocess.TimeoutExpired:
                lp.kill()
                lp.communicate()
                load_rc, load_out = -1, "timeout"
        finally:
            self.halted.set()
            if counter and counter.is_alive():
                counter.join()
        sampler.halt.set()
        sampler.join()
        hwm = status_kib(srv.pid, "VmHWM")
        srv_log = srv.stop()
        backend = re.search(r" on (epoll|io_uring)", srv_log) if peer.kind == "ringlink" else None
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
        mps = thr.get("msgs_per_s")
        cpu = sampler.cpu(start, end)
        lcpu = sampler.cpu(start, end, index=5)

        def per_msg_us(c, part):
            # CPU seconds over the window per message echoed in it, in microseconds.
            return 1e6 * c[part] / (mps * c["window_s"]) if (c and mps) else None

        # Fewer than 20 clock ticks of server CPU make the ratio noise.
        enough = bool(cpu and mps and cpu["s"] >= 20.0 / TCK)
        load_pct = lcpu["pct"] if lcpu else None
        run = {
            "msgs_per_s": mps,
            "p50_us": lat.get("p50_us"), "p99_us": lat.get("p99_us"),
            "p99.9_us": lat.get("p99.9_us"), "p99.99_us": lat.get("p99.99_us"),
            "server_cpu_pct": cpu["pct"] if cpu else None,
            "per_core_s": (mps / (cpu["pct"] / 100.0)) if enough else None,
            # Under 20 ticks the ratio is rough, but a design that uses almost no CPU still gets a figure.
            "per_core_s_rough": (mps / (cpu["pct"] / 100.0)) if (cpu and mps and cpu["s"] > 0 and not enough) else None,
            "server_cpu_us_per_msg": per_msg_us(cpu, "s") if enough else None,
            "server_user_us_per_msg": per_msg_us(cpu, "user_s") if enough else None,
            "server_kernel_us_per_msg": per_msg_us(cpu, "sys_s") if enough else None,
            "load_cpu_pct": load_pct,
            "load_user_us_per_msg": per_msg_us(lcpu, "user_s"),
            "load_kernel_us_per_msg": per_msg_us(lcpu, "sys_s"),
            # The load core, not the server, limited the run: the tool says so, or its process used
            # (nearly) all of its core.
            "load_saturated": bool(j.get("self_saturated")) or (load_pct is not None and load_pct >= 95.0),
            "syscalls_per_msg": (counted["syscalls"] / (mps * counted["window_s"])
                                 if counted.get("syscalls") is not None and mps else None),
            "core_server_busy_pct": sampler.core_busy(start, end, int(SERVER_CORE)),
            "core_load_busy_pct": sampler.core_busy(start, end, int(LOAD_CORE)),
            "errors": j.get("errors"), "load_exit": load_rc,
            "conns_opened": (j.get("connections") or {}).get("opened"),
            "rss_kib": sampler.max_of(2), "hwm_kib": hwm,
            "threads": sampler.max_of(3),
            "distribution": lat.get("distribution"),
        }
        if backend:
            run["backend"] = backend.group(1)
        if sampler.stats:
            run["goroutines"] = max(s.get("goroutines", 0) for _, s in sampler.stats)
        if j.get("errors"):
            log(f"  {peer.name} {key}: {j.get('errors')} load errors")
        return run

    SUMMARY_KEYS = ("msgs_per_s", "p50_us", "p99_us", "p99.9_us", "p99.99_us", "server_cpu_pct", "per_core_s",
                    "per_core_s_rough",
                    "server_cpu_us_per_msg", "server_user_us_per_msg", "server_kernel_us_per_msg",
                    "load_cpu_pct", "load_user_us_per_msg", "load_kernel_us_per_msg", "syscalls_per_msg",
                    "errors", "rss_kib", "threads", "goroutines", "core_server_busy_pct", "core_load_busy_pct")

    def one_echo(self, peer, shape, i):
        try:
            r = self.echo_run(peer, shape)
        except RuntimeError as e:
            r = {"error": str(e)}
        if "error" in r:
            log(f"  {peer.label} {shape[0]} run {i + 1}: {r['error']}")
        else:
            log(f"  {peer.label} {shape[0]} run {i + 1}: {si(r['msgs_per_s'])} msgs/s, p99 {us(r['p99_us'])}, "
                f"server cpu {r['server_cpu_pct'] or 0:.0f}%"
                + (f", {r['syscalls_per_msg']:.3f} syscalls/msg" if r.get("syscalls_per_msg") is not None else ""))
        return r

    def summarize(self, runs):
        ok = [r for r in runs if "error" not in r and r.get("msgs_per_s")]
        summary = {k: median_range([r.get(k) for r in ok]) for k in self.SUMMARY_KEYS}
        summary["load_saturated_runs"] = sum(1 for r in ok if r.get("load_saturated"))
        backends = {r["backend"] for r in ok if r.get("backend")}
        if backends:
            summary["backend"] = "/".join(sorted(backends))
        if ok:   # the run whose throughput is the median: its latency distribution for the plot
            mid = sorted(ok, key=lambda r: r["msgs_per_s"])[(len(ok) - 1) // 2]
            summary["distribution"] = mid.get("distribution")
        for r in runs:
            r.pop("distribution", None)
        summary["errors_in"] = [r["error"] for r in runs if "error" in r]
        return {"runs": runs, "summary": summary}

    def shapes(self, keys=None):
        keys = keys or ([s[0] for s in SHAPES] if not self.quick else QUICK_SHAPES)
        if self.a.shapes:
            keys = [k for k in keys if k in self.a.shapes.split(",")]
        out = []
        for s in SHAPES:
            if s[0] not in keys:
                continue
            if s[2] + 100 > self.fd_limit:
                self.skip(f"shape {s[0]}", f"open-file limit {self.fd_limit}")
                continue
            out.append(s)
        return out

    def config_peers(self):
        """The --config builds, each a ringlink server of its own; one whose build is --build is the same
        binary as the ringlink row, so it is not measured twice."""
        out = []
        for name, path in self.a.config:
            if os.path.realpath(path) == os.path.realpath(self.build):
                continue
            peer = Peer(f"config:{name}", os.path.join(os.path.abspath(path), "tools", "ringlink-echo"), "ringlink",
                        f"config {name}")
            if not peer.exists():
                self.skip(f"config {name}", f"no binary at {os.path.relpath(peer.path, REPO)}")
                continue
            out.append((name, path, peer))
        return out

    def section_echo(self, with_configs):
        """Every server of a shape runs once per round, and the rounds repeat: each figure's runs are
        alternated with its references' (raw, dual, the other builds), so a slow minute of the machine
        lands on all of them instead of on one server's figure."""
        log("echo: every server, alternated")
        peers = [p for p in self.peers if self.available(p)]
        if "echo" not in self.only:   # configurations only: with their references
            peers = [p for p in peers if p.name in ("ringlink", "raw_echo")]
        configs = self.config_peers() if with_configs else []
        config_keys = QUICK_CONFIG_SHAPES if self.quick else CONFIG_SHAPES
        for shape in self.shapes():
            servers = [p for p in peers if p.name in SHAPE_SERVERS.get(shape[0], (p.name,))]
            servers += [c[2] for c in configs if shape[0] in config_keys]
            runs = {p.name: [] for p in servers}
            for i in range(self.runs):
                for p in servers:
                    runs[p.name].append(self.one_echo(p, shape, i))
            for p in servers:
                summary = self.summarize(runs[p.name])
                if p.name.startswith("config:"):
                    name = p.name.split(":", 1)[1]
                    entry = self.results["configs"].setdefault(name, {"build": dict((n, b) for n, b, _ in configs)[name]})
                    entry[shape[0]] = summary
                else:
                    self.results["echo"].setdefault(p.name, {})[shape[0]] = summary

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

    def idle_attempt(self, peer, n, hold):
        try:
            r = self.idle_run(peer, n, hold, SOURCES)
        except RuntimeError as e:
            r = {"error": str(e)}
        if "error" in r:
            log(f"  {peer.label} idle {n}: {r['error']}")
        else:
            log(f"  {peer.label} idle {n}: {r['bytes_per_link']:.0f} B/link"
                + (f", idle cpu {r['idle_cpu_s']:.4f} s over {r['hold_s']} s" if "idle_cpu_s" in r else ""))
        return r

    def section_idle(self):
        log("idle links: memory and CPU")
        hold = 3 if self.quick else 10
        # The epoll build too: idle memory is judged on both backends.
        epoll = [c[2] for c in self.config_peers() if "epoll" in c[0]] if "configs" in self.only else []
        for peer in self.peers + epoll:
            if not self.available(peer) or peer.kind == "raw":
                continue
            if self.quick and peer.kind == "cpp":   # quick: the seed's designs and ringlink only (< 5 min)
                continue
            sizes = [10000, 19000] if peer in self.peers else [10000]
            if self.quick:
                # Polling designs accept 10,000 links slowly (minutes): quick runs give the
                # targets' servers 10,000 and the others fewer.
                sizes = [10000] if peer.name in ("ringlink", "go_dual", "go_v4") or peer in epoll else [3000]
            res = {}
            for n in sizes:
                if n + 200 > self.fd_limit:
                    self.skip(f"idle {n}", f"open-file limit {self.fd_limit}")
                    continue
                r = self.idle_attempt(peer, n, hold if n == min(sizes) else 0)
                res[str(n)] = r
                if "error" in r:
                    # A design that cannot hold n links gets its figure at the largest count it holds.
                    for smaller in (3000, 1000):
                        if smaller < n and str(smaller) not in res:
                            r = self.idle_attempt(peer, smaller, hold)
                            res[str(smaller)] = r
                            if "error" not in r:
                                break
                    break
            self.results["idle"][peer.name] = res

    # ---- the seed's recommendations: many links, 1 % active
    MIX_SERVERS = ("go_dual", "go_v4", "go_v5", "ringlink")

    def mix_run(self, peer, links, seconds):
        """`links` open links of which 1 % echo at 10 messages/s each and the rest stay idle: the server's
        RSS growth per link, its CPU per active message and the active links' p99."""
        active = max(1, links // 100)
        idle = links - active
        srv = Running(peer)
        rss0 = status_kib(srv.pid, "VmRSS")
        hold = seconds + 8
        icmd = ["taskset", "-c", LOAD_CORE, sys.executable, IDLE_LINKS, "--port", str(srv.port), "--pid",
                str(srv.pid), "--links", str(idle), "--hold", str(hold), "--settle", "0.5", "--source-ips", SOURCES]
        record(icmd)
        ip = subprocess.Popen(icmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 150
            while True:   # every idle link open: the server holds that many descriptors
                try:
                    if len(os.listdir(f"/proc/{srv.pid}/fd")) >= idle:
                        break
                except OSError:
                    raise RuntimeError("the server exited")
                if ip.poll() is not None:
                    raise RuntimeError("idle links: " + cell_text(ip.stderr.read() or "exited", 100))
                if time.time() > deadline:
                    raise RuntimeError(f"did not accept {idle} idle links in 150 s")
                time.sleep(0.2)
            js = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
            lcmd = ["taskset", "-c", LOAD_CORE, self.load, f"ws://127.0.0.1:{srv.port}/", "--mode", "rate",
                    "--rate", str(active * 10), "--conns", str(active), "--size", "64", "--duration",
                    f"{seconds}s", "--grace", "5s", "--max-errors", "1000000000", "--json", js]
            record(lcmd)
            sampler = Sampler(srv)
            sampler.start()
            t0 = time.monotonic()
            subprocess.run(lcmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 60)
            t1 = time.monotonic()
            sampler.halt.set()
            sampler.join()
            try:
                with open(js) as f:
                    j = json.load(f)
            except (OSError, ValueError):
                j = {}
            os.unlink(js)
            thr = j.get("throughput") or {}
            sent, got = thr.get("total_sent"), thr.get("total_received")
            cpu = sampler.cpu(t0, t1)
            rss = sampler.max_of(2)
            return {"links": links, "active": active, "sent": sent, "echoed": got,
                    "lost": (sent - got) if sent is not None and got is not None else None,
                    "rss_start_kib": rss0, "rss_kib": rss,
                    "rss_per_link_b": (rss - rss0) * 1024.0 / links if rss and rss0 else None,
                    "cpu_us_per_msg": 1e6 * cpu["s"] / got if cpu and got else None,
                    "cpu_pct": cpu["pct"] if cpu else None,
                    "p50_us": (j.get("latency") or {}).get("p50_us"), "p99_us": (j.get("latency") or {}).get("p99_us")}
        finally:
            if ip.poll() is None:
                ip.kill()
            ip.communicate()
            srv.stop()

    def section_mix(self):
        log("the seed's recommendations: 1 % of the links active")
        sizes = [10000] if self.quick else [1000, 10000, 19000]
        seconds = 3 if self.quick else 10
        for peer in self.peers:
            if peer.name not in self.MIX_SERVERS or not self.available(peer):
                continue
            res = {}
            for n in sizes:
                if n + 300 > self.fd_limit:
                    self.skip(f"mix {n}", f"open-file limit {self.fd_limit}")
                    continue
                try:
                    r = self.mix_run(peer, n, seconds)
                    log(f"  {peer.name} {n} links: {r['rss_per_link_b'] or 0:.0f} B/link, "
                        f"{r['cpu_us_per_msg'] or 0:.1f} µs per active msg, p99 {us(r['p99_us'])}, lost {r['lost']}")
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    r = {"error": str(e)}
                    log(f"  {peer.name} {n} links: {e}")
                res[str(n)] = r
                if "error" in r:   # a design that cannot hold n links cannot hold more
                    break
            self.results.setdefault("mix", {})[peer.name] = res

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
        # The epoll build too: the seed's table has a ringlink row per backend.
        epoll = [c[2] for c in self.config_peers() if "epoll" in c[0]] if "configs" in self.only else []
        for peer in self.peers + epoll:
            if not self.available(peer):
                continue
            if peer.kind not in ("ringlink", "go"):
                self.skip(f"slow consumer, {peer.label}", "no slow business mode")
                continue
            variants = (["all"] if (peer.kind != "ringlink" or self.quick or peer not in self.peers)
                        else ["all", "slow_path"])
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

    # ---- complexity
    def section_complexity(self):
        """Lines and cyclomatic complexity of the code that runs a link, per design (complexity.py)."""
        out = os.path.join(self.out, "complexity.json")
        cmd = [sys.executable, os.path.join(REPO, "bench", "scripts", "complexity.py"), self.build, "--json", out]
        record(cmd)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        try:
            with open(out) as f:
                self.results["complexity"] = json.load(f)
        except (OSError, ValueError):
            self.skip("complexity", f"complexity.py failed (exit {p.returncode}): {cell_text(p.stdout, 120)}")

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
        cfg = {}
        try:   # the build's compile-time settings, kept so the report never reads the build dir again
            with open(os.path.join(self.build, "ringlink_config.hpp")) as f:
                cfg = {k: int(v) for k, v in re.findall(r"(\w+)\s*=\s*(\d+)", f.read())}
        except OSError:
            pass
        return {"cpu": model.group(1).strip() if model else "?", "cores": os.cpu_count(), "ringlink_config": cfg,
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
        if self.a.scale:   # kept in results.json, so --from-json needs no other file
            with open(self.a.scale) as f:
                self.results["scale"] = {"source": os.path.relpath(self.a.scale, REPO), "figures": scale.parse(f.read())}
        only = self.only
        if not os.access(self.load, os.X_OK):
            self.skip("every WebSocket load", f"no ringlink-load at {self.load}")
        if "micro" in only:
            self.section_micro()
        if "complexity" in only:
            self.section_complexity()
        if "echo" in only or "configs" in only:
            self.section_echo(with_configs="configs" in only)
        if "idle" in only:
            self.section_idle()
        if "slow" in only:
            self.section_slow()
        if "mix" in only:
            self.section_mix()
        self.results["elapsed_s"] = time.monotonic() - t0
        self.results["machine"]["loadavg_end"] = loadavg()
        self.results["skipped"] = self.skipped
        self.results["commands"] = COMMANDS
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)
        plots = Plots(self.results, self.peers, self.out).make()
        Report(self, plots).write()
        log(f"done in {self.results['elapsed_s']:.0f} s: {os.path.join(self.out, 'REPORT.md')}")


