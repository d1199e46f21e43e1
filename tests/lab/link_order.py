#!/usr/bin/env python3
"""The functions of our binary that a profiled run executed, hottest first: lld's
--symbol-ordering-file for release builds (daemon/build.rs, docs/decisions.md).

    link_order.py BINARY CALLGRIND_OUT... > daemon/link/symbol-order.txt

Reads callgrind files written with --compress-strings=no --demangle=no --dump-instr=no, keeps
the functions whose object is BINARY (by file name) and that are symbols of it, and orders them
by their own cost summed over the files, so what runs most shares pages.
"""
import os
import subprocess
import sys


def main():
    binary, outputs = sys.argv[1], sys.argv[2:]
    name = os.path.basename(binary)
    symbols = set(
        line.split()[-1]
        for line in subprocess.run(
            ["nm", "--defined-only", binary], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if len(line.split()) == 3 and line.split()[1] in "tTwW"
    )
    cost = {}
    for path in outputs:
        obj = fn = None
        after_calls = False
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("ob="):
                    obj = line[3:].strip()
                elif line.startswith("fn="):
                    fn = line[3:].strip() if obj and os.path.basename(obj) == name else None
                    if fn:
                        cost.setdefault(fn, 0)
                elif line.startswith("calls="):
                    after_calls = True
                elif line[:1].isdigit() or line[:1] in "+-*":
                    if after_calls:
                        after_calls = False  # the inclusive cost of a call, not the function's own
                    elif fn:
                        parts = line.split()
                        if len(parts) >= 2 and parts[1].isdigit():
                            cost[fn] += int(parts[1])
    for fn, _ in sorted(cost.items(), key=lambda item: -item[1]):
        if fn in symbols:
            print(fn)


if __name__ == "__main__":
    main()
