"""Fixtures for the tflite-edge runtime tests.

The library under test is ``$TFLITE_EDGE_LIBRARY`` (the pipeline-built
libtensorflowlite_c), else the one an installed tflite-edge-lib carries; without either
the tests that need it skip, saying so. tflite_edge is imported from this checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parents[1] / "wheels" / "tflite-edge" / "src",
          HERE.parents[1] / "wheels" / "tflite-edge-lib" / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import rt_support  # noqa: E402
from edgeforge_testing import skip_or_fail  # noqa: E402


@pytest.fixture(scope="session")
def library() -> str:
    path, reason = rt_support.find_library()
    if path is None:
        skip_or_fail(reason)  # CI: the real library must be tested
    return path


@pytest.fixture(scope="session")
def mediapipe(library: str) -> dict[str, Path]:
    models = rt_support.mediapipe_models()
    missing = set(rt_support.BUILTIN_OP_MODELS) - set(models)
    assert not missing, f"the mediapipe wheel lacks {sorted(missing)}"
    return models


@pytest.fixture(scope="session")
def reference_python(library: str) -> Path:
    python, reason = rt_support.reference_python()
    if python is None:
        pytest.skip(reason)
    return python
