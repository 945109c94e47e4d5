#!/usr/bin/env python3
"""Builds an index in shards on Apache Spark's executors: the bulk-audit binary shipped to them,
one task per history file (and one for the logs), each `bulk-audit index` of its part alone;
then the plan of their union (`bulk-audit plan`, on the driver: its memory follows the small
resources, not the history). spark-audit.py then runs the audit SQL over them on the cluster.

Usage: spark-index.py --bin PATH --logs PATH... --history PATH... --out IDX [--plan PLAN]
                      [--master URL] [bulk-audit index options: --tz UTC, --boundary …]

Every path is on storage the driver and every executor see alike (a shared file system mounted
at the same place); folders are walked as bulk-audit walks them (sorted, hidden names passed
over), each file one shard, IDX/h-NNNNN in that order, and the logs IDX/logs. --plan defaults to
IDX-plan beside IDX. Any option this script does not know is given to every `bulk-audit index`,
so the shards are built alike (the union refuses shards that are not). A failed task names its
file and bulk-audit's message, and nothing is planned. Needs pyspark (PyPI) and Java 17 or 21.
"""

import argparse
import os
import stat
import subprocess
import sys
from pathlib import Path


def walk(path):
    """The files of `path` in bulk-audit's order."""
    p = Path(path)
    if p.is_dir():
        for e in sorted(p.iterdir()):
            if not e.name.startswith("."):
                yield from walk(e)
    else:
        yield p


def run_task(job, binary_name, options, out):
    """One shard build, on an executor: (shard, what, exit status, bulk-audit's last words)."""
    from pyspark import SparkFiles

    shard, args, what = job
    exe = SparkFiles.get(binary_name)
    os.chmod(exe, os.stat(exe).st_mode | stat.S_IXUSR)
    r = subprocess.run([exe, "index", *args, *options, "--out", str(Path(out) / shard)], capture_output=True, text=True)
    said = (r.stderr.strip() or r.stdout.strip()).splitlines()
    return shard, what, r.returncode, said[-1] if said else ""


def build(spark, binary, logs, history, out, options):
    """Builds IDX/logs and IDX/h-NNNNN, one Spark task each; returns the shard folders."""
    out = Path(out).resolve()
    files = [str(f.resolve()) for h in history for f in walk(h)]
    if not files:
        raise SystemExit(f"spark-index: --history {' '.join(history)} holds no file")
    jobs = [("logs", ["--logs", *[str(Path(p).resolve()) for p in logs]], "the logs")]
    jobs += [(f"h-{i:05d}", ["--history", f], f) for i, f in enumerate(files)]
    binary = Path(binary).resolve()
    spark.sparkContext.addFile(str(binary))
    name = binary.name
    results = (
        spark.sparkContext.parallelize(jobs, len(jobs))
        .map(lambda job: run_task(job, name, options, str(out)))
        .collect()
    )
    failed = [r for r in results if r[2] != 0]
    for shard, what, status, said in failed:
        print(f"spark-index: {what} ({shard}) failed with status {status}: {said}", file=sys.stderr)
    if failed:
        raise SystemExit(f"spark-index: {len(failed)} of {len(jobs)} shard builds failed; nothing planned")
    return [out / shard for shard, _, _, _ in results]


def main():
    p = argparse.ArgumentParser(description="bulk-audit index in shards on Spark's executors, then their plan")
    p.add_argument("--bin", required=True, help="the bulk-audit binary for the executors (Linux, as they run)")
    p.add_argument("--logs", nargs="+", required=True)
    p.add_argument("--history", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--plan")
    p.add_argument("--master", default="local[*]")
    a, options = p.parse_known_args()
    out = Path(a.out)
    if out.exists():
        raise SystemExit(f"spark-index: {out} exists; give a new folder (a union is built whole)")
    plan = Path(a.plan) if a.plan else out.with_name(out.name + "-plan")
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(a.master)
        .appName("bulk-audit-index")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        shards = build(spark, a.bin, a.logs, a.history, out, options)
    finally:
        spark.stop()
    r = subprocess.run([a.bin, "plan", "--index", str(out), "--out", str(plan)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"spark-index: bulk-audit plan failed: {r.stderr.strip()}")
    print(f"{len(shards)} shards -> {out}")
    print(r.stdout.strip())


if __name__ == "__main__":
    main()
