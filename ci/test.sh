#!/usr/bin/env bash
# The test command (README). Lint; build the real TFLite 2.14.1 library for this machine through
# the pipeline (fetch, build, wheel, audit, smoke; ccache and every download cached under
# ~/.cache/edgeforge, so a rerun takes a minute), and for linux-aarch64 and linux-armv7l; then
# every test, the runtime's against the host library, the QEMU rows against the cross ones, and
# the fixture pipeline under QEMU for five targets.
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything runs in the venv ci/setup.sh made: its python and the tools it installed.
VENV=${EDGEFORGE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  echo "ci/test.sh: no $VENV; run bash ci/setup.sh first" >&2
  exit 2
fi
VIRTUAL_ENV=$(cd "$VENV" && pwd)
export VIRTUAL_ENV
export PATH="$VIRTUAL_ENV/bin:$PATH"
python3 -m ruff check src tests wheels bench ci

dist=build/ci-dist
rm -rf "$dist" build/ci-lib build/ci-plugins
# the host TFLite wheel as a release: wheel, packages, sdists, SHA256SUMS, manifest, index
python3 -m edgeforge release --config ci/release-host.toml --out "$dist"
# The aarch64 and armv7l TFLite wheels (cross-built, each smoke-tested under QEMU by the
# pipeline): the QEMU rows of the Python matrix (bullseye armhf, trixie arm64), the npm and
# Conan tests install them
cross=build/ci-cross
rm -rf "$cross"
python3 -m edgeforge build tflite --target linux-aarch64 --target linux-armv7l --dist "$cross"
# TFLite's sample external delegate as a plugin wheel: the runtime tests install it by name
python3 -m edgeforge build tflite-dummy-delegate --dist build/ci-plugins
python3 - "$dist" build/ci-lib <<'PY'
import sys, zipfile, pathlib
dist, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = dist.glob("tflite_edge_lib-*.whl")
zipfile.ZipFile(wheel).extractall(out)
for p in (out / "tflite_edge_lib" / "bin").glob("*"):
    p.chmod(0o755)
PY
export TFLITE_EDGE_LIBRARY="$PWD/build/ci-lib/tflite_edge_lib/lib/libtensorflowlite_c.so"
export EDGEFORGE_TFLITE_WHEEL_DIR="$PWD/$dist"
export EDGEFORGE_DUMMY_DELEGATE_WHEEL_DIR="$PWD/build/ci-plugins"
export EDGEFORGE_CROSS_WHEEL_DIR="$PWD/$cross"
export EDGEFORGE_REQUIRE_TFLITE=1  # the runtime tests fail, never skip, without the library
python3 -m pytest "$@"
