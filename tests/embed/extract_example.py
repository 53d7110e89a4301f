#!/usr/bin/python3
"""Writes the program in engine/ringlink.hpp's opening comment to a .cpp file,
so the build proves that the documented minimal server compiles. With a
markdown file, also checks that its ```cpp block with main() is the same program
(docs/embedding.md shows it too).

    extract_example.py ringlink.hpp out.cpp [embedding.md]
"""
import sys

src, out = sys.argv[1], sys.argv[2]
lines = open(src, encoding="utf-8").read().splitlines()
start = next(i for i, l in enumerate(lines) if l.startswith("//   #include"))
code = []
for line in lines[start:]:
    if not line.startswith("//"):
        break
    if line.startswith("// (examples/"):
        break
    body = line[2:]
    code.append(body[3:] if body.startswith("   ") else body.strip())
if not any("int main()" in l for l in code):
    sys.exit("no main() in the opening comment of " + src)
if len(sys.argv) > 3:
    doc = open(sys.argv[3], encoding="utf-8").read()
    blocks = [b.split("```", 1)[0] for b in doc.split("```cpp\n")[1:]]
    block = next((b for b in blocks if "int main()" in b), "")
    if block.strip().splitlines() != "\n".join(code).strip().splitlines():
        sys.exit(f"the cpp block with main() in {sys.argv[3]} differs from the program in {src}")
with open(out, "w", encoding="utf-8") as f:
    f.write("// Generated from the opening comment of engine/ringlink.hpp.\n")
    f.write("\n".join(code) + "\n")
