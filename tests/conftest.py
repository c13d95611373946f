"""Shared fixtures. Caches live in the real edgeforge cache (``$EDGEFORGE_CACHE`` or
``~/.cache/edgeforge``) so Debian roots, zig's libc builds and ccache survive across runs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeforge.fetch import default_cache_dir

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FIXTURE_RECIPE = FIXTURES / "edgemath.toml"


@pytest.fixture(scope="session")
def edgeforge_cache() -> Path:
    path = default_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def fixture_recipe() -> Iterator[Path]:
    """The edgemath recipe, with its source tarball made (reproducibly) next to it."""
    sys.path.insert(0, str(FIXTURES))
    try:
        from make_tarball import make_tarball
    finally:
        sys.path.remove(str(FIXTURES))
    make_tarball(FIXTURES / "edgemath", FIXTURES / "edgemath-1.0.tar")
    yield FIXTURE_RECIPE


def run_edgeforge(*args: str, cache: Path, env: dict[str, str] | None = None,
                  timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user runs it."""
    full_env = {**os.environ, "EDGEFORGE_CACHE": str(cache), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgeforge", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)
