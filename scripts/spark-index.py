#!/usr/bin/env python3
"""Builds an index in shards on Apache Spark's executors: the bulk-audit binary shipped to them,
one task per history file (and one for the logs), each `bulk-audit index` of its part alone;
with --lines-per-task N, one task per N lines of a file (`bulk-audit index --lines`), so a file
too big for one task is cut too. Then the plan of their union (`bulk-audit plan`, on the driver:
its memory follows the small resources, not the history). spark-audit.py then runs the audit SQL
over them on the cluster.

Usage: spark-index.py --bin PATH --logs PATH... --history PATH... --out IDX [--plan PLAN]
                      [--lines-per-task N] [--master URL] [bulk-audit index options: --tz UTC, …]

Every path is on storage the driver and every executor see alike (a shared file system mounted
at the same place); folders are walked as bulk-audit walks them (sorted, hidden names passed
over), each file one shard, IDX/h-NNNNN in that order, and the logs IDX/logs. With
--lines-per-task, file NNNNN's parts are IDX/h-NNNNN-PPPPP: a first task per file reads lines
1..N (and counts the file's lines: bulk-audit reads the rest without parsing it), then a task per
further N lines, the last to the file's end; a file of documents that span lines (a Bundle, YAML)
is read whole. --plan defaults to IDX-plan beside IDX. Any option this script does not know is
given to every `bulk-audit index`, so the shards are built alike (the union refuses shards that
are not, and parts that leave a line unread). A failed task names its file and bulk-audit's
message, and nothing is planned. Needs pyspark (PyPI) and Java 17 or 21.
"""

import argparse
import json
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
    """One shard build, on an executor: (shard, what, exit status, bulk-audit's last words).
    A part of a file of documents that span lines is built of the whole file instead."""
    from pyspark import SparkFiles

    shard, args, what = job
    exe = SparkFiles.get(binary_name)
    os.chmod(exe, os.stat(exe).st_mode | stat.S_IXUSR)

    def index(args):
        r = subprocess.run([exe, "index", *args, *options, "--out", str(Path(out) / shard)], capture_output=True, text=True)
        said = (r.stderr.strip() or r.stdout.strip()).splitlines()
        return r.returncode, said[-1] if said else ""

    status, said = index(args)
    if status != 0 and "--lines" in args and "documents that span lines" in said:
        status, said = index(args[: args.index("--lines")])
    return shard, what, status, said


def run_jobs(spark, jobs, name, options, out):
    """Runs the shard builds, one Spark task each; stops naming every one that failed."""
    if not jobs:
        return
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


def file_in_parts(shard):
    """(the file's lines, whether the shard holds part of it) from the shard's index.json."""
    info = json.loads((shard / "index.json").read_text())
    record = next(i for i in info["reading"]["inputs"] if i["role"] == "history")
    return record["lines"], "line_range" in record


def build(spark, binary, logs, history, out, options, per_task):
    """Builds IDX/logs and IDX/h-NNNNN (or IDX/h-NNNNN-PPPPP), one Spark task each; returns the
    shard folders."""
    out = Path(out).resolve()
    files = [str(f.resolve()) for h in history for f in walk(h)]
    if not files:
        raise SystemExit(f"spark-index: --history {' '.join(history)} holds no file")
    binary = Path(binary).resolve()
    spark.sparkContext.addFile(str(binary))
    name = binary.name
    jobs = [("logs", ["--logs", *[str(Path(p).resolve()) for p in logs]], "the logs")]
    if not per_task:
        jobs += [(f"h-{i:05d}", ["--history", f], f) for i, f in enumerate(files)]
        run_jobs(spark, jobs, name, options, out)
        return [out / shard for shard, _, _ in jobs]
    jobs += [(f"h-{i:05d}-00000", ["--history", f, "--lines", f"1..{per_task}"], f) for i, f in enumerate(files)]
    run_jobs(spark, jobs, name, options, out)
    rest = []
    for i, f in enumerate(files):
        lines, in_parts = file_in_parts(out / f"h-{i:05d}-00000")
        part = 1
        while in_parts and part * per_task < lines:
            first, last = part * per_task + 1, (part + 1) * per_task
            # The last part runs to the end, whatever the count.
            span = f"{first}..{last}" if last < lines else f"{first}.."
            rest.append((f"h-{i:05d}-{part:05d}", ["--history", f, "--lines", span], f"{f} lines {span}"))
            part += 1
    run_jobs(spark, rest, name, options, out)
    return [out / shard for shard, _, _ in jobs + rest]


def main():
    p = argparse.ArgumentParser(description="bulk-audit index in shards on Spark's executors, then their plan")
    p.add_argument("--bin", required=True, help="the bulk-audit binary for the executors (Linux, as they run)")
    p.add_argument("--logs", nargs="+", required=True)
    p.add_argument("--history", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--plan")
    p.add_argument("--lines-per-task", type=int, help="cut each history file into tasks of this many lines")
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
        if a.lines_per_task is not None and a.lines_per_task < 1:
            raise SystemExit("spark-index: --lines-per-task must be 1 or more")
        shards = build(spark, a.bin, a.logs, a.history, out, options, a.lines_per_task)
    finally:
        spark.stop()
    r = subprocess.run([a.bin, "plan", "--index", str(out), "--out", str(plan)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"spark-index: bulk-audit plan failed: {r.stderr.strip()}")
    print(f"{len(shards)} shards -> {out}")
    print(r.stdout.strip())


if __name__ == "__main__":
    main()
