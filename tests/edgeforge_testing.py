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
TFLITE_VERSION = "2.14.1"
TFLITE_WHEEL_DIR_ENV = "EDGEFORGE_TFLITE_WHEEL_DIR"  # the pipeline's tflite-edge-lib wheels


def skip_or_fail(reason: str) -> None:
    """Skip a test whose input is missing, or fail it in CI (EDGEFORGE_REQUIRE_TFLITE set),
    where the real TFLite artifacts must be tested, never skipped."""
    import pytest

    if os.environ.get("EDGEFORGE_REQUIRE_TFLITE"):
        pytest.fail(f"EDGEFORGE_REQUIRE_TFLITE is set but {reason}")
    pytest.skip(reason)


def pipeline_host_wheel() -> Path | None:
    """The host's tflite-edge-lib wheel the pipeline built (``$EDGEFORGE_TFLITE_WHEEL_DIR``),
    or None when the variable is unset; a directory without it fails the test."""
    import pytest

    from edgeforge.toolchain import resolve_target

    directory = os.environ.get(TFLITE_WHEEL_DIR_ENV)
    if not directory:
        return None
    tag = resolve_target(None).platform_tag
    wheels = sorted(Path(directory).glob(f"tflite_edge_lib-{TFLITE_VERSION}-py3-none-*.whl"))
    matching = [w for w in wheels if w.name.endswith(f"-{tag}.whl")]
    if not matching:
        pytest.fail(f"{TFLITE_WHEEL_DIR_ENV}={directory} holds no {tag} tflite_edge_lib wheel "
                    f"(found: {[w.name for w in wheels]})")
    return matching[0]


def run_edgeforge(*args: str, cache: Path, env: dict[str, str] | None = None,
                  timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess, as a user runs it."""
    full_env = {**os.environ, "EDGEFORGE_CACHE": str(cache), **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgeforge", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, check=False)
