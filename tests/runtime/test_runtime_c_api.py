"""The C side of the host's tflite-edge-lib wheel: its headers are enough to compile a C
program against its library (recipes/smoke/tflite_smoke_driver.c, the smoke driver of the
musl targets), and that program computes what tflite_edge computes from Python."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from edgeforge_testing import TFLITE_WHEEL_DIR_ENV, pipeline_host_wheel, skip_or_fail
from tflite_edge import Interpreter

from edgeforge.recipe import RECIPES_DIR

DRIVER = RECIPES_DIR / "smoke" / "tflite_smoke_driver.c"
MODEL = "face_detection_short_range"


def _python_smoke() -> ModuleType:
    """The Python smoke script the C driver mirrors: its input pattern is the contract."""
    spec = importlib.util.spec_from_file_location(
        "tflite_smoke", RECIPES_DIR / "smoke" / "tflite_smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def host_wheel_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel = pipeline_host_wheel()
    if wheel is None:
        skip_or_fail(f"{TFLITE_WHEEL_DIR_ENV} is not set (the pipeline's tflite-edge-lib wheels)")
    out = tmp_path_factory.mktemp("wheel")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(out)
    return out / "tflite_edge_lib"


def test_c_program_builds_against_the_wheel_and_matches_python(
        host_wheel_tree: Path, mediapipe: dict[str, Path], tmp_path: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler: apt-get install gcc"
    driver = tmp_path / "driver"
    lib = host_wheel_tree / "lib"
    subprocess.run([cc, "-O1", "-Wall", "-Werror", str(DRIVER), "-o", str(driver),
                    "-I", str(host_wheel_tree / "include"), "-L", str(lib),
                    "-ltensorflowlite_c", f"-Wl,-rpath,{lib}"], check=True,
                   capture_output=True, text=True)
    env = {**os.environ, "EDGEFORGE_SOURCE_MEDIAPIPE": str(mediapipe[MODEL].parent)}
    proc = subprocess.run([str(driver)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    from_c = json.loads(proc.stdout)
    assert set(from_c) == {"library", "machine", "xnnpack", "reference_kernels"}

    it = Interpreter(model_path=str(mediapipe[MODEL]), num_threads=1)
    it.allocate_tensors()
    (inp,) = it.get_input_details()
    it.set_tensor(inp["index"], _python_smoke().pattern(tuple(inp["shape"]), np.float32))
    it.invoke()
    for out in it.get_output_details():
        value = it.get_tensor(out["index"]).astype(np.float64)
        for run in ("xnnpack", "reference_kernels"):
            got = from_c[run][out["name"]]
            assert got["shape"] == list(value.shape)
            np.testing.assert_allclose(got["head"], value.ravel()[:8], rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(got["sum"], value.sum(), rtol=1e-4)
            np.testing.assert_allclose(got["max"], value.max(), rtol=1e-4, atol=1e-4)
