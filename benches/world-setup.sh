# Sourced by benches/scale.sh and benches/shards.sh (from the repository root, with `k`, `world`
# and `name` set): builds the release binaries, generates the world of K Synthea clones if it is
# absent, installs the Python readers and Java, and makes a scratch folder removed at exit.
# Sets `bin`, `python`, `work`, JAVA_HOME and TZ, and the `peak` function (wall time and peak RSS
# of a command's whole process tree, benches/peak_rss.py).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/bulk-audit-target}"
cargo build --release --locked --workspace >&2
bin="$CARGO_TARGET_DIR/release/bulk-audit"
if [ ! -d "$world/history" ]; then
    "$CARGO_TARGET_DIR/release/make-world" "$world" --clones "$k" --requests 5000 --format fhir >&2
fi
python="$(scripts/install-readers)"
java="$(scripts/install-java)"
export JAVA_HOME="$(dirname "$(dirname "$(readlink -f "$java")")")" TZ=UTC
work="$(mktemp -d "${TMPDIR:-/tmp}/bulk-audit-$name.XXXXXX")"
trap 'rm -rf "$work"' EXIT
peak() { python3 benches/peak_rss.py "$@"; }
