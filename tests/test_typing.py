"""mypy over the packages that ship py.typed, as pyproject.toml's [tool.mypy] configures it.

edgeforge and the runtime packages under wheels/*/src tell type checkers their annotations
are true (py.typed): mypy keeps them so. Its cache lives in the edgeforge cache
(``$EDGEFORGE_CACHE`` or ``~/.cache/edgeforge``, under mypy/), one per checkout, so a warm run
rechecks only what changed.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from edgeforge_testing import REPO

from edgeforge import tomlfile


def _config() -> dict[str, object]:
    mypy: dict[str, object] = tomlfile.load(REPO / "pyproject.toml")["tool"]["mypy"]
    return mypy


def _typed_packages() -> set[str]:
    """The import names of the packages that ship py.typed (recipes/python/ only links to the
    ones under wheels/)."""
    roots = [REPO / "src", *sorted((REPO / "wheels").glob("*/src"))]
    return {marker.parent.name for root in roots for marker in root.glob("*/py.typed")}


def test_every_typed_package_is_checked() -> None:
    packages = _config()["packages"]
    assert isinstance(packages, list)
    missing = _typed_packages() - set(packages)
    assert not missing, f"ship py.typed but [tool.mypy] packages leaves them out: {missing}"


def test_mypy(edgeforge_cache: Path) -> None:
    try:
        import mypy  # noqa: F401 - only whether it is installed
    except ImportError:
        pytest.fail("mypy is not installed: pip install -e '.[test]'")
    cache = edgeforge_cache / "mypy" / hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    # No arguments: mypy checks exactly [tool.mypy]'s packages, with its settings.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(cache)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"mypy found errors:\n{proc.stdout}{proc.stderr}", pytrace=False)
