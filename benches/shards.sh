#!/usr/bin/env bash
# The audit past one machine (BENCHMARKS.md, "Beyond one machine"): the history of the world of K
# Synthea clones (generated if absent, as benches/reference.sh does) cut into PARTS files at line
# boundaries; the one-process audit of those parts beside the shard path: each part indexed on
# its own (JOBS at a time), the plan of their union, `audit --index` of the union, the SQL over the
# shards on DuckDB (--memory-limit MEMORY) and on Spark local[2], and spark-index.py building the
# shards on Spark local[2]. Wall time and the peak RSS of every process (benches/peak_rss.py; one
# line per shard build), and the rows of every path compared with the one-process audit.
#
# TIMES=3 stands the history in three times, the copies' ids renamed (`-c5"` → `-r1c5"`, their
# Clients, AccessPolicies and statuses left out), the same logs: BENCHMARKS.md's K=60 ×3.
# SPARK=0 leaves the two Spark steps out; KEEP=1 keeps the scratch folder (its path is said). A
# step that fails is said and the others still run.
#
#   PARTS=16 JOBS=2 MEMORY=1GB TIMES=1 SPARK=1 benches/shards.sh [K] [WORLD]
set -euo pipefail
cd "$(dirname "$0")/.."
k="${1:-19}"
world="${2:-/tmp/bulk-audit-world-$k}"
parts="${PARTS:-16}"
jobs="${JOBS:-2}"
memory="${MEMORY:-1GB}"
times="${TIMES:-1}"
spark="${SPARK:-1}"
keep="${KEEP:-0}"
name=shards
. benches/world-setup.sh
if [ "$keep" = 1 ]; then
    trap - EXIT
    echo "scratch folder kept: $work" >&2
fi
mkdir -p "$work/parts" "$work/idx"
find -L "$world/history" -type f | sort | xargs cat > "$work/all.ndjson"
split -n "l/$parts" -d -a 3 --additional-suffix=.ndjson "$work/all.ndjson" "$work/parts/part-"
rm "$work/all.ndjson"
for r in $(seq 1 $((times - 1))); do
    for p in "$work"/parts/part-???.ndjson; do
        grep -v -E '"resourceType":"(Client|AccessPolicy|BulkExportStatus)"' "$p" \
            | sed -E "s/-c([0-9]+)\"/-r${r}c\\1\"/g" > "${p%.ndjson}-r$r.ndjson"
    done
done
mb="$(du -sm "$work/parts" | cut -f1)"
echo "world K=$k: $mb MB of history in $parts parts" >&2
cat "$work"/parts/* > /dev/null
peak "audit of the parts (one process, CSV)" "$bin" audit --logs "$world/logs" --history "$work/parts" --format csv --no-report -q --out "$work/one"
peak "index --logs (the logs' shard)" "$bin" index --logs "$world/logs" -q --out "$work/idx/logs"
start="$(date +%s.%N)"
ls "$work"/parts/* | xargs -P "$jobs" -I{} sh -c \
    'python3 benches/peak_rss.py "shard $(basename {})" "$0" index --history {} -q --out "$1/idx/h-$(basename {} .ndjson)"' \
    "$bin" "$work" 2> "$work/shards.log"
end="$(date +%s.%N)"
cat "$work/shards.log" >&2
awk -v s="$start" -v e="$end" -v j="$jobs" '{ if ($(NF-1) + 0 > m) m = $(NF-1) + 0 }
    END { printf "shard builds, %d at a time: %.1f s wall, the largest peak %d MB\n", j, e - s, m }' "$work/shards.log" >&2
peak "plan (small resources of every shard)" "$bin" plan --index "$work/idx" -q --out "$work/plan"
peak "audit --index of the shards (binary, CSV)" "$bin" audit --index "$work/idx" --format csv --no-report -q --out "$work/union"
peak "DuckDB sql over the shards (--memory-limit $memory)" "$python" scripts/duckdb-audit.py "$work/idx" "$work/duckdb-out" --plan "$work/plan" --memory-limit "$memory" || true
if [ "$spark" = 1 ]; then
    peak "Spark local[2] sql over the shards" "$python" scripts/spark-audit.py "$work/idx" "$work/spark-out" --plan "$work/plan" --master "local[2]" || true
    peak "spark-index.py local[2] (shard builds and plan)" "$python" scripts/spark-index.py --bin "$bin" --logs "$world/logs" --history "$work/parts" --out "$work/idx-spark" --master "local[2]" -q || true
fi
for t in resources exports findings; do
    cmp "$work/one/$t.csv" "$work/union/$t.csv" && echo "audit --index of the shards: $t byte-identical" >&2
done
"$python" - "$work" "$spark" <<'PY' >&2
import sys, duckdb
w = sys.argv[1]
for t in ["resources", "exports", "findings"]:
    binary = duckdb.sql(f"SELECT count(*) FROM read_csv('{w}/one/{t}.csv', all_varchar=true)").fetchall()[0][0]
    for name, src in [("duckdb", f"'{w}/duckdb-out/{t}.parquet'"), ("spark", f"'{w}/spark-out/{t}/*.parquet'")]:
        if name == "spark" and sys.argv[2] != "1":
            continue
        try:
            n = duckdb.sql(f"SELECT count(*) FROM read_parquet({src})").fetchall()[0][0]
        except duckdb.Error:
            print(f"{name} {t}: not written")
            continue
        print(f"{name} {t}: {n} rows, the binary {binary}")
PY
