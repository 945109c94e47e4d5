#!/usr/bin/env python3
"""Runs sql/audit.sql on DuckDB over a bulk-audit index: the `resources` rows of the audit.

Usage: duckdb-audit.py IDX OUT   (OUT ending in .csv: CSV; otherwise Parquet)

IDX is a folder written by `bulk-audit index`; each of its tables is a view of the same name.
Needs the duckdb package (PyPI); `scripts/install-readers` makes a venv with the pinned one.
"""

import os
import sys
import tempfile
from pathlib import Path

SQL = Path(__file__).resolve().parent.parent / "sql" / "audit.sql"
TABLES = [
    "versions", "version_patients", "version_references", "clients", "groups", "access_policies",
    "statuses", "kickoffs", "export_types", "export_patients", "inputs",
]


# Exports whose rows the inputs could not answer whole (bulk-audit settled it at index time): the
# rows alone would read as an all-clear, so they are said beside them.
INCOMPLETE = """SELECT export_id, incomplete_because FROM kickoffs WHERE completeness = 'incomplete'
ORDER BY export_time_ns, export_id, export_key"""


def incomplete_lines(found, exports):
    """What to say of the incomplete exports, one line each after a count."""
    if not found:
        return [f"all {exports} exports complete"]
    return [f"{len(found)} of {exports} exports incomplete: their rows are not the whole answer"] + [
        f"  incomplete: export {export_id}: {because}" for export_id, because in found
    ]


def quoted(path):
    return "'" + str(path).replace("'", "''") + "'"


def connect(index):
    """A DuckDB connection with the index's tables as views."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # Spilled to the system's temporary folder, not to .tmp in the working directory.
    spill = Path(tempfile.gettempdir()) / f"duckdb-audit-{os.getpid()}"
    con.execute(f"SET temp_directory = {quoted(spill)}")
    for table in TABLES:
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet({quoted(Path(index) / (table + '.parquet'))})")
    return con


def audit(index):
    """(connection, relation) of sql/audit.sql over the index."""
    con = connect(index)
    return con, con.sql(SQL.read_text(encoding="utf-8"))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    index, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not (index / "index.json").is_file():
        sys.exit(f"duckdb-audit: {index} is not a bulk-audit index (no index.json)")
    con, rel = audit(index)
    form = "(FORMAT CSV, HEADER)" if out.suffix == ".csv" else "(FORMAT PARQUET)"
    con.execute(f"COPY ({SQL.read_text(encoding='utf-8')}) TO {quoted(out)} {form}")
    rows = con.execute(f"SELECT count(*) FROM ({SQL.read_text(encoding='utf-8')})").fetchone()[0]
    exports = con.execute("SELECT count(*) FROM kickoffs").fetchone()[0]
    print(f"{rows} resource rows -> {out}")
    print("\n".join(incomplete_lines(con.execute(INCOMPLETE).fetchall(), exports)))


if __name__ == "__main__":
    main()
