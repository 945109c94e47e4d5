#!/usr/bin/env python3
"""Runs a command and prints its wall time and the peak of the summed RSS of it and all its
descendants (a JVM started by pyspark included), sampled every 20 ms from /proc.

Usage: peak_rss.py LABEL CMD [ARG...]   prints "LABEL <seconds> s <peak MB> MB" on stderr.
"""

import os
import subprocess
import sys
import time


def tree_rss_kb(root):
    children = {}
    rss = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ppid = int(fields[1])
            with open(f"/proc/{pid}/statm") as f:
                pages = int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
        rss[int(pid)] = pages * os.sysconf("SC_PAGE_SIZE") // 1024
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def main():
    label, cmd = sys.argv[1], sys.argv[2:]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss_kb(proc.pid))
        time.sleep(0.02)
    elapsed = time.monotonic() - start
    print(f"{label} {elapsed:.2f} s {peak / 1024:.0f} MB" + ("" if proc.returncode == 0 else f" (exit {proc.returncode})"), file=sys.stderr)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
