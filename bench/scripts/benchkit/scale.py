"""The scale run (`make bench-scale`, bench/scripts/scale.sh) in the report: its figures and their
extrapolation to 1,000,000 links, with the limit that falls first.

scale.sh prints one line per figure, a keyword and key=value pairs; parse() turns its committed
output (bench/data/scale/scale.txt) into a dict that results.json keeps, so the report can be
regenerated from results.json alone. write() renders the section."""
import math
import re

MILLION = 1_000_000
# Linux's default: a load tool on this box spreads its links over these source addresses
# (127.0.0.1-8) unless told otherwise (ringlink-load --source-ips).
DEFAULT_SOURCES = 8
# scale.sh's share of a process's descriptor limit (it puts 15,000 links per process).
LINKS_PER_PROCESS = 15_000


def _num(v):
    v = v.rstrip(",/s")
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def parse(text):
    """{keyword: {key: value}} from scale.sh's output; server_process lines go to a list."""
    out = {"server_process": []}
    for line in text.splitlines():
        line = line.split(" (", 1)[0].strip()   # drop the explanations in parentheses
        if not line:
            continue
        pairs = dict((k, _num(v)) for k, v in re.findall(r"([A-Za-z_0-9]+)=(\S+)", line))
        head = line.split()[0]
        if "=" in head:               # a lone key=value line: its key names it
            key = head.split("=", 1)[0]
            out[key] = pairs
        elif head == "server_process":
            out["server_process"].append(pairs)
        elif head.endswith(":"):      # ringlink-echo's "closes: peer_close=..."
            out[head.rstrip(":")] = pairs
        else:
            out[head] = pairs
        if head == "idle" and "links" in pairs:   # "links=100000/100000"
            m = re.search(r"links=(\d+)/(\d+)", line)
            if m:
                pairs["links"], pairs["requested"] = int(m.group(1)), int(m.group(2))
    return out


def _mb(b):
    return f"{b / 2**20:,.0f} MiB" if b < 2**30 else f"{b / 2**30:,.1f} GiB"


def write(w, s, source):
    run, lim = s.get("run", {}), s.get("limits", {})
    idle, act = s.get("idle", {}), s.get("active", {})
    hs, cpu = s.get("handshake", {}), s.get("idle_cpu_per_10s", {})
    links = int(run.get("links", idle.get("requested", 0)) or 0)
    if not links:
        return
    scale = MILLION / links
    w(f"## {links:,} links on one box, and 1,000,000 on paper\n")
    w(f"`make bench-scale` (`bench/scripts/scale.sh`), its output committed as `{source}`: commit "
      f"{run.get('commit', '?')}, {run.get('date', '?')}, load average {run.get('loadavg', '?')} at the start. "
      f"{run.get('server_processes', '?')} `ringlink-echo` processes share the port (`--processes`, SO_REUSEPORT; "
      f"a process here holds at most {lim.get('fd_per_process', '?'):,} descriptors), `ringlink-load --processes "
      f"{run.get('load_processes', '?')}` opens the links at {run.get('rate', 0):,}/s asked, holds them "
      f"{run.get('hold_s', '?')} s idle with the server's keepalive ping every {run.get('ping_interval_ms', 0) / 1000:g} s, "
      f"then 1 % more links send 1 message/s for {run.get('active_s', '?')} s, then all close. Both ends run on this "
      "2-core box, so the kernel figures count both ends of every link.\n")
    user_b = s.get("server_rss_total_b_per_link", {}).get("server_rss_total_b_per_link")
    slab_b = s.get("kernel_slab_b_per_link", {}).get("kernel_slab_b_per_link", 0)
    tcp_b = s.get("kernel_tcp_mem_b_per_link", {}).get("kernel_tcp_mem_b_per_link", 0)
    kern_b = (slab_b or 0) + (tcp_b or 0)
    idle_s = (cpu.get("utime_s") or 0) + (cpu.get("stime_s") or 0)
    rate = idle.get("connect_rate_achieved") or 0
    per_proc = [p.get("growth_b_per_link") for p in s.get("server_process", []) if p.get("growth_b_per_link") is not None]
    rows = [
        ("links held to the end, lost",
         f"{idle.get('open_at_end', '?'):,} of {idle.get('requested', links):,}; errors {idle.get('errors', '?')}",
         "all, 0 lost", "-"),
        ("connects per second achieved", f"{rate:,.0f}/s (ramp {idle.get('ramp_s', 0):.2f} s)", ">= 20,000/s",
         f"{MILLION / rate:.0f} s to open them" if rate else "-"),
        ("handshake time, connect() to upgrade: p50 / p99",
         f"{hs.get('p50_us', 0) / 1000:.2f} / {hs.get('p99_us', 0) / 1000:.2f} ms" if hs else "not measured", "-", "-"),
        ("server user-space memory per idle link (RSS growth ÷ links)",
         f"{user_b} B" + (f" (per process {min(per_proc)}-{max(per_proc)} B)" if per_proc else ""),
         "<= 128 B", _mb(user_b * MILLION) if user_b is not None else "-"),
        ("kernel memory per link, both ends (slab + TCP buffer pages)", f"{kern_b:,} B ({slab_b:,} + {tcp_b:,})", "-",
         _mb(kern_b * MILLION)),
        ("server idle CPU per 10 s, keepalive included (user + kernel)",
         f"{idle_s:.2f} s ({cpu.get('utime_s', 0):.2f} + {cpu.get('stime_s', 0):.2f})", "< 0.5 s",
         f"{idle_s * scale:.1f} s per 10 s = {idle_s * scale / 10:.2f} cores"),
        (f"active phase ({act.get('links', '?')} links x 1 msg/s): p50 / p99, lost",
         f"{act.get('p50_us', 0) / 1000:.2f} / {act.get('p99_us', 0) / 1000:.2f} ms, lost {act.get('lost', '?')}",
         "0 lost", "-"),
    ]
    after = s.get("server_rss_after_close_kb", {})
    w("| figure | measured | target (issue 18) | extrapolated to 1,000,000 links |")
    w("|---|---|---|---|")
    for r in rows:
        w("| " + " | ".join(str(c) for c in r) + " |")
    w("")
    if after:
        a, b, h = (after.get(k, 0) for k in ("server_rss_after_close_kb", "before_links_kb", "held_kb"))
        w(f"Server RSS, all processes: {b:,} KiB before the links, {h:,} KiB while they were held, "
          f"{a:,} KiB 2 s after the last one closed.\n")
    storm = s.get("connect_storm", {})
    if storm:
        w(f"During the connect ramp the kernel dropped {storm.get('listen_overflows', 0):,} SYNs on full accept "
          f"queues and the clients sent {storm.get('syn_retransmits', 0):,} SYNs again (each a second late: "
          "what a handshake p99 near one second means).\n")
    lazy = sum(p.get("lazyfree_kb", 0) or 0 for p in s.get("server_process", []))
    if lazy:
        w(f"Of the servers' RSS while the links were held, {lazy:,} KiB was memory the allocator had already "
          "freed (MADV_FREE: counted until the kernel takes it back).\n")
    closes = s.get("closes", {})
    if closes:
        w("How the links ended, as the server counted them: "
          + ", ".join(f"{k} {v:,}" for k, v in closes.items()) + ".\n")
    # Which limit falls first on the way to 1,000,000, each from this box's own figures.
    fd = lim.get("fd_per_process", 0) or 0
    file_max, ports = lim.get("file_max", 0) or 0, lim.get("ephemeral_ports", 0) or 0
    mem_b = (lim.get("mem_total_kb", 0) or 0) * 1024
    limits = []
    if file_max:
        limits.append(("descriptors, system-wide (fs.file-max; one per link at each end on one box)",
                       file_max // 2, f"{math.ceil(MILLION / LINKS_PER_PROCESS)} server processes at "
                       f"{LINKS_PER_PROCESS:,} links each (per-process limit {fd:,})"))
    if ports:
        limits.append((f"ephemeral ports: {ports:,} per source address to one server port, "
                       f"{DEFAULT_SOURCES} sources (127.0.0.1-{DEFAULT_SOURCES}, ringlink-load's default)",
                       ports * DEFAULT_SOURCES,
                       f"{math.ceil(MILLION / ports)} source addresses (`--source-ips`)"))
    if mem_b and kern_b:
        limits.append(("kernel memory for sockets (all of RAM, both ends)", mem_b // kern_b,
                       f"{_mb(kern_b * MILLION)} of {_mb(mem_b)}"))
    if mem_b and user_b:
        limits.append(("server user-space memory (all of RAM)", mem_b // user_b, f"{_mb(user_b * MILLION)}"))
    if limits:
        limits.sort(key=lambda x: x[1])
        w("| limit on this box | links it allows | what 1,000,000 links need |")
        w("|---|---|---|")
        for name, cap, need in limits:
            w(f"| {name} | {cap:,} | {need} |")
        w("")
        first = limits[0]
        w(f"The first limit on the way to 1,000,000 links here is **{first[0]}**, at {first[1]:,} links"
          + (f"; {first[2]} lift it." if first[1] < MILLION else "; it is above 1,000,000 as well.")
          + " Every other figure scales linearly from the measured run (the table above): "
          "nothing in ringlink grows faster than the number of links.\n")
