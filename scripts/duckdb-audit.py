#!/usr/bin/env python3
"""Runs sql/audit.sql on DuckDB over a bulk-audit index: the `resources`, `exports` and `findings`
tables of the audit, as `bulk-audit audit` writes them.

Usage: duckdb-audit.py IDX OUT [--plan PLAN] [--memory-limit SIZE] [--format parquet|csv]

IDX is a folder written by `bulk-audit index`, or a folder of shards (the logs' and the history
parts', each an index), read as one through sql/union.sql; a union needs its --plan (`bulk-audit
plan --index IDX --out PLAN`). Every file is checked against its SHA256SUMS before a row is read.
OUT is a new folder; it receives resources, exports and findings (.parquet, or .csv written as
the binary writes CSV), readable by the owner only, or nothing. --memory-limit (e.g. 1GB) bounds
DuckDB's memory; what does not fit spills to the system's temporary folder. Needs the duckdb
package (PyPI); `scripts/install-readers` makes a venv with it.
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
    import duckdb.sqltypes as types

    con.create_function("rfc3339_ns", shared.rfc3339_ns, [types.BIGINT], types.VARCHAR, side_effects=False)

    def shards_view(name, paths):
        # One scan of every shard's file, not a UNION ALL of one scan each: DuckDB's windows over
        # a UNION ALL of many Parquet scans ran out of 1 GB at K=60 x3 (97 shards).
        # The shard is the file's place in the list (DuckDB's virtual column file_index).
        files = "[" + ", ".join(quoted(p) for p in paths) + "]"
        con.execute(f"CREATE VIEW {name} AS SELECT CAST(file_index AS BIGINT) AS shard, * FROM read_parquet({files})")

    # What several tables read is computed once: the union's versions and every export's rows.
    kept = {name for name, _ in shared.union_views()} | {"exported"}
    shared.register(
        shared.checked(index, plan),
        lambda name, path: con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({quoted(path)})"),
        lambda name, select: con.execute(f"CREATE {'TABLE' if name in kept else 'VIEW'} {name} AS {select}"),
        shards_view,
    )
    return con


def audit(index, plan=None, memory_limit=None):
    """(connection, {table name: relation}) of sql/audit.sql's tables over the index."""
    con = connect(index, plan, memory_limit)
    return con, {name: con.sql(select) for name, select in shared.TABLES.items()}


def main():
    # Output into a closed pipe (`| head`) ends the run quietly, as a command-line tool does.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    p = argparse.ArgumentParser(description="sql/audit.sql on DuckDB over a bulk-audit index")
    p.add_argument("index")
    p.add_argument("out")
    p.add_argument("--plan")
    p.add_argument("--memory-limit")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    a = p.parse_args()
    out = Path(a.out)
    try:
        import duckdb  # noqa: F401
    except ImportError:
        sys.exit("duckdb-audit: the duckdb package is not installed (scripts/install-readers makes a venv with it)")
    if out.exists() or out.is_symlink():
        sys.exit(f"duckdb-audit: {out} exists; give a new path")
    if not out.absolute().parent.is_dir():
        sys.exit(f"duckdb-audit: {out.absolute().parent} is not a folder")
    try:
        con, _ = audit(a.index, a.plan, a.memory_limit)
    except shared.Refused as e:
        sys.exit(f"duckdb-audit: {e}")
    csv = a.format == "csv"
    # No comment character: DuckDB would quote every cell holding a `#` (a Bundle entry's source).
    form = "(FORMAT CSV, HEADER, COMMENT '')" if csv else "(FORMAT PARQUET)"
    # Written into a private folder beside OUT, renamed to OUT once every table is whole.
    partial = out.absolute().with_name(f".{out.name}.partial-{os.getpid()}")
    counts = {}
    try:
        partial.mkdir(mode=0o700)
        for name in shared.TABLES:
            path = partial / f"{name}.{a.format}"
            # CSV as the binary writes it: its times in its form (Parquet keeps them typed).
            select = shared.as_binary_csv(name, "duckdb") if csv else shared.TABLES[name]
            con.execute(f"COPY ({select}) TO {quoted(path)} {form}")
            os.chmod(path, 0o600)
            reader = "read_csv" if csv else "read_parquet"
            counts[name] = con.execute(f"SELECT count(*) FROM {reader}({quoted(path)})").fetchone()[0]
        os.rename(partial, out)
    except BaseException as e:
        shutil.rmtree(partial, ignore_errors=True)
        if isinstance(e, Exception):
            sys.exit(f"duckdb-audit: writing {out} failed: {e}")
        raise
    print(f"{counts['exports']} exports, {counts['resources']} resource rows, {counts['findings']} findings -> {out}")
    exports = con.execute("SELECT count(*) FROM kickoffs").fetchone()[0]
    print("\n".join(shared.incomplete_lines(con.execute(shared.INCOMPLETE).fetchall(), exports)))


if __name__ == "__main__":
    main()
