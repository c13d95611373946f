#!/usr/bin/env bash
# The test command (README): lint, then every test, including the real TFLite build for the
# host (cached under ~/.cache/edgeforge) and the fixture pipeline under QEMU for five targets.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m ruff check src tests wheels bench ci
python3 -m pytest "$@"
