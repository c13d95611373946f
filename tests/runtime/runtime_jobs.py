"""Run model jobs under tflite-runtime 2.14.0 or tflite-edge: the same code for both.

Usage: python runtime_jobs.py {tflite_runtime|tflite_edge} JOBS.json -> JOBS.json.out.
A job is {"kind": "run" | "bench" | "paired_bench" | "overhead" | "compat", "model": path,
"num_threads": n, ...}; see run_job, bench_job, paired_bench_job, overhead_job and compat_job.
Standalone on purpose (numpy and the runtime only): it runs in the tflite-runtime venv
(numpy<2) as well as on the host (numpy 2); paired_bench needs both runtimes importable.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

import numpy as np

RUNTIME = sys.argv[1] if len(sys.argv) > 2 else "tflite_runtime"
if RUNTIME == "tflite_edge":
    from tflite_edge.interpreter import Interpreter, OpResolverType, load_delegate
else:
    from tflite_runtime.interpreter import Interpreter, OpResolverType, load_delegate


def _details(d: dict[str, Any]) -> dict[str, Any]:
    q = d["quantization_parameters"]
    return {
        "name": d["name"], "index": int(d["index"]), "shape": d["shape"].tolist(),
        "shape_signature": d["shape_signature"].tolist(), "dtype": np.dtype(d["dtype"]).name,
        "quantization": [float(d["quantization"][0]), int(d["quantization"][1])],
        "scales": q["scales"].tolist(), "zero_points": q["zero_points"].tolist(),
        "quantized_dimension": int(q["quantized_dimension"]),
    }


def _all_tensor_details(it: Interpreter) -> list[dict[str, Any]]:
    if RUNTIME == "tflite_edge":
        return [_details(d) for d in it.get_tensor_details()]
    # tflite-runtime 2.14.0's get_tensor_details() segfaults on models with sparse tensors
    # (mediapipe's pose_detection and face_detection_full_range_sparse) in
    # TensorSparsityParameters, so read every other field through the wrapper directly.
    w = it._interpreter
    out = []
    for i in range(w.NumTensors(0)):
        try:  # what get_tensor_details() leaves out (no type, no shape)
            dtype = w.TensorType(i, 0)
            w.TensorSize(i, 0)
        except ValueError:
            continue
        scales, zero_points, qdim = w.TensorQuantizationParameters(i, 0)
        scale, zp = w.TensorQuantization(i, 0)
        out.append({
            "name": w.TensorName(i, 0), "index": i, "shape": w.TensorSize(i, 0).tolist(),
            "shape_signature": w.TensorSizeSignature(i, 0).tolist(),
            "dtype": np.dtype(dtype).name, "quantization": [float(scale), int(zp)],
            "scales": scales.tolist(), "zero_points": zero_points.tolist(),
            "quantized_dimension": int(qdim),
        })
    return out


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Set the inputs from job["inputs"] (npz, keys "0", "1", ... in input order), invoke,
    write the outputs to job["outputs"] (npz, same keys), and report details."""
    it = Interpreter(model_path=job["model"], num_threads=job.get("num_threads"))
    result: dict[str, Any] = {"tensors_before_allocate": _all_tensor_details(it)}
    it.allocate_tensors()
    inputs = np.load(job["inputs"])
    ins = it.get_input_details()
    for i, d in enumerate(ins):
        it.set_tensor(d["index"], inputs[str(i)])
    it.invoke()
    outs = it.get_output_details()
    np.savez(job["outputs"], **{str(i): it.get_tensor(d["index"]) for i, d in enumerate(outs)})
    result.update(inputs=[_details(d) for d in ins], outputs=[_details(d) for d in outs],
                  tensors=_all_tensor_details(it), signatures=it.get_signature_list())
    return result


def _prepare(it: Any, warmup: int) -> None:
    """Allocate, set fixed inputs (uniform in [-1, 1), integers in [-100, 100)), warm up."""
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        if np.issubdtype(d["dtype"], np.floating):
            value = rng.uniform(-1, 1, size=d["shape"])
        else:
            value = rng.integers(-100, 100, size=d["shape"])
        it.set_tensor(d["index"], value.astype(d["dtype"]))
    for _ in range(warmup):
        it.invoke()


def bench_job(job: dict[str, Any]) -> dict[str, Any]:
    """Latency of invoke() (seconds per run) after warm-up, with fixed inputs; on TFLite's own
    kernels (no XNNPACK) when job["kernels"] is "builtin"."""
    options = ({"experimental_op_resolver_type":
                OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
               if job.get("kernels") == "builtin" else {})
    it = Interpreter(model_path=job["model"], num_threads=job.get("num_threads"), **options)
    _prepare(it, job.get("warmup", 5))
    times = []
    deadline = time.perf_counter() + job.get("max_seconds", 30.0)
    for _ in range(job.get("runs", 50)):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return {"times": times}


def paired_bench_job(job: dict[str, Any]) -> dict[str, Any]:
    """bench_job for tflite-runtime and tflite-edge in one process, their invokes interleaved
    (A B, B A, A B, ...): both see the same machine speed from one invoke to the next, which
    separate processes on a shared machine do not. Returns the two time lists, index-paired."""
    from tflite_edge.interpreter import Interpreter as EdgeInterpreter
    from tflite_edge.interpreter import OpResolverType as EdgeResolver
    from tflite_runtime.interpreter import Interpreter as RuntimeInterpreter
    from tflite_runtime.interpreter import OpResolverType as RuntimeResolver

    builtin = job.get("kernels") == "builtin"
    its = [
        RuntimeInterpreter(model_path=job["model"], num_threads=job.get("num_threads"),
                           **({"experimental_op_resolver_type":
                               RuntimeResolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
                              if builtin else {})),
        EdgeInterpreter(model_path=job["model"], num_threads=job.get("num_threads"),
                        **({"experimental_op_resolver_type":
                            EdgeResolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
                           if builtin else {})),
    ]
    for it in its:
        _prepare(it, job.get("warmup", 5))
    times: list[list[float]] = [[], []]
    deadline = time.perf_counter() + job.get("max_seconds", 30.0)
    for k in range(job.get("runs", 50)):
        for i in ((0, 1) if k % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            its[i].invoke()
            times[i].append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return {"runtime_times": times[0], "edge_times": times[1]}


def overhead_job(job: dict[str, Any]) -> dict[str, Any]:
    """Seconds per set_tensor + invoke + get_tensor round on a (tiny) model."""
    it = Interpreter(model_path=job["model"], num_threads=job.get("num_threads"))
    it.allocate_tensors()
    d_in, d_out = it.get_input_details()[0], it.get_output_details()[0]
    x = np.ones(d_in["shape"], dtype=d_in["dtype"])
    n = job.get("runs", 20000)
    for _ in range(1000):
        it.set_tensor(d_in["index"], x)
        it.invoke()
        it.get_tensor(d_out["index"])
    best = []
    for _ in range(job.get("repeats", 5)):
        t0 = time.perf_counter()
        for _ in range(n):
            it.set_tensor(d_in["index"], x)
            it.invoke()
            it.get_tensor(d_out["index"])
        best.append((time.perf_counter() - t0) / n)
    return {"seconds_per_round": best}


def _outcome(call: Any) -> dict[str, Any]:
    """What a call did: its JSON-able value, or the exception's type names and message."""
    try:
        value = call()
    except Exception as exc:
        return {"raised": [c.__name__ for c in type(exc).__mro__
                           if c.__module__ == "builtins" and c is not object],
                "message": str(exc)}
    return {"value": value}


def _plain(value: Any) -> Any:
    """numpy values and containers as JSON-able plain values (with dtypes named)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"dtype": value.dtype.str, "shape": list(value.shape),
                "items": _plain(value.tolist())}
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, np.generic):
        return value.item()
    return value


def compat_job(job: dict[str, Any]) -> dict[str, Any]:
    """One drop-in case (job["case"]), run the same way under both runtimes."""
    case, model = job["case"], job.get("model")

    def fresh(**kw: Any) -> Interpreter:
        return Interpreter(model_path=model, **kw)

    def ops(kw: dict[str, Any], allocate: bool) -> Any:
        it = fresh(**kw)
        if allocate:
            it.allocate_tensors()
        return _plain([*it._get_ops_details(), it._get_op_details(0)])

    def option(**kw: Any) -> Any:
        it = fresh(**kw)
        it.allocate_tensors()
        return _plain(it.get_output_details()[0]["shape"])

    def resize_non_input() -> Any:
        it = fresh()
        index = it.get_output_details()[0]["index"]
        it.resize_tensor_input(index, [2, 4])
        it.allocate_tensors()
        return _plain(it.get_output_details()[0]["shape"])

    def resize_non_input_then_invoke() -> Any:
        it = fresh()
        it.allocate_tensors()
        it.resize_tensor_input(it.get_output_details()[0]["index"], [2, 4])
        it.invoke()

    def resize_constant() -> Any:
        it = fresh()
        index = next(d["index"] for d in it.get_tensor_details() if d["name"] == "conv_w")
        it.resize_tensor_input(index, [1, 1])

    def out_of_range() -> Any:
        it = fresh()
        it.allocate_tensors()
        n = len(it.get_tensor_details()) + 1000
        return it.get_tensor(n)

    def strings() -> Any:
        it = fresh()
        it.allocate_tensors()
        index = it.get_input_details()[0]["index"]
        it.set_tensor(index, np.array([b"edge", b"", b"forge!"]))
        it.invoke()
        first = it.get_tensor(index)
        it.set_tensor(index, np.array(["a", "bc", "\u00e9t\u00e9"]))
        it.invoke()
        return _plain([first, it.get_tensor(index)])

    def signature_outputs() -> Any:
        it = fresh()
        runner = it.get_signature_runner()
        out = runner(x=np.arange(4, dtype=np.float32).reshape(1, 4))
        return _plain([list(out), out])

    def subgraph_tensors() -> Any:
        it = fresh()
        it.allocate_tensors()
        out = it.get_signature_runner("second")(v=np.arange(4, dtype=np.float32).reshape(1, 4))
        tensors = [_outcome(lambda i=i: _plain(it.get_tensor(i, subgraph_index=1)))
                   for i in range(4)]
        return [_plain(out), tensors]

    def missing_delegate() -> Any:
        return load_delegate(job["library"])

    cases: dict[str, Any] = {
        "unknown_op_resolver": lambda: fresh(experimental_op_resolver_type=5) and None,
        "resize_bad_index": lambda: fresh().resize_tensor_input(100000, [1, 4]),
        "resize_non_input": resize_non_input,
        "resize_non_input_then_invoke": resize_non_input_then_invoke,
        "resize_constant": resize_constant,
        "out_of_range_index": out_of_range,
        "missing_delegate": missing_delegate,
        "strings": strings,
        "signature_outputs": signature_outputs,
        "subgraph_tensors": subgraph_tensors,
        "ops_before_allocation": lambda: ops({}, False),
        "ops_without_delegates": lambda: ops({"experimental_op_resolver_type":
                                              OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES},
                                             True),
        "preserve_all_tensors": lambda: option(experimental_preserve_all_tensors=True),
        "disable_delegate_clustering":
            lambda: option(experimental_disable_delegate_clustering=True),
        "builtin_ref": lambda: option(experimental_op_resolver_type=OpResolverType.BUILTIN_REF),
    }
    return _outcome(cases[case])


def main() -> int:
    path = sys.argv[-1]
    with open(path) as f:
        jobs = json.load(f)
    kinds = {"run": run_job, "bench": bench_job, "paired_bench": paired_bench_job,
             "overhead": overhead_job, "compat": compat_job}
    results = []
    for job in jobs:
        try:
            results.append(kinds[job["kind"]](job))
        except Exception as exc:  # reported per job, compared with tflite-edge's behaviour
            where = traceback.extract_tb(exc.__traceback__)[-1]
            results.append({"error": f"{type(exc).__name__}: {exc}",
                            "where": f"{where.filename}:{where.lineno}"})
    with open(path + ".out", "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
