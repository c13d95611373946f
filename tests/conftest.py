"""Shared fixtures. Caches live in the real edgeforge cache (``$EDGEFORGE_CACHE`` or
``~/.cache/edgeforge``) so Debian roots, zig's libc builds and ccache survive across runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgeforge_testing import FIXTURE_RECIPE, FIXTURES

from edgeforge.fetch import default_cache_dir


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
