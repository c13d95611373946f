"""Run model jobs under tflite-runtime 2.14.0 or tflite-edge: the same code for both.

Usage: python runtime_jobs.py {tflite_runtime|tflite_edge} JOBS.json -> JOBS.json.out.
A job is {"kind": "run" | "bench" | "overhead", "model": path, "num_threads": n, ...}; see
run_job, bench_job and overhead_job. Standalone on purpose (numpy and the runtime only): it
runs in the tflite-runtime venv (numpy<2) as well as on the host (numpy 2).
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
    from tflite_edge.interpreter import Interpreter
else:
    from tflite_runtime.interpreter import Interpreter


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


def bench_job(job: dict[str, Any]) -> dict[str, Any]:
    """Latency of invoke() (seconds per run) after warm-up, with fixed inputs."""
    it = Interpreter(model_path=job["model"], num_threads=job.get("num_threads"))
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        if np.issubdtype(d["dtype"], np.floating):
            value = rng.uniform(-1, 1, size=d["shape"])
        else:
            value = rng.integers(-100, 100, size=d["shape"])
        it.set_tensor(d["index"], value.astype(d["dtype"]))
    for _ in range(job.get("warmup", 5)):
        it.invoke()
    times = []
    deadline = time.perf_counter() + job.get("max_seconds", 30.0)
    for _ in range(job.get("runs", 50)):
        t0 = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return {"times": times}


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


def main() -> int:
    path = sys.argv[-1]
    with open(path) as f:
        jobs = json.load(f)
    kinds = {"run": run_job, "bench": bench_job, "overhead": overhead_job}
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
