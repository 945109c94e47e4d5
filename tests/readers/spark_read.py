"""Reads bulk-audit's Parquet tables with Spark 4 (local, one core) and checks each against the
CSV of the same audit: row count, timestamps as TimestampType (Spark 4 refuses nanoseconds), list
columns as arrays of strings, and every exports row's ids, times and lists.

Usage: spark_read.py PARQUET_DIR CSV_DIR. Prints one line per table; exit 1 on a difference.
"""

import csv
import datetime
import sys
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql.types import ArrayType, StringType, TimestampType

LISTS = ["scopes", "access_policies", "allowed_types", "requested_types", "exported_types"]


def fail(message):
    print(message)
    sys.exit(1)


def utc(text):
    whole, _, rest = text.rstrip("Z").partition(".")
    micros = (rest + "000000")[:6] if rest else "000000"
    return datetime.datetime.fromisoformat(f"{whole}.{micros}")


def main():
    parquet_dir, csv_dir = Path(sys.argv[1]), Path(sys.argv[2])
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("bulk-audit-readers")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    for name in ["resources", "exports", "findings"]:
        frame = spark.read.parquet(str(parquet_dir / f"{name}.parquet"))
        with open(csv_dir / f"{name}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        if frame.count() != len(rows):
            fail(f"spark {name}: {frame.count()} rows, CSV {len(rows)}")
        types = {f.name: f.dataType for f in frame.schema.fields}
        for column in ["export_time", "last_updated", "request_end"]:
            if column in types and not isinstance(types[column], TimestampType):
                fail(f"spark {name}.{column}: {types[column]}, expected TimestampType")
        if name == "exports":
            for column in LISTS:
                if types[column] != ArrayType(StringType(), True):
                    fail(f"spark exports.{column}: {types[column]}, expected an array of strings")
            by_id = {r["export_id"]: r for r in rows}
            for got in frame.collect():
                want = by_id[got["export_id"]]
                if (got["export_time"] is None) != (want["export_time"] == "") or (
                    got["export_time"] is not None and got["export_time"] != utc(want["export_time"])
                ):
                    fail(f"spark exports {got['export_id']}: export_time {got['export_time']} vs {want['export_time']}")
                for column in LISTS:
                    expected = want[column].split(" ") if want[column] else None
                    if got[column] != expected:
                        fail(f"spark exports {got['export_id']}.{column}: {got[column]} vs {expected}")
        print(f"{name}: {len(rows)} rows read by Spark {spark.version}")
    spark.stop()


if __name__ == "__main__":
    main()
