#!/usr/bin/env python3
"""Runs sql/audit.sql on Apache Spark over a bulk-audit index: the `resources` rows of the audit.

Usage: spark-audit.py IDX OUT [--master URL]   (OUT ending in .csv: CSV; otherwise Parquet;
       Spark writes either as a folder of part files)

IDX is a folder written by `bulk-audit index` on storage every executor reads (a shared file
system, HDFS, S3); each of its tables is a view of the same name. --master defaults to
local[*] (every core of this machine); give spark://host:7077, yarn or k8s://… for a cluster.
Needs pyspark (PyPI) and Java 17 or 21 (scripts/install-readers, scripts/install-java).
"""

import argparse
from pathlib import Path

SQL = Path(__file__).resolve().parent.parent / "sql" / "audit.sql"
TABLES = [
    "versions", "version_patients", "version_references", "clients", "groups", "access_policies",
    "statuses", "kickoffs", "export_types", "export_patients", "inputs",
]


# Exports whose rows the inputs could not answer whole (bulk-audit settled it at index time): the
# rows alone would read as an all-clear, so they are said beside them (as duckdb-audit.py does).
INCOMPLETE = """SELECT export_id, incomplete_because FROM kickoffs WHERE completeness = 'incomplete'
ORDER BY export_time_ns, export_id, export_key"""


def session(master="local[*]"):
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName("bulk-audit-sql")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def audit(spark, index):
    """A DataFrame of sql/audit.sql over the index."""
    for table in TABLES:
        spark.read.parquet(str(Path(index) / f"{table}.parquet")).createOrReplaceTempView(table)
    return spark.sql(SQL.read_text(encoding="utf-8"))


def main():
    p = argparse.ArgumentParser(description="sql/audit.sql on Spark over a bulk-audit index")
    p.add_argument("index")
    p.add_argument("out")
    p.add_argument("--master", default="local[*]")
    a = p.parse_args()
    if not (Path(a.index) / "index.json").is_file():
        raise SystemExit(f"spark-audit: {a.index} is not a bulk-audit index (no index.json)")
    spark = session(a.master)
    rows = audit(spark, a.index)
    writer = rows.write.mode("error")
    if a.out.endswith(".csv"):
        writer.option("header", True).csv(a.out)
    else:
        writer.parquet(a.out)
    print(f"{spark.read.parquet(a.out).count() if not a.out.endswith('.csv') else 'the'} resource rows -> {a.out}")
    found = [(r[0], r[1]) for r in spark.sql(INCOMPLETE).collect()]
    exports = spark.sql("SELECT count(*) FROM kickoffs").collect()[0][0]
    if not found:
        print(f"all {exports} exports complete")
    else:
        print(f"{len(found)} of {exports} exports incomplete: their rows are not the whole answer")
        for export_id, because in found:
            print(f"  incomplete: export {export_id}: {because}")
    spark.stop()


if __name__ == "__main__":
    main()
