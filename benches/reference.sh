#!/usr/bin/env bash
# The reference benchmark of issue 3, side by side in one run on the same files:
#   generate the reference world with the world generator (`world/`: Synthea cloned K times,
#   ~1.77 GB of history at K=19),
#   then time the parse floor (alone, and with the SHA-256 of every input that the SPEC's
#   manifest needs), bulk-audit (plain and .zst inputs) and the DuckDB peer,
#   check that bulk-audit's rows equal the peer's and the generator's truth, and print a table.
#
#   benches/reference.sh [K] [WORLD_DIR]      (defaults: 19, /tmp/bulk-audit-world-K)
#   ROUNDS=5 benches/reference.sh             (runs per measurement, median reported; default 3)
#
# Needs ../shared/bench/duckdb_peer.py beside the repository for the peer column; the peer's
# virtualenv is created in ~/.cache/duckdb-peer on first use (pip install duckdb).
set -euo pipefail
cd "$(dirname "$0")/.."
K="${1:-19}"
WORLD="${2:-/tmp/bulk-audit-world-$K}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulk-audit-target}"
BIN="$CARGO_TARGET_DIR/release"
PEER="$(pwd)/../shared/bench/duckdb_peer.py"

cargo build --release --quiet --features hooks --bin bulk-audit --example parse_floor
cargo build --release --quiet -p bulk-audit-world
if [ ! -f "$WORLD/truth/expected_resources.csv" ]; then
  "$BIN/make-world" "$WORLD" --clones "$K" --requests 5000 --format fhir | head -n 1
fi
if [ ! -d "$WORLD-zst/history" ]; then
  mkdir -p "$WORLD-zst/history" "$WORLD-zst/logs"
  for f in "$WORLD"/history/*.ndjson; do zstd -q -3 -T2 -f "$f" -o "$WORLD-zst/history/$(basename "$f").zst"; done
  cp "$WORLD"/logs/* "$WORLD-zst/logs/"
fi
MB=$(du -cb "$WORLD"/history/*.ndjson "$WORLD"/logs/*.ndjson | tail -n 1 | cut -f1)
MB=$(python3 -c "print(round($MB / 1e6, 1))")
cat "$WORLD"/history/* "$WORLD"/logs/* > /dev/null   # into the page cache

measure() {  # name, command...: prints "name seconds peak_kb"
  local name="$1"; shift
  local t; t=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$t" "$@" > /dev/null 2>&1 || { echo "$name failed" >&2; cat "$t" >&2; exit 1; }
  echo "$name $(cat "$t")"
  rm -f "$t"
}

if [ -f "$PEER" ] && [ ! -x "$HOME/.cache/duckdb-peer/bin/python" ]; then
  python3 -m venv "$HOME/.cache/duckdb-peer" && "$HOME/.cache/duckdb-peer/bin/pip" install -q duckdb
fi
# The machine is shared and noisy (single runs vary by ±20%): every run is repeated ROUNDS times,
# interleaved, and the table gives the median seconds and the largest peak RSS.
ROUNDS="${ROUNDS:-3}"
rows=()
for round in $(seq "$ROUNDS"); do
  rows+=("$(measure "parse-floor" "$BIN/examples/parse_floor" "$WORLD/history")")
  rows+=("$(measure "parse+sha256-floor" "$BIN/examples/parse_floor" --sha256 "$WORLD/history")")
  rows+=("$(measure "bulk-audit(csv)" "$BIN/bulk-audit" audit --logs "$WORLD/logs" --history "$WORLD/history" --format csv --out "$WORLD/out-csv" --force)")
  rows+=("$(measure "bulk-audit(parquet)" "$BIN/bulk-audit" audit --logs "$WORLD/logs" --history "$WORLD/history" --out "$WORLD/out-parquet" --force)")
  rows+=("$(measure "bulk-audit(.zst,csv)" "$BIN/bulk-audit" audit --logs "$WORLD-zst/logs" --history "$WORLD-zst/history" --format csv --out "$WORLD/out-zst" --force)")
  if [ -f "$PEER" ]; then
    mv "$WORLD/truth/expected_resources.csv" "$WORLD/truth/expected.csv.hold"   # time the peer alone, not its comparison
    rows+=("$(measure "duckdb-peer" "$HOME/.cache/duckdb-peer/bin/python" "$PEER" "$WORLD" --threads 2)")
    mv "$WORLD/truth/expected.csv.hold" "$WORLD/truth/expected_resources.csv"
  fi
done

printf '%s\n' "${rows[@]}" | python3 benches/summarize.py "$MB"
echo
python3 benches/compare_rows.py "$WORLD/out-csv/resources.csv" "$WORLD/truth/expected_resources.csv" "truth"
python3 benches/compare_rows.py "$WORLD/out-zst/resources.csv" "$WORLD/truth/expected_resources.csv" "truth (.zst run)"
if [ -f "$WORLD/truth/duckdb_resources.csv" ]; then
  python3 benches/compare_rows.py "$WORLD/out-csv/resources.csv" "$WORLD/truth/duckdb_resources.csv" "DuckDB peer"
fi
