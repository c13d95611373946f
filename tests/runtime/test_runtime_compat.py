"""tflite-edge against tflite-runtime 2.14.0 on real models, in the same test run.

Every model that TFLite's builtin ops run from PyPI's mediapipe 0.10.14 wheel, plus the
generated int8 model, goes through the same script (runtime_jobs.py) three times with the
same inputs and thread count:

* tflite-runtime 2.14.0 (PyPI x86_64 wheel) in its venv, numpy 1.x: the reference;
* tflite-edge in that same venv (numpy 1.x);
* tflite-edge in this process's Python (numpy 2.x on the CI machine).

Outputs must agree within TOLERANCE; tensor details (names, indices, shapes, shape
signatures, dtypes, quantization) must be identical.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rt_models
import rt_support

NUM_THREADS = 2
#: Float outputs agree to max|edge - ref| <= TOLERANCE * max(1, max|ref|) per output
#: (quantized and integer outputs: exactly). Both run TFLite 2.14 kernels with XNNPACK as
#: the default delegate, but they are different builds (compiler, flags), which may
#: contract or reorder float operations. Measured worst case: 2.3e-6 (hand_landmark_full).
TOLERANCE = 1e-5
MODELS = (*rt_support.BUILTIN_OP_MODELS, "int8_generated")


def _inputs_for(details: list[dict[str, Any]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for i, d in enumerate(details):
        shape = d["shape"]
        if np.issubdtype(d["dtype"], np.floating):
            out[str(i)] = rng.uniform(-1, 1, size=shape).astype(d["dtype"])
        else:
            info = np.iinfo(d["dtype"])
            out[str(i)] = rng.integers(info.min, info.max, size=shape,
                                       endpoint=True).astype(d["dtype"])
    return out


@pytest.fixture(scope="module")
def runs(library: str, mediapipe: dict[str, Path], reference_python: Path,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    from tflite_edge import Interpreter

    work = tmp_path_factory.mktemp("compat")
    paths = dict(mediapipe)
    int8_path = work / "int8_generated.tflite"
    int8_path.write_bytes(rt_models.int8_model()[0])
    paths["int8_generated"] = int8_path
    names = [*MODELS, *rt_support.CUSTOM_OP_MODELS]
    jobs: dict[str, list[dict[str, Any]]] = {"ref": [], "edge_np1": [], "edge_host": []}
    for seed, name in enumerate(names):
        details = Interpreter(model_path=str(paths[name])).get_input_details()
        inputs = work / f"{name}-in.npz"
        np.savez(inputs, **_inputs_for(details, seed))
        for key in jobs:
            jobs[key].append({"kind": "run", "model": str(paths[name]),
                              "num_threads": NUM_THREADS, "inputs": str(inputs),
                              "outputs": str(work / f"{name}-{key}.npz")})
    env = rt_support.runtime_env(library)
    results = {
        "ref": rt_support.run_jobs(reference_python, "tflite_runtime", jobs["ref"], work),
        "edge_np1": rt_support.run_jobs(reference_python, "tflite_edge", jobs["edge_np1"],
                                        work, env=env),
        "edge_host": rt_support.run_jobs(sys.executable, "tflite_edge", jobs["edge_host"],
                                         work, env=env),
    }
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        out[name] = {}
        for key in jobs:
            result = results[key][i]
            npz = Path(jobs[key][i]["outputs"])
            if npz.exists():
                with np.load(npz) as z:
                    result["arrays"] = [z[str(j)] for j in range(len(z.files))]
            out[name][key] = result
    return out


def test_numpy_versions_differ_between_the_two_pythons(reference_python: Path) -> None:
    import subprocess

    ver = subprocess.run([str(reference_python), "-c", "import numpy; print(numpy.__version__)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert ver.startswith("1."), ver
    if not np.__version__.startswith("2."):
        pytest.skip(f"this Python has numpy {np.__version__}; numpy 2 is covered on CI")


@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_tflite_runtime(runs: dict[str, dict[str, Any]], name: str) -> None:
    ref = runs[name]["ref"]
    assert "error" not in ref, ref.get("error")
    for key in ("edge_np1", "edge_host"):
        edge = runs[name][key]
        assert "error" not in edge, f"{key}: {edge.get('error')} at {edge.get('where')}"
        assert len(edge["arrays"]) == len(ref["arrays"])
        for j, (a, b) in enumerate(zip(edge["arrays"], ref["arrays"], strict=True)):
            assert a.dtype == b.dtype and a.shape == b.shape, (key, j)
            if np.issubdtype(a.dtype, np.floating):
                scale = max(1.0, float(np.abs(b).max(initial=0.0)))
                err = float(np.abs(a.astype(np.float64) - b).max(initial=0.0)) / scale
                print(f"{name} output {j} ({key}): max error {err:.2e} of scale {scale:.3g}")
                assert err <= TOLERANCE, f"{name} output {j} ({key}): {err:.2e}"
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{name} output {j} ({key})")


@pytest.mark.parametrize("name", MODELS)
def test_tensor_details_match_tflite_runtime(runs: dict[str, dict[str, Any]],
                                             name: str) -> None:
    ref = runs[name]["ref"]
    for key in ("edge_np1", "edge_host"):
        edge = runs[name][key]
        assert edge["inputs"] == ref["inputs"], key
        assert edge["outputs"] == ref["outputs"], key
        assert edge["signatures"] == ref["signatures"], key
        assert edge["tensors_before_allocate"] == ref["tensors_before_allocate"], key
        # After allocation both list the model's tensors, identical, plus the temporaries
        # TFLite's kernels add in Prepare, which depend on how the library was built (e.g.
        # whether CONV_2D takes the ruy or the im2col path), so only the model's are compared.
        n_model = 1 + max((t["index"] for t in ref["tensors_before_allocate"]), default=-1)
        ours = [t for t in edge["tensors"] if t["index"] < n_model]
        theirs = [t for t in ref["tensors"] if t["index"] < n_model]
        assert ours == theirs, key


@pytest.mark.parametrize("name", rt_support.CUSTOM_OP_MODELS)
def test_custom_op_models_fail_the_same_way(runs: dict[str, dict[str, Any]], name: str) -> None:
    ref_error = runs[name]["ref"]["error"]
    for key in ("edge_np1", "edge_host"):
        error = runs[name][key]["error"]
        assert error.startswith("RuntimeError: "), error
        op = ref_error.split("unresolved custom op: ")[1].split(".")[0]
        assert f"unresolved custom op: {op}." in error


def test_sparse_models_report_sparsity(library: str, mediapipe: dict[str, Path]) -> None:
    """tflite-runtime 2.14.0 segfaults reading these models' sparsity parameters; tflite-edge
    reads them from the flatbuffer."""
    from tflite_edge import Interpreter

    for name in ("face_detection_full_range_sparse", "pose_detection"):
        it = Interpreter(model_path=str(mediapipe[name]))
        it.allocate_tensors()
        sparse = [d for d in it.get_tensor_details() if d["sparsity_parameters"]]
        assert sparse, name
        for d in sparse:
            sp = d["sparsity_parameters"]
            assert sp["traversal_order"].dtype == np.int32
            assert len(sp["dim_metadata"]) == len(sp["traversal_order"])
            assert all(m["format"] in (0, 1) for m in sp["dim_metadata"])
