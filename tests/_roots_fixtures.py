"""Shared fixtures for tests that need Debian smoke roots (import them from conftest.py).

Roots live in the real cache (``$EDGEFORGE_CACHE`` or ``~/.cache/edgeforge``) so they are built
once and reused across test runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def real_cache_dir() -> Path:
    configured = os.environ.get("EDGEFORGE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "edgeforge"


@pytest.fixture(scope="session")
def edgeforge_cache() -> Path:
    path = real_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path
