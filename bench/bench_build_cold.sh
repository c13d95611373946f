#!/usr/bin/env bash
# A cold TFLite build through the pipeline, timed (docs/benchmarks.md 2d): sources from the
# download cache, a new work directory, the compiler cache off (CCACHE_DISABLE=1), so every
# compile runs; zig's own caches stay as they are. Prints /usr/bin/time -v's wall and CPU lines
# and the pipeline's step times. Usage: bash bench/bench_build_cold.sh [TARGET ...]
# (default: the host). Run it on an otherwise idle machine; say the load beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${EDGEFORGE_VENV:-.venv}/bin/python
work=$(mktemp -d /tmp/edgeforge-cold-XXXXXX)
trap 'rm -rf "$work"' EXIT
targets=()
for t in "$@"; do targets+=(--target "$t"); done
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
CCACHE_DISABLE=1 /usr/bin/time -v "$PY" -m edgeforge build tflite "${targets[@]}" \
  --work-dir "$work/work" --dist "$work/dist" 2>&1 \
  | grep -E "<== (build|tflite)|Elapsed|User time|System time|audit:|smoke:"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
ls -l "$work"/dist/*.whl
