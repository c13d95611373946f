"""Lifetimes that cannot break, under CPython and PyPy: model bytes pinned for the
interpreter's life, tensor() views refused while any derived array is alive, and
Delegate.close() refused while an interpreter uses the delegate.

Each check runs in runtime_checks.py as a subprocess of the implementation under test
(this pytest's CPython, and Debian's PyPy with numpy from PyPI in a venv under the cache),
so a dangling pointer shows as a crash of that process, reported with its signal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import rt_models
import rt_support
from edgeforge_testing import skip_or_fail

IMPLEMENTATIONS = ("cpython", "pypy")


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def python(request: pytest.FixtureRequest, library: str) -> Path | str:
    if request.param == "cpython":
        return sys.executable
    path, reason = rt_support.pypy_python()
    if path is None:
        skip_or_fail(reason)  # CI installs pypy3: there it must run
    return path


@pytest.fixture(scope="module")
def add_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lifetimes") / "add_dynamic.tflite"
    path.write_bytes(rt_models.add_model(dynamic=True))
    return path


@pytest.fixture(scope="module")
def delegate_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = rt_support.build_test_delegate(tmp_path_factory.mktemp("delegate"))
    if out is None:
        skip_or_fail("no C compiler (cc/gcc) to build the test delegate")
    return out


def test_model_content_stays_valid_after_the_caller_drops_it(
        python: Path | str, library: str, mediapipe: dict[str, Path]) -> None:
    # iris_landmark: the model the PyPy segfault was measured on (issue 10).
    result = rt_support.run_check(python, "model_bytes", [str(mediapipe["iris_landmark"])],
                                  library)
    assert result["kinds"] == ["bytes", "bytearray", "memoryview"]
    print(result["implementation"], result["version"], "numpy", result["numpy"])


def test_views_and_everything_derived_from_them_block_reallocation(
        python: Path | str, library: str, add_model_path: Path) -> None:
    result = rt_support.run_check(python, "views", [str(add_model_path)], library)
    assert len(result["refused"]) == 7
    for calls in result["refused"].values():
        assert calls == ["allocate_tensors", "invoke", "resize_tensor_input"]


def test_delegate_close_is_refused_while_an_interpreter_uses_it(
        python: Path | str, library: str, add_model_path: Path, delegate_lib: Path) -> None:
    result = rt_support.run_check(python, "delegate_close",
                                  [str(add_model_path), str(delegate_lib)], library)
    assert result["closed"] is True
