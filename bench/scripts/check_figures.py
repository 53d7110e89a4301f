#!/usr/bin/python3
"""Every measured figure in the docs comes from committed data, or the check fails.

1. bench/RESULTS.md must be exactly what bench_report.py writes from bench/results.json
   (regenerated with --from-json into a temporary directory and compared), so no figure in it
   was typed.
2. In README.md, bench/README.md and docs/*.md, a line that states a measured figure (a rate,
   a time per message or round trip, bytes per link, a speed-up) must name its source:
   bench/RESULTS.md, bench/results.json or a path under bench/data/; and each such number on
   the line must be found in that source (equal at the precision shown; k and M scale).

usage: check_figures.py [--skip-regenerate]
Exit 0 when every figure is backed; otherwise prints each unbacked line and exits 1.
"""
import os
import re
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCS = ["README.md", "SECURITY.md", "bench/README.md"] + sorted(
    os.path.join("docs", f) for f in os.listdir(os.path.join(REPO, "docs")) if f.endswith(".md"))

# A number followed by the unit of a measurement (not of a setting, such as "64 KiB").
NUM = r"(\d[\d,]*(?:\.\d+)?)\s*([kKM])?"
FIGURE = re.compile(NUM + r"\s*(?:msgs/s|messages/s|msgs per|messages per|µs|us\b|ns per|B per (?:idle )?link"
                    r"|bytes per (?:idle )?link|B/link|GB/s|x (?:faster|slower|dual|raw)|× |syscalls per"
                    r"|s per 10 s|ms p(?:50|99)|B of server memory|KB per|B for ws)")
SOURCE = re.compile(r"bench/(?:RESULTS\.md|results\.json|data/[\w./-]+)")


def numbers_in(text):
    out = set()
    for m in re.finditer(r"\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?", text):
        try:
            out.add(float(m.group(0).replace(",", "")))
        except ValueError:
            pass
    return out


def source_numbers(ref, cache={}):
    if ref in cache:
        return cache[ref]
    path = os.path.join(REPO, ref.rstrip("./"))
    files = []
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            files += [os.path.join(root, n) for n in names]
    elif os.path.isfile(path):
        files = [path]
    nums = set()
    for f in files:
        try:
            with open(f, errors="replace") as fh:
                nums |= numbers_in(fh.read())
        except OSError:
            pass
    cache[ref] = nums if files else None
    return cache[ref]


def backed(value, suffix, decimals, nums):
    """A shown figure is backed when some number in the data rounds to it (k and M scaled)."""
    scale = {"k": 1e3, "K": 1e3, "M": 1e6}.get(suffix or "", 1.0)
    half = 0.5 * 10 ** -decimals
    for v in nums:
        for s in {scale, 1.0}:
            if abs(v / s - value) <= half + 1e-9:
                return True
    return False


def units(doc):
    """(first line number, text) of each unit a source may be named in: a paragraph, a list item or a
    table row; code blocks are left out."""
    out, cur, start, fence = [], [], 0, False
    with open(os.path.join(REPO, doc)) as f:
        for no, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fence = not fence
                line = ""
            if fence:
                continue
            stripped = line.strip()
            new_unit = not stripped or stripped.startswith("|") or re.match(r"([-*]|\d+\.) ", stripped)
            if new_unit and cur:
                out.append((start, " ".join(cur)))
                cur = []
            if stripped:
                if not cur:
                    start = no
                cur.append(stripped)
                if stripped.startswith("|"):
                    out.append((start, " ".join(cur)))
                    cur = []
    if cur:
        out.append((start, " ".join(cur)))
    return out


def check_docs():
    bad = []
    for doc in DOCS:
        for no, text in units(doc):
            figs = list(FIGURE.finditer(text))
            if not figs:
                continue
            refs = SOURCE.findall(text)
            if not refs:
                bad.append(f"{doc}:{no}: a measured figure with no source (bench/RESULTS.md, bench/data/...): "
                           f"{figs[0].group(0).strip()} in \"{text[:120]}...\"")
                continue
            nums = set()
            for r in refs:
                n = source_numbers(r)
                if n is None:
                    bad.append(f"{doc}:{no}: its source {r} does not exist")
                    nums = None
                    break
                nums |= n
            if nums is None:
                continue
            for m in figs:
                value = m.group(1).replace(",", "")
                decimals = len(value.split(".")[1]) if "." in value else 0
                if not backed(float(value), m.group(2), decimals, nums):
                    bad.append(f"{doc}:{no}: {m.group(0).strip()} is not in {', '.join(refs)}")
    return bad


def check_results():
    import json
    results = os.path.join(REPO, "bench", "results.json")
    committed = os.path.join(REPO, "bench", "RESULTS.md")
    with open(results) as f:
        data = json.load(f)
    argv = shlex.split(data["machine"]["command"])
    args = ["--from-json", results]
    for flag in ("--build", "--baseline"):
        if flag in argv:
            args += [flag, argv[argv.index(flag) + 1]]
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "scripts", "bench_report.py"), *args,
                            "--out", out], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            return [f"bench_report.py --from-json failed: {p.stdout[-500:]}"]
        with open(os.path.join(out, "REPORT.md")) as f:
            fresh = f.read()
    with open(committed) as f:
        old = f.read()
    if fresh == old:
        return []
    diff = subprocess.run(["diff", committed, "-"], input=fresh, stdout=subprocess.PIPE, text=True).stdout
    return ["bench/RESULTS.md differs from what bench/results.json generates (first lines of the diff):\n"
            + "\n".join(diff.splitlines()[:20])]


def main():
    bad = check_docs()
    if "--skip-regenerate" not in sys.argv:
        bad += check_results()
    for b in bad:
        print(b)
    print(f"check_figures: {len(bad)} unbacked figure(s) in {len(DOCS)} documents and bench/RESULTS.md")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
