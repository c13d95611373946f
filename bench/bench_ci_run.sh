#!/usr/bin/env bash
# Time CI's own run: a fresh clone of this checkout's HEAD, `CI=true bash .ci/run` in it, as CI
# starts it (no job control, no standard input), and the run's closing lines.
#
#   bash bench/bench_ci_run.sh           # warm: the machine's ~/.cache/edgeforge
#   bash bench/bench_ci_run.sh --cold    # a fresh, empty EDGEFORGE_CACHE (every download, the
#                                        # TFLite build, the Debian roots; not a fresh machine:
#                                        # Debian packages and pip's own cache stay)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/edgeforge-ci-bench.XXXXXX)
git clone -q "$repo" "$work/clone"
if [ "${1:-}" = "--cold" ]; then
  export EDGEFORGE_CACHE="$work/cache"
fi
echo "commit $(git -C "$work/clone" rev-parse --short HEAD); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s)
set +e
(cd "$work/clone" && CI=true nohup bash .ci/run > "$work/ci.log" 2>&1 < /dev/null)
code=$?
set -e
echo "exit $code after $(( $(date +%s) - start )) s; load $(cut -d' ' -f1-3 /proc/loadavg); log $work/ci.log"
grep -E "^=+ .*(passed|failed).* =+$|finished in" "$work/ci.log" | tail -2
