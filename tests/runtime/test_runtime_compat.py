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


# -- the drop-in gaps of issue 10: the same call through both runtimes ------------------

GAP_CASES = (
    "unknown_op_resolver", "resize_bad_index", "resize_non_input",
    "resize_non_input_then_invoke", "resize_constant", "out_of_range_index",
    "missing_delegate", "strings", "signature_outputs", "subgraph_tensors",
    "ops_before_allocation",
    "ops_without_delegates", "preserve_all_tensors", "disable_delegate_clustering",
    "builtin_ref",
)


def _two_subgraph_model() -> bytes:
    """Subgraph 0: y = x + x (signature "first"); subgraph 1: w = v + v, u = w + v
    (signature "second"); all float32 [1, 4]."""
    from tflite_writer import Table, build

    def tensor(name: str) -> Table:
        return Table().set(0, "[i]", [1, 4]).set(1, "b", 0).set(2, "I", 0).set(3, "str", name)

    def add(a: int, b: int, out: int) -> Table:
        return (Table().set(0, "I", 0).set(1, "[i]", [a, b]).set(2, "[i]", [out])
                .set(3, "B", 11).set(4, "table", Table()))

    def subgraph(names: list[str], ops: list[Table], name: str) -> Table:
        return (Table().set(0, "[table]", [tensor(n) for n in names]).set(1, "[i]", [0])
                .set(2, "[i]", [len(names) - 1]).set(3, "[table]", ops).set(4, "str", name))

    def signature(key: str, index: int, names: list[str]) -> Table:
        def entry(i: int) -> Table:
            return Table().set(0, "str", names[i]).set(1, "I", i)
        return (Table().set(0, "[table]", [entry(0)]).set(1, "[table]", [entry(len(names) - 1)])
                .set(2, "str", key).set(4, "I", index))

    first, second = ["x", "y"], ["v", "w", "u"]
    model = (Table().set(0, "I", 3)
             .set(1, "[table]", [Table().set(0, "b", 0).set(2, "i", 1).set(3, "i", 0)])
             .set(2, "[table]", [subgraph(first, [add(0, 0, 1)], "main"),
                                 subgraph(second, [add(0, 0, 1), add(1, 0, 2)], "second")])
             .set(3, "str", "two subgraphs").set(4, "[table]", [Table()])
             .set(7, "[table]", [signature("first", 0, first), signature("second", 1, second)]))
    return build(model)


def _gap_models(work: Path) -> dict[str, Path]:
    from tflite_writer import OP_ADD, Model, Op, Table, Tensor

    f32 = np.float32
    two_outputs = Model(  # outputs listed z, a: tflite_runtime's runner sorts them a, z
        [Tensor("x", f32, (1, 4)), Tensor("z", f32, (1, 4)), Tensor("a", f32, (1, 4))],
        [Op(OP_ADD, [0, 0], [1], 11, Table()), Op(OP_ADD, [1, 0], [2], 11, Table())],
        [0], [1, 2], signature_key="sig")
    strings = Model([Tensor("s", np.bytes_, (3,))], [], [0], [0])
    paths = {"add": rt_models.add_model(), "two_outputs": two_outputs.to_bytes(),
             "strings": strings.to_bytes(), "two_subgraphs": _two_subgraph_model(),
             "int8": rt_models.int8_model()[0]}
    out = {}
    for name, data in paths.items():
        out[name] = work / f"{name}.tflite"
        out[name].write_bytes(data)
    return out


@pytest.fixture(scope="module")
def gaps(library: str, mediapipe: dict[str, Path], reference_python: Path,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    work = tmp_path_factory.mktemp("gaps")
    models = _gap_models(work)
    model_of = {"strings": models["strings"], "signature_outputs": models["two_outputs"],
                "subgraph_tensors": models["two_subgraphs"], "resize_constant": models["int8"],
                "ops_before_allocation": mediapipe["face_detection_short_range"],
                "ops_without_delegates": mediapipe["face_detection_short_range"]}
    jobs = [{"kind": "compat", "case": case, "model": str(model_of.get(case, models["add"])),
             "library": str(work / "no-such-dir" / "libno_such_delegate.so")}
            for case in GAP_CASES]
    env = rt_support.runtime_env(library)
    ref = rt_support.run_jobs(reference_python, "tflite_runtime", jobs, work)
    edge = rt_support.run_jobs(sys.executable, "tflite_edge", jobs, work, env=env)
    return {case: {"ref": r, "edge": e} for case, r, e in zip(GAP_CASES, ref, edge, strict=True)}


@pytest.mark.parametrize("case", ["strings", "signature_outputs", "subgraph_tensors",
                                  "ops_before_allocation", "ops_without_delegates",
                                  "resize_non_input"])
def test_gap_same_result_as_tflite_runtime(gaps: dict[str, dict[str, Any]], case: str) -> None:
    ref, edge = gaps[case]["ref"], gaps[case]["edge"]
    assert "value" in ref, ref
    assert edge == ref


@pytest.mark.parametrize("case,kind", [("unknown_op_resolver", "ValueError"),
                                       ("resize_bad_index", "RuntimeError"),
                                       ("missing_delegate", "OSError"),
                                       ("missing_delegate", "ValueError")])
def test_gap_same_exception_as_tflite_runtime(gaps: dict[str, dict[str, Any]], case: str,
                                              kind: str) -> None:
    ref, edge = gaps[case]["ref"], gaps[case]["edge"]
    if case == "missing_delegate" and kind == "ValueError":
        # tflite_runtime raises OSError from the dynamic loader; tflite_edge's error is both,
        # so code written for either except clause keeps working.
        assert ref["raised"][0] == "OSError", ref
    else:
        assert kind in ref["raised"], ref
    assert kind in edge["raised"], edge


@pytest.mark.parametrize("case,kind", [("out_of_range_index", "ValueError"),
                                       ("resize_non_input_then_invoke", "RuntimeError"),
                                       ("resize_constant", "RuntimeError")])
def test_gap_same_message_as_tflite_runtime(gaps: dict[str, dict[str, Any]], case: str,
                                            kind: str) -> None:
    ref, edge = gaps[case]["ref"], gaps[case]["edge"]
    assert ref["raised"][0] == edge["raised"][0] == kind, (edge, ref)
    assert edge["message"] == ref["message"], (edge, ref)


@pytest.mark.parametrize("case", ["preserve_all_tensors",
                                  "disable_delegate_clustering", "builtin_ref"])
def test_gap_the_c_api_cannot_close_is_a_clear_error(gaps: dict[str, dict[str, Any]],
                                                     case: str) -> None:
    """What TFLite's C API has no call for (docs/runtime.md says which): tflite_runtime runs
    it, tflite_edge refuses with an error naming the C API, never silently differs."""
    ref, edge = gaps[case]["ref"], gaps[case]["edge"]
    assert "value" in ref, ref
    assert edge.get("raised", [None])[0] in ("ValueError", "RuntimeError"), edge
    assert "C API" in edge["message"], edge
