"""Runs sql/audit.sql on DuckDB and on Spark over bulk-audit indexes and compares its
`resources`, `exports` and `findings` tables with the binary's, typed (text as text, numbers as
numbers, flags as flags, lists as lists, times as UTC microseconds), both ways (rows missing and
rows extra), and in order.

Usage: parity.py [--no-spark] IDX[::PLAN]=AUDIT_DIR...  (AUDIT_DIR: an audit of the same inputs
and options with --format parquet; IDX a folder of shards with PLAN their plan, or one index).
Prints one line per index, engine and table; exit 1 on a difference.
"""

import collections
import datetime
import importlib.util
import sys
from pathlib import Path

import pyarrow.parquet as pq

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
TABLES = ["resources", "exports", "findings"]
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


def typed(rows, names, want, engine):
    """The rows with every cell as Python compares it: times as UTC microseconds."""
    if list(names) != list(want):
        raise SystemExit(f"{engine}: columns {list(names)}, expected {list(want)}")
    out = []
    for row in rows:
        cells = []
        for column, value in zip(names, row):
            if isinstance(value, datetime.datetime):
                cells.append(micros(value, column, engine))
            elif value is None or isinstance(value, (str, bool, int)):
                cells.append(value)
            elif isinstance(value, (list, tuple)):
                cells.append(tuple(value))
            else:
                raise SystemExit(f"{engine}: {column} is {type(value).__name__} {value!r}")
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
        for name in TABLES:
            table = pq.read_table(Path(audit_dir) / f"{name}.parquet")
            columns = [table.column(c).to_pylist() for c in table.column_names]
            binary[index, name] = (table.column_names, typed(zip(*columns), table.column_names, table.column_names, "binary"))
    ok = True
    duck = script("duckdb-audit")
    for index, _ in pairs:
        idx, _, plan = index.partition("::")
        _, rels = duck.audit(idx, plan or None)
        for name in TABLES:
            names, want = binary[index, name]
            got = typed(rels[name].fetchall(), rels[name].columns, names, f"duckdb {name}")
            ok &= compare(f"duckdb {index} {name}", got, want)
    if spark_too:
        spark_audit = script("spark-audit")
        spark = spark_audit.session("local[2]")
        for index, _ in pairs:
            idx, _, plan = index.partition("::")
            frames = spark_audit.audit(spark, idx, plan or None)
            for name in TABLES:
                names, want = binary[index, name]
                got = typed(frames[name].collect(), frames[name].columns, names, f"spark {name}")
                ok &= compare(f"spark {index} {name}", got, want)
        spark.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
