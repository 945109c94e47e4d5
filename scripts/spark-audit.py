#!/usr/bin/env python3
"""Runs sql/audit.sql on Apache Spark over a bulk-audit index: the `resources`, `exports` and
`findings` tables of the audit, as `bulk-audit audit` writes them.

Usage: spark-audit.py IDX OUT [--plan PLAN] [--master URL] [--format parquet|csv]
       (OUT: a new folder; Spark writes each table as a folder of part files, OUT/resources,
       OUT/exports and OUT/findings)

IDX is a folder written by `bulk-audit index`, or a folder of shards read as one through
sql/union.sql with its --plan (`bulk-audit plan --index IDX --out PLAN`), on storage every
executor reads (a shared file system, HDFS, S3). Every file is checked against its SHA256SUMS on
the driver before a row is read. --master defaults to local[*] (every core of this machine);
give spark://host:7077, yarn or k8s://… for a cluster. Needs pyspark (PyPI) and Java 17 or 21
(scripts/install-readers, scripts/install-java).
"""

import argparse
import os
import shutil
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk_audit_sql as shared  # noqa: E402

# Every table of an index (a test reads each with Spark).
INDEX_TABLES = [
    "versions", "version_patients", "version_references", "clients", "groups", "access_policies",
    "statuses", "kickoffs", "export_types", "export_patients", "planned_exports", "planned_findings",
    "status_counts", "inputs",
]


def session(master="local[*]"):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName("bulk-audit-sql")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # The planner cannot size the union's windowed views and broadcast one the driver could
        # not hold (K=60, local[2]: "Not enough memory to build and broadcast the table"): every
        # join is a sort-merge or shuffled hash join, which spill.
        .config("spark.sql.autoBroadcastJoinThreshold", "-1")
        .config("spark.hadoop.fs.permissions.umask-mode", "077")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# The views more than one output table reads, each costly: written once as Parquet in the work
# folder and read back, instead of computed again for each table (Spark keeps no view's rows).
MATERIALIZED = ["versions", "referenced", "exported", "window_versions"]


def audit(spark, index, plan=None, folders=None, work=None):
    """{table name: DataFrame} of sql/audit.sql's tables over the index (or the union of its
    shards); `folders`: what `bulk_audit_sql.checked` gave, when it was called already; `work`:
    a new folder where the views of MATERIALIZED are written once (None: computed per table)."""
    # The executors cannot import bulk_audit_sql: the function travels with the query, by value.
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(shared)
    spark.udf.register("rfc3339_ns", shared.rfc3339_ns, "string")

    def view(name, select):
        rows = spark.sql(select)
        if work is not None and name in MATERIALIZED:
            path = f"{work.rstrip('/')}/{name}"
            rows.write.mode("error").parquet(path)
            rows = spark.read.parquet(path)
        rows.createOrReplaceTempView(name)

    shared.register(
        folders or shared.checked(index, plan),
        lambda name, path: spark.read.parquet(str(path)).createOrReplaceTempView(name),
        view,
    )
    return {name: spark.sql(select) for name, select in shared.TABLES.items()}


def main():
    # Output into a closed pipe (`| head`) ends the run quietly, as a command-line tool does.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    p = argparse.ArgumentParser(description="sql/audit.sql on Spark over a bulk-audit index")
    p.add_argument("index")
    p.add_argument("out")
    p.add_argument("--plan")
    p.add_argument("--master", default="local[*]")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    a = p.parse_args()
    # Every file verified before Spark starts, and once.
    try:
        folders = shared.checked(a.index, a.plan)
    except shared.Refused as e:
        raise SystemExit(f"spark-audit: {e}")
    out = a.out.rstrip("/")
    if os.path.exists(out):
        raise SystemExit(f"spark-audit: {out} exists; give a new folder")
    # What the run writes is readable by its owner only: the process's umask for the JVM it
    # starts, Hadoop's for the files it writes.
    os.umask(0o077)
    work = f"{out}/.work"
    spark = session(a.master)
    try:
        write(spark, a, folders, out, work)
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work)
    spark.stop()


def write(spark, a, folders, out, work):
    """The three tables into OUT/resources, OUT/exports and OUT/findings, and the summary."""
    tables = audit(spark, a.index, a.plan, folders, work)
    counts = {}
    for name in tables:
        path = f"{out}/{name}"
        if a.format == "csv":
            # As the binary writes CSV: its times in its form, quotes doubled, empty for null.
            rows = spark.sql(shared.as_binary_csv(name, "spark"))
            rows.write.mode("error").option("header", True).option("escape", '"').option(
                "emptyValue", ""
            ).csv(path)
            written = spark.read.option("header", True).csv(path)
        else:
            tables[name].write.mode("error").parquet(path)
            written = spark.read.parquet(path)
        counts[name] = written.count()
    print(f"{counts['exports']} exports, {counts['resources']} resource rows, {counts['findings']} findings -> {out}")
    exports = spark.sql("SELECT count(*) FROM kickoffs").collect()[0][0]
    found = [(r[0], r[1]) for r in spark.sql(shared.INCOMPLETE).collect()]
    print("\n".join(shared.incomplete_lines(found, exports)))


if __name__ == "__main__":
    main()
