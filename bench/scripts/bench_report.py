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
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchkit.common import REPO  # noqa: E402
from benchkit.harness import Harness  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="ringlink release build dir (the headline configuration)")
    ap.add_argument("--config", action="append", default=[], metavar="NAME=BUILD",
                    help="another ringlink build for the configuration table (repeatable)")
    ap.add_argument("--peers", help="directory of the peer binaries (default BUILD/bench/peers)")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"))
    ap.add_argument("--quick", action="store_true", help="one short run per figure, fewer shapes (< 5 min)")
    ap.add_argument("--runs", type=int, default=3, help="runs per figure in a full run (at least 3)")
    ap.add_argument("--only", help="comma list of sections: echo,idle,slow,configs,micro,mix,complexity")
    ap.add_argument("--servers", help="comma list: only these servers (ringlink, go_dual, ..., raw_echo)")
    ap.add_argument("--shapes", help="comma list: only these echo shapes (64B_x1, 64B_x100, 64B_x1000, ...)")
    ap.add_argument("--baseline", metavar="RESULTS",
                    help="an earlier results.json: the report adds before/after tables against it")
    ap.add_argument("--scale", metavar="SCALE_TXT",
                    help="the committed output of make bench-scale (bench/data/scale/scale.txt): the report adds its "
                         "table and the extrapolation to 1,000,000 links")
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

