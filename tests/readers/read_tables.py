"""Reads bulk-audit's Parquet tables with pyarrow, pandas and DuckDB, and checks each against the
CSV tables of the same audit, cell by cell (pyarrow) and by rows and types (pandas, DuckDB).

Usage: read_tables.py PARQUET_DIR CSV_DIR. Exit status 0 when every reader agrees; otherwise the
first disagreement is printed and the status is 1. Run by tests/all/readers.rs.
"""

import csv
import datetime
import sys
from pathlib import Path

import duckdb
import pandas
import pyarrow
import pyarrow.parquet

TABLES = ["resources", "exports", "findings"]
LISTS = ["scopes", "access_policies", "allowed_types", "requested_types", "exported_types"]


def fail(message):
    print(message)
    sys.exit(1)


def expected_cell(kind, text):
    """A CSV cell as the Python value the Parquet cell must read as."""
    if text == "":
        return None
    if pyarrow.types.is_timestamp(kind):
        # CSV keeps every digit; Parquet holds microseconds, rounded down.
        whole, _, rest = text.rstrip("Z").partition(".")
        micros = (rest + "000000")[:6] if rest else "000000"
        return datetime.datetime.fromisoformat(f"{whole}.{micros}+00:00")
    if pyarrow.types.is_integer(kind):
        return int(text)
    if pyarrow.types.is_list(kind) or pyarrow.types.is_large_list(kind):
        # CSV separates a list's items with one space.
        return text.split(" ")
    if pyarrow.types.is_boolean(kind):
        return {"true": True, "false": False}[text]
    return text


def check_pyarrow(name, parquet_path, csv_path):
    table = pyarrow.parquet.read_table(parquet_path)
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if table.num_rows != len(rows):
        fail(f"pyarrow {name}: {table.num_rows} rows, CSV {len(rows)}")
    if table.column_names != list(rows[0].keys() if rows else table.column_names):
        fail(f"pyarrow {name}: columns {table.column_names} differ from the CSV's")
    for field in table.schema:
        if name == "exports" and field.name in LISTS and not pyarrow.types.is_large_list(field.type):
            fail(f"pyarrow {name}.{field.name}: {field.type}, expected a list of strings")
        if pyarrow.types.is_timestamp(field.type):
            if field.type.unit != "us" or field.type.tz != "UTC":
                fail(f"pyarrow {name}.{field.name}: {field.type}, expected timestamp[us, tz=UTC]")
        values = table.column(field.name).to_pylist()
        for i, (value, row) in enumerate(zip(values, rows)):
            text = row[field.name]
            want = expected_cell(field.type, text)
            # An empty text cell may be null or "" in Parquet.
            if value != want and not (want is None and value == ""):
                fail(f"pyarrow {name} row {i + 1} {field.name}: {value!r}, CSV {text!r}")
    return table.num_rows


def check_pandas(name, parquet_path, rows):
    frame = pandas.read_parquet(parquet_path)
    if len(frame) != rows:
        fail(f"pandas {name}: {len(frame)} rows, expected {rows}")
    for column, dtype in frame.dtypes.items():
        if str(dtype).startswith("datetime64") and str(dtype) not in ("datetime64[ns, UTC]", "datetime64[us, UTC]"):
            fail(f"pandas {name}.{column}: {dtype}, expected a UTC datetime")


def check_duckdb(name, parquet_path, rows):
    con = duckdb.connect()
    count = con.execute("SELECT count(*) FROM read_parquet(?)", [str(parquet_path)]).fetchone()[0]
    if count != rows:
        fail(f"duckdb {name}: {count} rows, expected {rows}")
    for column, kind, *_ in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(parquet_path)]).fetchall():
        if "TIMESTAMP" in kind and kind != "TIMESTAMP WITH TIME ZONE":
            fail(f"duckdb {name}.{column}: {kind}, expected TIMESTAMP WITH TIME ZONE")


def main():
    parquet_dir, csv_dir = Path(sys.argv[1]), Path(sys.argv[2])
    for name in TABLES:
        parquet_path = parquet_dir / f"{name}.parquet"
        rows = check_pyarrow(name, parquet_path, csv_dir / f"{name}.csv")
        check_pandas(name, parquet_path, rows)
        check_duckdb(name, parquet_path, rows)
        print(f"{name}: {rows} rows read alike by pyarrow {pyarrow.__version__}, pandas {pandas.__version__}, duckdb {duckdb.__version__}")


if __name__ == "__main__":
    main()
