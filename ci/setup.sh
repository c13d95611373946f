#!/usr/bin/env bash
# Install everything edgeforge needs on a Debian bookworm machine (as root, or with sudo):
# Debian's packages, then a virtual environment of its own (.venv, or $EDGEFORGE_VENV) with
# edgeforge and its [test] extra. Nothing is installed into the machine's Python, so a
# dependency nobody declared fails here rather than on the next machine.
# Idempotent: a second run only checks (the venv is remade when the dependency list changes).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_PACKAGES=(
  cmake ninja-build ccache patch patchelf file xz-utils ca-certificates g++ make python3-venv
  qemu-user-static musl
  binutils-aarch64-linux-gnu binutils-arm-linux-gnueabihf binutils-riscv64-linux-gnu
  g++-aarch64-linux-gnu  # the second compiler backend (--compiler gcc), tested on the fixture
  pypy3  # the runtime's lifetime and thread checks run under PyPy too (numpy from PyPI)
  wine64  # the windows-x86_64 smoke: the fixture's C driver against its DLL under wine
  pkg-config  # tests/test_conan.py builds a program with the Conan package's .pc flags
  libffi-dev zlib1g-dev libssl-dev  # ctypes, zlib, ssl of the free-threaded CPython tests build
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
VENV=${EDGEFORGE_VENV:-.venv}
# The venv is keyed by what it installs: pyproject.toml and this script.
key=$(cat pyproject.toml ci/setup.sh | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.edgeforge-key" 2>/dev/null)" != "$key" ]; then
  echo "==> creating $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  echo "==> pip install -e .[test] into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$key" > "$VENV/.edgeforge-key"
else
  echo "==> $VENV is up to date"
fi

# The npm packages' dependencies (koffi and its prebuilt Linux binaries) from npm, once, under
# the cache: tests/test_npm.py installs the generated packages from a local registry with them.
if command -v npm >/dev/null; then
  echo "==> npm dependencies of the Node.js packages (edgeforge.npm.mirror)"
  "$VENV/bin/python" -m edgeforge.npm.mirror >/dev/null
else
  echo "==> no npm on PATH: the Node.js package tests will skip"
fi
