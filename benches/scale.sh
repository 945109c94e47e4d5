#!/usr/bin/env bash
# The index and SQL paths at scale (BENCHMARKS.md, "Index once, audit many times"): on the world
# of K Synthea clones (generated if absent, as benches/reference.sh does), each ROUNDS times:
# the audit of the dumps, `bulk-audit index` (and the index's size), `audit --index`, and
# sql/audit.sql on DuckDB and on Spark (local[*]) over the index; with PEER=1 also the DuckDB
# peer from NDJSON. Wall time and the peak RSS of each command's whole process tree
# (benches/peak_rss.py), and the rows of every path compared with the audit of the dumps.
#
#   ROUNDS=3 PEER=1 benches/scale.sh [K] [WORLD]
set -euo pipefail
cd "$(dirname "$0")/.."
k="${1:-19}"
world="${2:-/tmp/bulk-audit-world-$k}"
rounds="${ROUNDS:-1}"
name=scale
. benches/world-setup.sh
# Into the page cache; the size counts files behind symbolic links too.
find -L "$world/history" -type f -exec cat {} + > /dev/null
mb="$(find -L "$world/history" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s / 1048576}')"
echo "world K=$k: $mb MB of history" >&2
for round in $(seq "$rounds"); do
    rm -rf "$work"/*
    peak "audit (dumps, CSV)" "$bin" audit --logs "$world/logs" --history "$world/history" --format csv --no-report -q --out "$work/dumps"
    peak "index" "$bin" index --logs "$world/logs" --history "$world/history" -q --out "$work/idx"
    echo "index size $(du -sm "$work/idx" | cut -f1) MB" >&2
    peak "audit --index (CSV)" "$bin" audit --index "$work/idx" --format csv --no-report -q --out "$work/indexed"
    peak "audit --index (resolve only: 0 exports selected)" "$bin" audit --index "$work/idx" --client nobody --format csv --no-report -q --out "$work/none"
    peak "DuckDB sql/audit.sql" "$python" scripts/duckdb-audit.py "$work/idx" "$work/duckdb-out"
    peak "Spark sql/audit.sql (local[*])" "$python" scripts/spark-audit.py "$work/idx" "$work/spark-out"
    if [ "${PEER:-0}" = 1 ]; then
        # The peer (../shared/bench, beside the repository) writes its rows into the world's truth/;
        # its own virtualenv, as benches/reference.sh makes it (it needs a newer DuckDB).
        if [ ! -x "$HOME/.cache/duckdb-peer/bin/python" ]; then
            python3 -m venv "$HOME/.cache/duckdb-peer" && "$HOME/.cache/duckdb-peer/bin/pip" install -q duckdb >&2
        fi
        # Timed alone, not its comparison with the generator's truth (as benches/reference.sh).
        mv "$world/truth/expected_resources.csv" "$world/truth/expected.csv.hold"
        peak "DuckDB peer from NDJSON (2 threads)" "$HOME/.cache/duckdb-peer/bin/python" ../shared/bench/duckdb_peer.py "$world" --threads 2 || true
        mv "$world/truth/expected.csv.hold" "$world/truth/expected_resources.csv"
    fi
    cmp "$work/dumps/resources.csv" "$work/indexed/resources.csv" && echo "audit --index: byte-identical" >&2
    "$python" - "$work" <<'PY' >&2
import sys, duckdb
w = sys.argv[1]
binary = duckdb.sql(f"SELECT count(*) FROM read_csv('{w}/dumps/resources.csv', all_varchar=true)").fetchall()[0][0]
for name, src in [("duckdb", f"'{w}/duckdb.parquet'"), ("spark", f"'{w}/spark.parquet/*.parquet'")]:
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet({src})").fetchall()[0][0]
    print(f"{name}: {n} rows, the binary {binary}")
PY
done
