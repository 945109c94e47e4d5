"""Runs sql/audit.sql on DuckDB and on Spark over bulk-audit indexes and compares the rows with
the binary's `resources` table, typed (text as text, times as UTC microseconds), both ways
(rows missing and rows extra), and in order.

Usage: parity.py [--no-spark] IDX[::PLAN]=AUDIT_DIR...  (AUDIT_DIR: an audit of the same inputs
and options with --format parquet; IDX a folder of shards with PLAN their plan, or one index). Prints one line per index and engine; exit 1 on a difference.
"""

import collections
import datetime
import importlib.util
import sys
from pathlib import Path

import pyarrow.parquet as pq

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
COLUMNS = [
    "export_id", "client_id", "export_time", "level", "group_id", "patient_id",
    "resource_type", "resource_id", "version_id", "last_updated", "source",
]
TIMES = {"export_time", "last_updated"}
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def script(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def micros(value, column, engine):
    if not isinstance(value, datetime.datetime):
        raise SystemExit(f"{engine}: {column} is {type(value).__name__} {value!r}, not a timestamp")
    if value.tzinfo is None:
        # Spark hands out naive datetimes in the session's zone (UTC here).
        value = value.replace(tzinfo=datetime.timezone.utc)
    return (value - EPOCH) // datetime.timedelta(microseconds=1)


def typed(rows, names, engine):
    if list(names) != COLUMNS:
        raise SystemExit(f"{engine}: columns {list(names)}, expected {COLUMNS}")
    out = []
    for row in rows:
        cells = []
        for column, value in zip(COLUMNS, row):
            if column in TIMES:
                cells.append(None if value is None else micros(value, column, engine))
            elif value is None or isinstance(value, str):
                cells.append(value)
            else:
                raise SystemExit(f"{engine}: {column} is {type(value).__name__} {value!r}, not text")
        out.append(tuple(cells))
    return out


def compare(label, got, want):
    if got == want:
        print(f"{label}: {len(got)} rows, the same as the binary's, in the same order")
        return True
    g, w = collections.Counter(got), collections.Counter(want)
    missing, extra = list((w - g).elements()), list((g - w).elements())
    print(f"{label}: {len(got)} rows, the binary has {len(want)}; {len(missing)} missing, {len(extra)} extra")
    for r in missing[:5]:
        print(f"  missing {r}")
    for r in extra[:5]:
        print(f"  extra   {r}")
    if not missing and not extra:
        first = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        print(f"  same rows, other order from row {first}: {got[first]} / {want[first]}")
    return False


def main():
    args = sys.argv[1:]
    spark_too = "--no-spark" not in args
    pairs = [a.split("=", 1) for a in args if a != "--no-spark"]
    binary = {}
    for index, audit_dir in pairs:
        table = pq.read_table(Path(audit_dir) / "resources.parquet")
        binary[index] = typed(zip(*[table.column(c).to_pylist() for c in table.column_names]), table.column_names, "binary")
    ok = True
    duck = script("duckdb-audit")
    for index, _ in pairs:
        idx, _, plan = index.partition("::")
        _, rel = duck.audit(idx, plan or None)
        ok &= compare(f"duckdb {index}", typed(rel.fetchall(), rel.columns, "duckdb"), binary[index])
    if spark_too:
        spark_audit = script("spark-audit")
        spark = spark_audit.session("local[2]")
        for index, _ in pairs:
            idx, _, plan = index.partition("::")
            frame = spark_audit.audit(spark, idx, plan or None)
            ok &= compare(f"spark {index}", typed(frame.collect(), frame.columns, "spark"), binary[index])
        spark.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
