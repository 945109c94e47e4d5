#!/usr/bin/env python3
"""Summarises benches/reference.sh's runs: reads lines "name seconds peak_kb" on stdin and prints,
per name, the median seconds, MB/s, the largest peak RSS and every run; then the ratios of
issue 3 (bulk-audit against the parse floor, alone and with hashing, and against the DuckDB peer).

  summarize.py INPUT_MB < runs
"""
import statistics
import sys


def main():
    mb = float(sys.argv[1])
    runs = {}
    for line in sys.stdin:
        name, secs, kb = line.split()
        runs.setdefault(name, []).append((float(secs), int(kb)))
    rounds = max(len(r) for r in runs.values())
    print(f"\n{f'run ({mb:,.0f} MB input, median of {rounds})':<36} {'seconds':>8} {'MB/s':>7} {'peak RSS MB':>12}   every run (s)")
    med = {}
    for name, rs in runs.items():
        secs = statistics.median(s for s, _ in rs)
        med[name] = secs
        peak = max(k for _, k in rs) / 1024
        print(f"{name:<36} {secs:>8.2f} {mb / secs:>7.0f} {peak:>12.0f}   " + " ".join(f"{s:.2f}" for s, _ in rs))
    if "parse-floor" in med:
        print(f"bulk-audit(csv) / parse floor: {med['bulk-audit(csv)'] / med['parse-floor']:.2f}x")
    if "parse+sha256-floor" in med:
        print(f"bulk-audit(csv) / parse+sha256 floor: {med['bulk-audit(csv)'] / med['parse+sha256-floor']:.2f}x")
    if "duckdb-peer" in med:
        print(f"duckdb-peer / bulk-audit(csv): {med['duckdb-peer'] / med['bulk-audit(csv)']:.2f}x")


if __name__ == "__main__":
    main()
