"""recipes/tflite/no_demangle.cc: what it claims, with the compiler the tflite recipe uses.

Linked into a shared library before zig's static libc++abi (as the recipe links it into
libtensorflowlite_c and the shim), it keeps libc++abi's demangler out (more than 100 KB of
code), and an exception that leaves the library through ctypes (what the shim exists to
prevent) ends the process with its type named mangled, its what() message still there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from edgeforge_testing import REPO

from edgeforge.builders.compilers import write_compilers
from edgeforge.toolchain import resolve_target

NO_DEMANGLE = REPO / "src" / "edgeforge" / "recipes" / "tflite" / "no_demangle.cc"
THROWS = """
#include <stdexcept>
namespace tflite { struct Boom : std::runtime_error { using std::runtime_error::runtime_error; }; }
extern "C" __attribute__((visibility("default"))) void boom() { throw tflite::Boom("bad model"); }
"""


def test_uncaught_exception_is_named_mangled_and_the_demangler_is_gone(
        tmp_path: Path, edgeforge_cache: Path) -> None:
    host = resolve_target(None)
    if host.backend != "zig":
        pytest.skip(f"the host toolchain {host.name} does not build with zig")
    cxx = write_compilers(host, tmp_path / "bin", edgeforge_cache).cxx
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(edgeforge_cache / "zig"),
           "ZIG_LOCAL_CACHE_DIR": str(edgeforge_cache / "zig-local")}
    src = tmp_path / "throws.cc"
    src.write_text(THROWS)
    runs = {}
    for name, extra in {"plain": [], "no-demangle": [str(NO_DEMANGLE)]}.items():
        lib = tmp_path / f"lib{name}.so"
        subprocess.run([str(cxx), "-O2", "-s", "-fPIC", "-shared", "-fvisibility=hidden",
                        str(src), *extra, "-o", str(lib)], check=True, env=env, timeout=600)
        proc = subprocess.run([sys.executable, "-c",
                               f"import ctypes; ctypes.CDLL({str(lib)!r}).boom()"],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode < 0, proc  # abort()
        runs[name] = (lib.stat().st_size, proc.stderr)
    assert "uncaught exception of type tflite::Boom: bad model" in runs["plain"][1]
    assert "uncaught exception of type N6tflite4BoomE: bad model" in runs["no-demangle"][1]
    assert runs["plain"][0] - runs["no-demangle"][0] > 100_000, runs
