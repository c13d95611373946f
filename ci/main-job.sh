#!/usr/bin/env bash
# The main job on a fresh Debian machine: install what edgeforge needs, then build the real
# TFLite 2.14.1 C library for this machine from pinned sources, wheel it, audit it and
# smoke-test it on a real model. The wheel lands in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
PY="${EDGEFORGE_VENV:-.venv}/bin/python"
"$PY" -m edgeforge targets
"$PY" -m edgeforge build tflite "$@"
