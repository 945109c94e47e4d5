#!/usr/bin/env python3
"""Runs sql/audit.sql on DuckDB over a bulk-audit index: the `resources` rows of the audit.

Usage: duckdb-audit.py IDX OUT [--plan PLAN] [--memory-limit SIZE]
       (OUT ending in .csv: CSV; otherwise Parquet)

IDX is a folder written by `bulk-audit index`, or a folder of shards (the logs' and the history
parts', each an index), read as one through sql/union.sql; a union needs its --plan (`bulk-audit
plan --index IDX --out PLAN`). Every file is checked against its SHA256SUMS before a row is read.
--memory-limit (e.g. 1GB) bounds DuckDB's memory; what does not fit spills to the system's
temporary folder. Needs the duckdb package (PyPI); `scripts/install-readers` makes a venv with it.
"""

import argparse
import signal
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bulk_audit_sql as shared  # noqa: E402

SQL = shared.AUDIT_SQL


def quoted(path):
    return "'" + str(path).replace("'", "''") + "'"


def connect(index, plan=None, memory_limit=None):
    """A DuckDB connection with the views sql/audit.sql reads. The union's version tables are
    materialised in a database file in a private temporary folder (removed at exit), so DuckDB
    can page them out under --memory-limit rather than recompute their windows at every use."""
    import duckdb

    work = Path(tempfile.mkdtemp(prefix="duckdb-audit-"))
    atexit.register(shutil.rmtree, work, True)
    con = duckdb.connect(str(work / "union.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    # Spilled to the private temporary folder, not to .tmp in the working directory.
    con.execute(f"SET temp_directory = {quoted(work / 'spill')}")
    if memory_limit:
        con.execute(f"SET memory_limit = {quoted(memory_limit)}")
        # Rows need not keep their order inside the plan: only the final ORDER BY does.
        con.execute("SET preserve_insertion_order = false")
    union = {name for name, _ in shared.union_views()}
    shared.register(
        shared.checked(index, plan),
        lambda name, path: con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({quoted(path)})"),
        lambda name, select: con.execute(f"CREATE {'TABLE' if name in union else 'VIEW'} {name} AS {select}"),
    )
    return con


def audit(index, plan=None, memory_limit=None):
    """(connection, relation) of sql/audit.sql over the index."""
    con = connect(index, plan, memory_limit)
    return con, con.sql(SQL)


def main():
    # Output into a closed pipe (`| head`) ends the run quietly, as a command-line tool does.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    p = argparse.ArgumentParser(description="sql/audit.sql on DuckDB over a bulk-audit index")
    p.add_argument("index")
    p.add_argument("out")
    p.add_argument("--plan")
    p.add_argument("--memory-limit")
    a = p.parse_args()
    out = Path(a.out)
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sys.exit("duckdb-audit: the duckdb package is not installed (scripts/install-readers makes a venv with it)")
    if out.exists():
        sys.exit(f"duckdb-audit: {out} exists; give a new path")
    if not out.parent.is_dir():
        sys.exit(f"duckdb-audit: {out.parent} is not a folder")
    try:
        con, _ = audit(a.index, a.plan, a.memory_limit)
    except shared.Refused as e:
        sys.exit(f"duckdb-audit: {e}")
    csv = out.suffix == ".csv"
    # No comment character: DuckDB would quote every cell holding a `#` (a Bundle entry's source).
    form = "(FORMAT CSV, HEADER, COMMENT '')" if csv else "(FORMAT PARQUET)"
    # CSV as the binary writes it: its times in its form (Parquet keeps them typed).
    select = shared.as_binary_csv(SQL, "duckdb") if csv else SQL
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        con.execute(f"COPY ({select}) TO {quoted(partial)} {form}")
        os.chmod(partial, 0o600)
        os.replace(partial, out)
    except BaseException as e:
        partial.unlink(missing_ok=True)
        if isinstance(e, Exception):
            sys.exit(f"duckdb-audit: writing {out} failed: {e}")
        raise
    rows = con.execute(f"SELECT count(*) FROM read_{'csv' if out.suffix == '.csv' else 'parquet'}({quoted(out)})").fetchone()[0]
    exports = con.execute("SELECT count(*) FROM kickoffs").fetchone()[0]
    print(f"{rows} resource rows -> {out}")
    print("\n".join(shared.incomplete_lines(con.execute(shared.INCOMPLETE).fetchall(), exports)))


if __name__ == "__main__":
    main()
