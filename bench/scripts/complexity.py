#!/usr/bin/env python3
"""Code complexity of each design's link code, measured: the seed's "code
complexity" column (low / medium / high) beside numbers.

For each design: lines of code (non-blank, non-comment lines) and McCabe
cyclomatic complexity, the total over its functions and its most complex
function.

  go_dual, go_v2, go_v3, go_v4, go_v5   bench/peers/go_*/main.go, each alone
  go_peer                               bench/peers/go_peer/peer.go, which every
                                        Go design imports: the frame reader of
                                        v2-v5 (dual reads with gorilla's) and the
                                        benchmark plumbing (flags, /stats, the slow
                                        business delay). Kept apart so each row is
                                        the design's own code; "+ go_peer" columns
                                        add it whole to every Go design.
  ringlink                              engine/ + protocol/ (*.cpp, *.hpp), also
                                        given as ringlink_engine and
                                        ringlink_protocol. All of it, TLS, deflate,
                                        brokers and metrics included: it is what a
                                        deployment runs.

gorilla/websocket (the Go designs' handshake, and dual's reader and writer)
is a library and not counted, as ringlink's dependencies are not.

Tools. The issue asked for lizard (PyPI); PyPI cannot be reached from these
machines and Debian 12 does not package lizard, so:
  - C++: pmccabe (Debian package pmccabe), its "traditional" McCabe column:
    1 + each if, for, while, case, &&, || and ?: in a function. pmccabe predates
    C++11; its parser loses its place on noexcept, [[attributes]], override,
    final, alignas(...), requires-clauses, concept definitions and digit
    separators (65'536), so
    those are blanked out first (same line count, nothing that branches is
    touched). Whatever pmccabe still reports on stderr is kept in the JSON
    ("warnings").
  - Go: bench/peers/gocyclo (standard library go/ast; built by
    build_peers.sh), counting the same way: 1 + each if, for, case (switch,
    type switch, select; default not counted), && and ||. See its header.
Both count a lambda / function literal inside its enclosing function.

usage: bench/scripts/complexity.py BUILD_DIR [--json PATH]
  Builds gocyclo (bench/scripts/build_peers.sh BUILD_DIR, a no-op when up to
  date), prints a text table, writes JSON (default BUILD_DIR/bench/complexity.json):
  {design: {loc, ccn_total, ccn_max, ccn_max_function, functions, files, ...}}
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GO_DESIGNS = ["go_dual", "go_v2", "go_v3", "go_v4", "go_v5"]


def die(msg):
    print(f"complexity.py: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- C++ (pmccabe)

def blank(m):
    """The match replaced by as many spaces: columns and lines stay where they were."""
    return re.sub(r"[^\n]", " ", m.group(0))


def sanitize_cpp(text):
    """Blanks out the C++11-20 syntax pmccabe cannot parse; nothing that branches."""
    text = re.sub(r"(?<=[0-9a-fA-F])'(?=[0-9a-fA-F])", " ", text)      # 65'536
    text = re.sub(r"\bnoexcept\s*\([^()]*(\([^()]*\)[^()]*)*\)", blank, text)
    text = re.sub(r"\bnoexcept\b", blank, text)
    text = re.sub(r"\[\[[^\[\]]*\]\]", blank, text)                   # [[nodiscard]]
    text = re.sub(r"\b(override|final)\b", blank, text)
    text = re.sub(r"\balignas\s*\([^()]*\)", blank, text)
    # A concept's definition is no function (pmccabe takes its requires-
    # expression for one): blanked up to its ";".
    for m in re.finditer(r"\bconcept\s+\w+\s*=", text):
        end, depth = m.end(), 0
        while end < len(text) and not (text[end] == ";" and depth == 0):
            depth += {"{": 1, "(": 1, "}": -1, ")": -1}.get(text[end], 0)
            end += 1
        text = text[:m.start()] + re.sub(r"[^\n]", " ", text[m.start():end + 1]) + text[end + 1:]
    # A requires-clause: from "requires" to the end of its balanced
    # parentheses or, without any, to the end of the line.
    out, i = [], 0
    for m in re.finditer(r"^\s*requires\b", text, re.M):
        if m.start() < i:
            continue
        j, depth = m.end(), 0
        while j < len(text):
            c = text[j]
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c in "{;" and depth == 0:
                break
            elif c == "\n" and depth == 0 and text[m.end():j].strip():
                # the clause ended on this line unless the next one goes on with && or ||
                if not re.match(r"\s*(&&|\|\|)", text[j + 1:]):
                    break
            j += 1
        out.append(text[i:m.start()])
        out.append(re.sub(r"[^\n]", " ", text[m.start():j]))
        i = j
    out.append(text[i:])
    return "".join(out)


def measure_cpp(files):
    functions, warnings, loc = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            with open(os.path.join(REPO, path), encoding="utf-8") as f:
                clean = sanitize_cpp(f.read())
            tmp_path = os.path.join(tmp, os.path.basename(path))
            with open(tmp_path, "w", encoding="utf-8") as f:
                f.write(clean)
            r = subprocess.run(["pmccabe", tmp_path], capture_output=True, text=True, check=False)
            warnings += [w.replace(tmp_path, path) for w in r.stderr.splitlines() if w.strip()]
            for line in r.stdout.splitlines():
                # modified, traditional, statements, first line, lines, "file(line): name"
                cols = line.split("\t")
                if len(cols) < 6:
                    continue
                where, _, name = cols[5].partition(": ")
                lineno = re.search(r"\((\d+)\)$", where)
                functions.append({"file": path, "line": int(lineno.group(1)) if lineno else int(cols[3]),
                                  "name": name.strip(), "ccn": int(cols[1])})
            d = subprocess.run(["pmccabe", "-d", tmp_path], capture_output=True, text=True, check=False)
            loc += sum(1 for l in d.stdout.splitlines() if l.strip())
    return {"files": len(files), "loc": loc, "functions": functions, "warnings": warnings}


def cpp_files(*dirs):
    out = []
    for d in dirs:
        for name in sorted(os.listdir(os.path.join(REPO, d))):
            if name.endswith((".cpp", ".hpp")):
                out.append(f"{d}/{name}")
    return out


# ---------------------------------------------------------------- Go (gocyclo)

def measure_go(gocyclo, files):
    r = subprocess.run([gocyclo] + files, capture_output=True, text=True, cwd=REPO, check=False)
    if r.returncode != 0:
        die(f"gocyclo failed: {r.stderr.strip()}")
    d = json.loads(r.stdout)
    return {"files": len(files), "loc": sum(f["loc"] for f in d["files"]), "functions": d["functions"],
            "warnings": []}


# ---------------------------------------------------------------- both

def summary(m, tool):
    fs = m["functions"]
    top = max(fs, key=lambda f: f["ccn"], default=None)
    return {"loc": m["loc"], "ccn_total": sum(f["ccn"] for f in fs), "ccn_max": top["ccn"] if top else 0,
            "ccn_max_function": f"{top['name']} ({top['file']}:{top['line']})" if top else None,
            "functions": len(fs), "files": m["files"], "tool": tool, "warnings": m["warnings"]}


def table(results):
    rows = [("design", "LOC", "CCN total", "+ go_peer LOC", "+ go_peer CCN", "CCN max", "most complex function")]
    for name, r in results.items():
        shared = r.get("with_go_peer")
        rows.append((name, str(r["loc"]), str(r["ccn_total"]),
                     str(shared["loc"]) if shared else "", str(shared["ccn_total"]) if shared else "",
                     str(r["ccn_max"]), r["ccn_max_function"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i in (0, 6) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build_dir")
    ap.add_argument("--json", help="where to write the JSON (default BUILD_DIR/bench/complexity.json)")
    args = ap.parse_args()
    if shutil.which("pmccabe") is None:
        die("pmccabe not found: install the Debian package pmccabe (make deps-bench)")
    subprocess.run(["bash", os.path.join(REPO, "bench/scripts/build_peers.sh"), args.build_dir],
                   stdout=subprocess.DEVNULL, check=True)
    gocyclo = os.path.join(os.path.abspath(args.build_dir), "bench/peers/gocyclo")

    results = {}
    shared = summary(measure_go(gocyclo, ["bench/peers/go_peer/peer.go"]), "gocyclo")
    for design in GO_DESIGNS:
        r = summary(measure_go(gocyclo, [f"bench/peers/{design}/main.go"]), "gocyclo")
        r["with_go_peer"] = {"loc": r["loc"] + shared["loc"], "ccn_total": r["ccn_total"] + shared["ccn_total"]}
        results[design] = r
    results["go_peer"] = shared
    engine = measure_cpp(cpp_files("engine"))
    protocol = measure_cpp(cpp_files("protocol"))
    both = {"files": engine["files"] + protocol["files"], "loc": engine["loc"] + protocol["loc"],
            "functions": engine["functions"] + protocol["functions"],
            "warnings": engine["warnings"] + protocol["warnings"]}
    results["ringlink"] = summary(both, "pmccabe")
    results["ringlink_engine"] = summary(engine, "pmccabe")
    results["ringlink_protocol"] = summary(protocol, "pmccabe")

    out = args.json or os.path.join(args.build_dir, "bench", "complexity.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(table(results))
    warned = sum(len(r["warnings"]) for k, r in results.items() if k == "ringlink")
    if warned:
        print(f"\npmccabe warnings: {warned} (in {out})")
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
