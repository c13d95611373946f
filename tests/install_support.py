"""What the install tests share: edgeforge's own wheel, a cached wheelhouse of its dependencies
from PyPI, fresh venvs, and a local package index (pypiserver) on 127.0.0.1.

PyPI has an unrelated project also called ``edgeforge``: nothing here ever resolves that name
against PyPI. edgeforge's wheel is built from this checkout and installed by path or from the
local index, and pip is always given ``--no-index`` or ``--index-url`` of that index alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from edgeforge_testing import FIXTURES, REPO

from edgeforge.fsutil import file_lock

WHEELHOUSE = "test-wheelhouse"  # under the edgeforge cache: wheels from PyPI, kept across runs


def pip_env(**extra: str) -> dict[str, str]:
    """No user/site pip config (this machine's config adds find-links and indexes), no
    library override, no edgeforge search path from the caller."""
    drop = ("TFLITE_EDGE_LIBRARY", "EDGEFORGE_RECIPE_PATH", "EDGEFORGE_TOOLCHAIN_PATH",
            "VIRTUAL_ENV", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k not in drop}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_NO_INPUT="1", **extra)
    return env


def run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env or pip_env(), cwd=cwd,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
    return proc


def pip(*args: str, python: Path | str = sys.executable, check: bool = True,
        cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return run([str(python), "-m", "pip", *args], env=env, cwd=cwd, timeout=timeout,
               check=check)


def build_edgeforge_wheel(out: Path, scratch: Path) -> Path:
    """edgeforge's wheel, built by pip from a copy of the checkout (setuptools writes build/
    and *.egg-info into the project it builds). The copy keeps recipes/python's symlinks into
    wheels/, so the wheel carries what they point at, as it does from a fresh clone."""
    project = scratch / "edgeforge-src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".*")
    project.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src", symlinks=True, ignore=ignore)
    for package in ("tflite-edge", "tflite-edge-lib"):
        shutil.copytree(REPO / "wheels" / package / "src", project / "wheels" / package / "src",
                        ignore=ignore)
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", str(project), "-w", str(out))
    (wheel,) = out.glob("edgeforge-*-py3-none-any.whl")
    return wheel


def fixture_lib_project(project: Path, recipe: Path, library_env: str = "EDGEMATH_LIBRARY",
                        requires: str = "edgeforge") -> Path:
    """The fixture's binary distribution as a project of its own: ``recipes/`` (the recipe,
    its source tarball and its files) and a ``pyproject.toml`` naming the recipe by path."""
    (project / "recipes").mkdir(parents=True)
    shutil.copy2(recipe, project / "recipes")
    shutil.copy2(FIXTURES / "edgemath-1.0.tar", project / "recipes")
    shutil.copytree(FIXTURES / "edgemath", project / "recipes" / "edgemath",
                    ignore=shutil.ignore_patterns("build*", "__pycache__"))
    (project / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["{requires}"]\nbuild-backend = "edgeforge.backend"\n\n'
        '[project]\nname = "edgemath-lib"\nversion = "1.0"\ndynamic = ["description"]\n\n'
        f'[tool.edgeforge]\nrecipe = "recipes/edgemath.toml"\nlibrary-env = "{library_env}"\n')
    return project


def make_venv(path: Path) -> Path:
    """A fresh venv (no system site-packages); returns its python."""
    run([sys.executable, "-m", "venv", str(path)], timeout=300)
    return path / "bin" / "python"


def wheelhouse(cache: Path, python: Path, requirements: list[str]) -> Path:
    """``<cache>/test-wheelhouse``: wheels (binary only) for ``requirements`` and their
    dependencies, as ``python`` needs them. The first run downloads them from PyPI through pip;
    later runs resolve offline from the directory. ``requirements`` may name local wheels or
    sdists (their dependencies are fetched, they are not kept)."""
    house = cache / WHEELHOUSE
    with file_lock(cache / f"{WHEELHOUSE}.lock", "the test wheelhouse"):
        house.mkdir(parents=True, exist_ok=True)
        offline = pip("install", "--dry-run", "--ignore-installed", "--quiet", "--no-index",
                      "--find-links", str(house), *requirements, python=python, check=False)
        if offline.returncode != 0:
            local = {Path(r).name for r in requirements if Path(r).exists()}
            pip("download", "--only-binary", ":all:", "--dest", str(house), *requirements,
                python=python, timeout=1800)
            for name in local:
                (house / name).unlink(missing_ok=True)
    return house


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_index(directory: Path, log: Path) -> Iterator[str]:
    """pypiserver over ``directory`` on 127.0.0.1 (no fallback to any other index); yields
    the simple index URL."""
    port = free_port()
    pypiserver = Path(sys.executable).with_name("pypi-server")
    argv = [str(pypiserver), "run", "--host", "127.0.0.1", "--port", str(port),
            "--disable-fallback", "--authenticate", ".", "--passwords", ".", "-v",
            "--log-file", str(log), str(directory)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            env=pip_env())
    url = f"http://127.0.0.1:{port}/simple/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"pypiserver did not start:\n{log.read_text()}"
                                         if log.is_file() else "pypiserver did not start"
                                         ) from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
