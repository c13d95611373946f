"""Helpers shared by the test modules (a module of its own: several conftest.py files exist,
so `from conftest import ...` would be ambiguous)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FIXTURE_RECIPE = FIXTURES / "edgemath.toml"


def run_edgeforge(*args: str, cache: Path, env: dict[str, str] | None = None,
                  timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user runs it."""
    full_env = {**os.environ, "EDGEFORGE_CACHE": str(cache), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgeforge", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)
