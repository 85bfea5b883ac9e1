#!/usr/bin/env python3
"""Checks that the C sources of a tree include only downward.

usage: check_includes.py ROOT ORDER_FILE

ORDER_FILE holds, on a line that starts with "Include order:", the order of the
folders, lowest first, as in docs/ARCHITECTURE.md:

    Include order: core < formats, report < model < ... < convert, verify < main.c

Folders separated by "," stand at the same height: they may not include each
other. A file may include from its own folder and from folders further left. Only
quoted includes are followed (angle brackets are system headers); tests/ and
bench/ stand above everything and are not checked. Every violation is printed on
one line naming the file and the include; the exit status is 1 when there is
any, 2 when the order cannot be read.
"""
import os
import re
import sys

EXEMPT = {"tests", "bench", "build", "build-san", ".git"}


def refuse(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def read_order(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip().strip("`")
            if line.startswith("Include order:"):
                spec = line[len("Include order:"):].strip().strip("`").rstrip(".")
                height = {}
                for level, group in enumerate(spec.split("<")):
                    for name in group.split(","):
                        name = name.strip().rstrip("/")
                        if not name or name in height:
                            refuse(f"{path}: include order: folder '{name}' is empty or named twice")
                        height[name] = level
                return height
    refuse(f"{path}: no line starting with 'Include order:'")


def unit_of(rel):
    """The folder a file belongs to, or the file itself when it sits at the top."""
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else rel


def sources(root):
    for top, dirs, files in os.walk(root):
        rel_top = os.path.relpath(top, root)
        if rel_top == ".":
            dirs[:] = sorted(d for d in dirs if d not in EXEMPT and not d.startswith("."))
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".c", ".h")):
                yield os.path.normpath(os.path.join(rel_top, name))


def main():
    if len(sys.argv) != 3:
        refuse(__doc__)
    root, order_file = sys.argv[1], sys.argv[2]
    height = read_order(order_file)
    problems = []
    edges = {}  # (from unit, to unit) -> first "file -> include" seen
    for rel in sources(root):
        unit = unit_of(rel)
        if unit not in height:
            problems.append(f"{rel}: folder '{unit}' is not in the include order of {order_file}")
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
            target = os.path.normpath(os.path.join(os.path.dirname(rel), inc))
            if target.startswith(".."):
                problems.append(f'{rel}: #include "{inc}" leaves the tree')
                continue
            to = unit_of(target)
            if to == unit:
                continue
            edges.setdefault((unit, to), f'{rel}: #include "{inc}"')
            if to not in height:
                problems.append(f'{rel}: #include "{inc}" reaches folder \'{to}\', which is not in the include order')
            elif height[to] >= height[unit]:
                where = "beside" if height[to] == height[unit] else "above"
                problems.append(f'{rel}: #include "{inc}" reaches up: {to}/ stands {where} {unit}/ in the include order')
    for (a, b), first in sorted(edges.items()):
        if a < b and (b, a) in edges:
            problems.append(f"folders {a}/ and {b}/ include each other: {first}; {edges[(b, a)]}")
    for p in problems:
        print(p)
    print(f"{len(problems)} include problems")
    sys.exit(1 if problems else 0)


main()
