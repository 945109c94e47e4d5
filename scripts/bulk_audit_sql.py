"""What duckdb-audit.py and spark-audit.py share: finding the shards of an index, verifying every
file against its SHA256SUMS before a row is read, choosing where the kickoff tables come from (the
index itself, or the plan of a union of shards), and registering the views sql/audit.sql reads
(through sql/union.sql) with any engine.
"""

import datetime
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDIT_SQL = (ROOT / "sql" / "audit.sql").read_text(encoding="utf-8")
UNION_SQL = (ROOT / "sql" / "union.sql").read_text(encoding="utf-8")
EPOCH = datetime.datetime(1970, 1, 1)
MARKER = ".bulk-audit"
SUMS = "SHA256SUMS"
SHARD_TABLES = ["versions", "version_patients", "version_references"]
PLAN_TABLES = [
    "kickoffs", "export_types", "export_patients", "planned_exports", "planned_findings", "status_counts",
]

# Exports whose rows the inputs could not answer whole (bulk-audit settled it when it indexed or
# planned): the rows alone would read as an all-clear, so they are said beside them.
INCOMPLETE = """SELECT export_id, incomplete_because FROM kickoffs WHERE completeness = 'incomplete'
ORDER BY export_time_ns, export_id, export_key"""


class Refused(Exception):
    """An index or plan that cannot be used, and why (said to the user without a traceback)."""


def sections(text):
    """(kind, name, SELECT) of each `-- view: NAME` and `-- table: NAME` section, in order."""
    found, head, lines = [], None, []
    for line in text.splitlines():
        kind = next((k for k in ("view", "table") if line.startswith(f"-- {k}: ")), None)
        if kind:
            if head:
                found.append((*head, "\n".join(lines).strip()))
            head, lines = (kind, line.split(": ", 1)[1].strip()), []
        elif head and not line.startswith("--"):
            lines.append(line)
    if head:
        found.append((*head, "\n".join(lines).strip()))
    return found


def union_views():
    """(name, SELECT) of each view of sql/union.sql, in order."""
    return [(name, select) for kind, name, select in sections(UNION_SQL) if kind == "view"]


def audit_views():
    """(name, SELECT) of each view of sql/audit.sql, in order."""
    return [(name, select) for kind, name, select in sections(AUDIT_SQL) if kind == "view"]


# The output tables of sql/audit.sql, as the binary names them.
TABLES = {name: select for kind, name, select in sections(AUDIT_SQL) if kind == "table"}


def rfc3339_ns(nanos):
    """A time in exact nanoseconds as the binary writes it: RFC 3339 in UTC with `Z` and 0, 3, 6
    or 9 fraction digits, as few as the value needs (sql/audit.sql calls it rfc3339_ns)."""
    if nanos is None:
        return None
    seconds, frac = divmod(nanos, 1_000_000_000)
    text = (EPOCH + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac == 0:
        return text + "Z"
    if frac % 1_000_000 == 0:
        return f"{text}.{frac // 1_000_000:03d}Z"
    if frac % 1000 == 0:
        return f"{text}.{frac // 1000:06d}Z"
    return f"{text}.{frac:09d}Z"


def shards(index):
    """The shard folders of `index`: itself when it holds index.json, else its subfolders in name
    order (hidden ones passed over), each of which must be an index."""
    index = Path(index)
    if (index / "index.json").is_file():
        return [index]
    if not index.is_dir():
        raise Refused(f"{index} is not a bulk-audit index nor a folder of them")
    found = []
    for sub in sorted(p for p in index.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if not (sub / "index.json").is_file():
            raise Refused(f"{index}: {sub} is no bulk-audit index (a shard whose build did not finish?)")
        found.append(sub)
    if not found:
        raise Refused(f"{index} is not a bulk-audit index (no index.json) nor a folder of them")
    return found


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(folder):
    """Every file of `folder` as its SHA256SUMS lists it, none missing and none added."""
    folder = Path(folder)
    try:
        listed = {}
        for line in (folder / SUMS).read_text(encoding="utf-8").splitlines():
            digest, name = line.split("  ", 1)
            listed[name] = digest.lower()
    except (OSError, ValueError) as e:
        raise Refused(f"{folder}: {SUMS} is unreadable ({e})") from None
    present = {p.name for p in folder.iterdir() if p.name not in (SUMS, MARKER)}
    for name in sorted(present ^ set(listed)):
        raise Refused(f"{folder}: {name} is {'not listed in' if name in present else 'missing, though listed in'} {SUMS}")
    for name, digest in sorted(listed.items()):
        if sha256(folder / name) != digest:
            raise Refused(f"{folder}: {name} does not match its SHA-256 in {SUMS} (changed since it was written)")


def kickoff_source(found, plan):
    """The folder whose kickoffs, export_types and export_patients the SQL reads: the plan when
    given (checked to be the plan of exactly these shards), else the one index."""
    if plan is None:
        if len(found) > 1:
            raise Refused(
                f"{len(found)} shards: give the plan of their union (bulk-audit plan --index IDX --out PLAN, "
                "then --plan PLAN)"
            )
        info = json.loads((found[0] / "index.json").read_text(encoding="utf-8"))
        if not info["options"]["logs"] or not info["options"]["history"]:
            raise Refused(f"{found[0]} is a shard of the logs or of part of the history: give its union's --plan")
        return found[0]
    plan = Path(plan)
    verify(plan)
    try:
        info = json.loads((plan / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise Refused(f"{plan}: not a bulk-audit plan ({e})") from None
    planned = [s["index_json_sha256"] for s in info.get("shards", [])]
    given = [sha256(s / "index.json") for s in found]
    if planned != given:
        raise Refused(f"{plan} is the plan of other shards than {', '.join(map(str, found))}: plan them again")
    return plan


# What DuckDB's and Spark's (Hadoop's) Parquet readers take as a pattern in a path: a folder
# named with one could make them read another file than the one verified.
WILDCARDS = set("*?[]{}\\")


def literal(folder):
    """`folder`, once its path is known to hold none of the readers' wildcards."""
    held = sorted(WILDCARDS & set(str(folder)))
    if held:
        raise Refused(
            f"{folder}: its path holds {' '.join(held)}, which DuckDB and Spark read as a pattern (they could "
            "read another file than the one verified); give it under a path without them"
        )
    return folder


def checked(index, plan):
    """(the shard folders, the folder of the kickoff tables), once every file of each is verified
    and the plan is known to be these shards': what `register` reads."""
    found = [literal(s) for s in shards(index)]
    for s in found:
        verify(s)
    return found, literal(kickoff_source(found, plan))


def register(folders, parquet_view, sql_view, shards_view=None):
    """Registers every view sql/audit.sql's tables read from `checked`'s folders, its own views
    included: `parquet_view(name, path)` makes a view of a Parquet file, `sql_view(name, select)`
    one of a query. `shards_view(name, paths)`, when given, makes one view of a table's files in
    shard order, each row's file position first as the column `shard`; without it each file is a
    view and the shards' table their UNION ALL. The engine registers the function rfc3339_ns
    (above) itself."""
    found, source = folders
    for t in SHARD_TABLES:
        paths = [s / f"{t}.parquet" for s in found]
        if shards_view:
            shards_view(f"shard_{t}", paths)
            continue
        for i, path in enumerate(paths):
            parquet_view(f"{t}_{i}", path)
        sql_view(f"shard_{t}", " UNION ALL ".join(f"SELECT {i} AS shard, * FROM {t}_{i}" for i in range(len(paths))))
    for name, select in union_views():
        sql_view(name, select)
    for t in PLAN_TABLES:
        parquet_view(t, source / f"{t}.parquet")
    for name, select in audit_views():
        sql_view(name, select)
    return found


# The times of the resources rows (the tables hold microseconds, which is all they need).
TIMES = {"export_time", "last_updated"}


def _csv_resources(engine):
    """The resources rows with their times written as the binary's CSV writes them: RFC 3339 in
    UTC, `Z`, and 0, 3 or 6 fraction digits as the value needs."""
    def text(c):
        if engine == "duckdb":
            micros, seconds = f"epoch_us({c})", f"strftime({c} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S')"
            pad = lambda v, n: f"lpad(CAST({v} AS VARCHAR), {n}, '0')"
        else:
            micros, seconds = f"unix_micros({c})", f"date_format({c}, \"yyyy-MM-dd'T'HH:mm:ss\")"
            pad = lambda v, n: f"lpad(CAST({v} AS STRING), {n}, '0')"
        frac = f"({micros} % 1000000)"
        return (
            f"CASE WHEN {c} IS NULL THEN NULL ELSE {seconds} || CASE WHEN {frac} = 0 THEN '' "
            f"WHEN {frac} % 1000 = 0 THEN '.' || {pad(f'{frac} DIV 1000' if engine == 'spark' else f'{frac} // 1000', 3)} "
            f"ELSE '.' || {pad(frac, 6)} END || 'Z' END AS {c}"
        )
    columns = [
        "export_id", "client_id", "export_time", "level", "group_id", "patient_id",
        "resource_type", "resource_id", "version_id", "last_updated", "source",
    ]
    cols = ", ".join(text(c) if c in TIMES else c for c in columns)
    return f"SELECT {cols} FROM ({TABLES['resources']}) audit_rows"


def _csv_exports(engine):
    """The exports rows as the binary's CSV writes them: times in exact nanoseconds (rfc3339_ns
    of the plan's *_ns columns), list columns as their items with one space between."""
    select = TABLES["exports"]
    for c in ("export_time", "request_end", "status_transaction_time"):
        select = _once(select, f"p.{c},", f"rfc3339_ns(p.{c}_ns) AS {c},")
    for c in ("scopes", "access_policies", "allowed_types", "requested_types", "exported_types"):
        joined = f"array_to_string(p.{c}, ' ')" if engine == "duckdb" else f"array_join(p.{c}, ' ')"
        select = _once(select, f"p.{c},", f"CASE WHEN size(p.{c}) > 0 THEN {joined} END AS {c},"
                       if engine == "spark" else f"CASE WHEN len(p.{c}) > 0 THEN {joined} END AS {c},")
    return select


def _once(text, old, new):
    if text.count(old) != 1:
        raise AssertionError(f"sql/audit.sql: the exports table should name {old!r} once")
    return text.replace(old, new)


def as_binary_csv(table, engine):
    """The SELECT of output table `table` whose cells are written as the binary's CSV writes
    them (findings hold text only)."""
    if table == "resources":
        return _csv_resources(engine)
    if table == "exports":
        return _csv_exports(engine)
    return TABLES[table]


def incomplete_lines(found, exports):
    """What to say of the incomplete exports, one line each after a count."""
    if not found:
        return [f"all {exports} exports complete"]
    return [f"{len(found)} of {exports} exports incomplete: their rows are not the whole answer"] + [
        f"  incomplete: export {export_id}: {because}" for export_id, because in found
    ]
